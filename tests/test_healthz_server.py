"""/healthz on a running server (gunicorn, production settings) follows Redis going down and coming back.

The test starts a Redis of its own on a free port: the shared one must never be stopped under other tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import requests
from cryptography.fernet import Fernet
from django.conf import settings
from django.db import connection

from connectors.services import connectors_health_refresh
from core.services import heartbeat_touch
from tests.support.polling import wait_for
from tests.support.services import REQUIRED
from tests.support.stub import free_port
from tests.support.workers import database_url

pytestmark = [pytest.mark.redis, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]


class RedisServer:
    def __init__(self, port: int):
        self.port = port
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--daemonize", "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port, socket_connect_timeout=1)

        def answers() -> bool:
            try:
                return client.ping()
            except redis.RedisError:
                return False

        wait_for(answers, timeout=10, interval=0.05, message=f"redis-server on port {self.port}")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


@pytest.fixture
def own_redis():
    if shutil.which("redis-server") is None:
        reason = "no redis-server binary (apt-get install -y redis-server)"
        if REQUIRED:
            pytest.fail(f"redis-server is required (SFD_REQUIRE_SERVICES=1): {reason}", pytrace=False)
        pytest.skip(reason)
    server = RedisServer(free_port())
    try:
        server.start()
        yield server
    finally:
        server.kill()


@pytest.fixture
def gunicorn(transactional_db, connector, own_redis, tmp_path):
    """gunicorn with the production settings, on this test's database, its Redis and the Sage stub."""
    port = free_port()
    # The encryption keys that stored the connector's key in this test process, so that the server reads it.
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "config.production",
        "SECRET_KEY": "healthz-server-test-" + Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": own_redis.url,
        "SFD_ENCRYPTION_KEYS": ",".join(settings.SFD_ENCRYPTION_KEYS),
        "SFD_VAR_DIR": str(tmp_path / "var"),
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}",
                "--workers", "1", "--threads", "4", "--timeout", "30",
                # Its default control socket is one path per user: never touch another gunicorn's.
                "--no-control-socket",
            ],
            cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/healthz"

    def answers():
        if process.poll() is not None:
            raise AssertionError(f"gunicorn exited:\n{log.read_text()}")
        try:
            requests.get(url, timeout=5)
        except requests.ConnectionError:
            return False
        return True

    try:
        wait_for(answers, timeout=30, interval=0.1, message="gunicorn to answer /healthz")
        yield url, log
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        connection.close()


def test_healthz_follows_redis_down_and_back(gunicorn, own_redis, sage):
    url, log = gunicorn
    heartbeat_touch("beat")
    connectors_health_refresh()  # what the worker does every minute; /healthz reads it

    def probe() -> tuple[int, dict, float]:
        started = time.monotonic()
        response = requests.get(url, timeout=10)
        return response.status_code, response.json(), time.monotonic() - started

    status, body, _ = probe()
    assert status == 200, body
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True,
        "broker": True,
        "beat": True,
        "sage": True,
    }

    own_redis.kill()

    def unhealthy():
        status, body, seconds = probe()
        # The broker check is bounded: an answer within its timeout, never a hung probe.
        assert seconds < 5, f"/healthz took {seconds:.1f} s"
        return (status, body) if status == 503 else None

    status, body = wait_for(unhealthy, timeout=10, interval=0.2, message="/healthz to report Redis down")
    assert body["status"] == "unhealthy"
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["database"]["ok"] and body["checks"]["sage"]["ok"]

    own_redis.start()

    def healthy():
        status, body, _ = probe()
        return (status, body) if status == 200 else None

    status, body = wait_for(healthy, timeout=10, interval=0.2, message="/healthz to report Redis back")
    assert body["status"] == "ok" and body["checks"]["broker"] == {"ok": True}

    # The failed checks were logged as JSON lines, without the credentials of the test's URLs.
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    broker_failures = [entry for entry in entries if entry["message"] == "healthz: the broker check failed"]
    assert broker_failures and broker_failures[0]["level"] == "WARNING"
    assert "exception" in broker_failures[0]
    assert sage.api_key not in log.read_text()
