"""A bounded load test on loopback: N users browse the four screens while an automatic run exports M entries.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres CELERY_BROKER_URL=redis://127.0.0.1:6379/12 \\
        .venv/bin/python -m loadtest --users 50 --entries 5000

It creates a throwaway PostgreSQL database beside DATABASE_URL's, starts its own Sage stub, gunicorn and a Celery
worker, loads ten companies and the entries, starts the automatic run, lets the users browse until the run is over
(and at least ``--min-seconds``), checks that Sage holds each entry exactly once, prints one JSON report and stops
everything. Exit status 1 on any error response or any entry not exactly once.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parents[1]
PAGES = {
    "Société": "/administration/societes/",
    "Visuel Synchronisations": "/administration/synchronisations/",
    "Paramétrage des connecteurs": "/administration/connecteurs/?onglet=synchronisation",
    "Droits": "/administration/droits/",
    "Factures": "/factures/",
}
COMPANIES = ("AKAO", "avirer", "JNO", "MULTI", "S4", "SA AKAO", "Société 1", "SJNO", "S1", "S2")
PASSWORD = "charge-de-test-2026"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 30.0, headers: dict | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1, headers=headers)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[index] * 1000, 1)


class Browser(threading.Thread):
    """One user: logs in, then opens the screens one after the other, with a short think time."""

    def __init__(self, base: str, username: str, stop: threading.Event, results: list):
        super().__init__(daemon=True)
        self.base, self.username, self.stop, self.results = base, username, stop, results
        self.rng = random.Random(username)
        # Set once logged in (or given up): the measure starts when every user is browsing.
        self.ready = threading.Event()

    def run(self) -> None:
        try:
            self._browse()
        finally:
            self.ready.set()

    def _browse(self) -> None:
        session = requests.Session()
        try:
            page = session.get(f"{self.base}/accounts/login/", timeout=30)
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
            response = session.post(
                f"{self.base}/accounts/login/",
                data={"username": self.username, "password": PASSWORD, "csrfmiddlewaretoken": token},
                headers={"Referer": f"{self.base}/accounts/login/"},
                timeout=30,
                allow_redirects=False,
            )
            if response.status_code != 302:
                self.results.append(("login", response.status_code, 0.0))
                return
        except (requests.RequestException, AttributeError) as error:
            self.results.append(("login", repr(error), 0.0))
            return
        self.ready.set()
        names = list(PAGES)
        while not self.stop.is_set():
            name = self.rng.choice(names)
            started = time.perf_counter()
            try:
                response = session.get(self.base + PAGES[name], timeout=60, allow_redirects=False)
                status = response.status_code
            except requests.RequestException as error:
                status = repr(error)
            self.results.append((name, status, time.perf_counter() - started))
            self.stop.wait(self.rng.uniform(0.2, 0.6))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--min-seconds", type=float, default=20.0)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--web-workers", type=int, default=3)
    args = parser.parse_args(argv)

    base_url = os.environ.get("DATABASE_URL", "")
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if not base_url.startswith("postgres") or not broker.startswith("redis"):
        print("loadtest needs DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL (Redis)", file=sys.stderr)
        return 2
    database = f"sfd_load_{uuid.uuid4().hex[:8]}"
    admin_url = base_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    var_dir = Path(f"/tmp/{database}")
    queue = f"load-{uuid.uuid4().hex[:8]}"
    env = os.environ | {
        "DATABASE_URL": base_url.rsplit("/", 1)[0] + f"/{database}",
        "SFD_VAR_DIR": str(var_dir),
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "PYTHONUNBUFFERED": "1",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOGIN_MAX_FAILURES_PER_IP": "100000",
    }
    os.environ.update(env)
    stub_port, web_port = free_port(), free_port()
    processes: list[subprocess.Popen] = []
    logs = var_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    def spawn(name: str, command: list[str]) -> None:
        log = open(logs / f"{name}.log", "wb")  # noqa: SIM115 - handed to the child process
        processes.append(
            subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        )

    report: dict = {"users": args.users, "entries": args.entries}
    try:
        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        django.setup()
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        spawn("stub", [sys.executable, "-m", "connectors.sage_frp1000.stub", "--port", str(stub_port),
                       "--db", str(var_dir / "stub.sqlite3"), "--api-key", "load-key", "--enable-control"])  # fmt: skip
        wait_http(f"http://127.0.0.1:{stub_port}/api/v1/health")

        from companies.models import Company, CompanyAccess
        from companies.services import company_referential_pull
        from connectors.models import Connector
        from synchro.models import SyncRun
        from synchro.runs import run_start
        from tests.support.invoices import bulk_validated_invoices

        connector = Connector(name="Sage FRP 1000", url=f"http://127.0.0.1:{stub_port}", timeout_seconds=30)
        connector.set_api_key("load-key")
        connector.save()
        companies = [Company.objects.create(connector=connector, code=code, name=code) for code in COMPANIES]
        for company in companies:
            company_referential_pull(company=company)
            company.refresh_from_db()  # analytic_required and the closed period come with the pull
        per_company = args.entries // len(companies)
        ids: dict[str, list[int]] = {}
        for index, company in enumerate(companies):
            count = per_company + (args.entries % len(companies) if index == 0 else 0)
            ids[company.code] = bulk_validated_invoices(company, count, prefix=f"L{index}")
        administrators = Group.objects.get(name="Administrateur")
        for number in range(args.users):
            user = get_user_model().objects.create_user(f"user{number:03d}", password=PASSWORD)
            user.groups.add(administrators)
            CompanyAccess.objects.create(user=user, all_companies=True)

        spawn("web", [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{web_port}",
                      "--workers", str(args.web_workers), "--threads", "8", "--timeout", "120"])  # fmt: skip
        spawn("worker", [sys.executable, "-m", "celery", "-A", "config", "worker", "--queues", queue,
                         "--concurrency", "2", "--loglevel", "WARNING",
                         "--without-gossip", "--without-mingle"])  # fmt: skip
        wait_http(f"http://127.0.0.1:{web_port}/healthz")

        from config.celery import app

        app.conf.task_default_queue = queue
        results: list = []
        stop = threading.Event()
        browsers = [Browser(f"http://127.0.0.1:{web_port}", f"user{n:03d}", stop, results) for n in range(args.users)]
        for browser in browsers:
            browser.start()
        # Logins (password hashing) can outlast a small export on a loaded machine: the run starts, and the clock of
        # --min-seconds with it, once every user is in.
        for browser in browsers:
            browser.ready.wait(120)
        started = time.monotonic()
        run = run_start(trigger=SyncRun.Trigger.SCHEDULE, user=None, companies=companies, include_pull=True)
        deadline = started + args.timeout
        while time.monotonic() < deadline:
            run.refresh_from_db()
            if run.finished_at and time.monotonic() - started >= args.min_seconds:
                break
            time.sleep(0.5)
        stop.set()
        for browser in browsers:
            browser.join(70)
        run.refresh_from_db()

        booked: Counter = Counter()
        control = requests.Session()
        for code in COMPANIES:
            entries = control.get(
                f"http://127.0.0.1:{stub_port}/_control/entries", params={"company": code}, timeout=60
            ).json()["items"]
            booked.update(e["external_id"] for e in entries if e["external_id"].startswith("SFD-"))
        expected = {f"SFD-{pk}-V1" for values in ids.values() for pk in values}
        by_page: dict[str, list[float]] = defaultdict(list)
        errors = []
        for name, status, elapsed in results:
            if status == 200:
                by_page[name].append(elapsed)
            else:
                errors.append((name, status))
        timings = [elapsed for values in by_page.values() for elapsed in values]
        report |= {
            "seconds": round(time.monotonic() - started, 1),
            "export_seconds": round((run.finished_at - run.started_at).total_seconds(), 1) if run.finished_at else None,
            "run_status": run.status,
            "requests": len(results),
            "errors": len(errors),
            "error_samples": errors[:5],
            "p50_ms": percentile(timings, 0.50),
            "p95_ms": percentile(timings, 0.95),
            "p99_ms": percentile(timings, 0.99),
            "mean_ms": round(statistics.fmean(timings) * 1000, 1) if timings else 0.0,
            "p95_ms_by_page": {name: percentile(values, 0.95) for name, values in sorted(by_page.items())},
            "exactly_once": set(booked) == expected and max(booked.values(), default=1) == 1,
            "booked": len(booked),
        }
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        from django.db import connections

        connections.close_all()
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    print(json.dumps(report, ensure_ascii=False))
    ok = report.get("errors", 1) == 0 and report.get("exactly_once") and report.get("run_status") in ("succeeded",)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
