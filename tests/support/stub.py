"""The Sage FRP 1000 stub as a real process on a free port, with its control surface."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "test-sage-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StubProcess:
    def __init__(self, db_path: Path, port: int | None = None, api_key: str = API_KEY, enable_control: bool = True):
        self.db_path = Path(db_path)
        self.enable_control = enable_control
        self.extra_args: list[str] = []
        self.port = port or free_port()
        self.api_key = api_key
        self.process: subprocess.Popen | None = None
        self.http = requests.Session()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "connectors.sage_frp1000.stub",
                "--port", str(self.port), "--db", str(self.db_path), "--api-key", self.api_key,
                *(["--enable-control"] if self.enable_control else []),
                *self.extra_args,
            ],
            cwd=ROOT,
            env=os.environ | {"PYTHONUNBUFFERED": "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the stub exited: {self.process.stderr.read().decode()}")
            try:
                self.http.get(f"{self.url}/api/v1/health", headers=self.auth, timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("the stub did not start within 20 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.api_key}"}

    def _control(self, method: str, path: str, **kwargs):
        response = self.http.request(method, f"{self.url}/_control{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        self._control("POST", "/reset")

    def faults(self, *rules: dict, seed: int = 0) -> None:
        self._control("POST", "/faults", json={"rules": list(rules), "seed": seed})

    def clear_faults(self) -> None:
        self._control("DELETE", "/faults")

    def mutate(self, company: str, kind: str, *, upsert=(), delete=(), raw=()) -> None:
        body = {
            "company": company,
            "kind": kind,
            "upsert": list(upsert),
            "delete": list(delete),
            "raw": list(raw),
        }
        self._control("POST", "/referential", json=body)

    def generate(self, company: str, *, suppliers: int = 0, accounts: int = 0) -> None:
        self._control("POST", "/generate", json={"company": company, "suppliers": suppliers, "accounts": accounts})

    def add_company(self, code: str, **fields) -> None:
        self._control("POST", "/companies", json={"code": code, **fields})

    def entries(self, company: str | None = None) -> list[dict]:
        return self._control("GET", "/entries", params={"company": company} if company else None)["items"]

    def stats(self) -> dict:
        return self._control("GET", "/stats")

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.http.get(f"{self.url}/api/v1{path}", headers=self.auth, timeout=10, **kwargs)

    def post(self, path: str, body) -> requests.Response:
        return self.http.post(f"{self.url}/api/v1{path}", headers=self.auth, json=body, timeout=10)
