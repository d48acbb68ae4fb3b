"""``visuel_under_load``: the Visuel Synchronisations page as 20 users see it through a real gunicorn, while a
10 000-entry export runs in a real Celery worker; the baseline is the same users on the same pages with nothing
running.

The server is started as the Procfile starts it (``gunicorn config.wsgi``, 2 workers of 4 threads); the users are
threads of the benchmark, each with its own session of the administrator, asking in turn the unfiltered page and
a filtered one (company + status « à exporter »). The export is the raw work of the issue: the stub at a real ERP's
pace (``--entry-ms``), so that the page competes with what an export really costs SFD and PostgreSQL.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import threading
import time

import requests

from .export import _company
from .processes import CpuSampler, descendants, describe_cpu, postgres_backends
from .support import ROOT, BenchError, Row, free_port, note, scaled

USERS = 20
REQUESTS_PER_USER = 10
PAGE_ROWS = 100_000
EXPORT_ROWS = 10_000


class Gunicorn:
    def __init__(self, directory):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = directory / "gunicorn.log"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Gunicorn:
        command = [
            sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{self.port}", "--workers", "2",
            "--threads", "4", "--timeout", "60",
        ]  # fmt: skip
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__()  # never leave a server behind a failed start
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"gunicorn exited: {self.log.read_text()[-1000:]}")
            try:
                if requests.get(f"{self.url}/accounts/login/", timeout=10).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise BenchError("gunicorn did not answer within 120 s")

    def __exit__(self, *exc_info) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def _session_cookie() -> tuple[str, str]:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    user = get_user_model().objects.filter(username="bench-admin").first()
    if user is None:
        user = get_user_model().objects.create_superuser("bench-admin", "bench@example.com", "bench-admin-password")
    client = Client()
    client.force_login(user)
    return settings.SESSION_COOKIE_NAME, client.cookies[settings.SESSION_COOKIE_NAME].value


def _users(url: str, cookie: tuple[str, str], pages: list[str], per_user: int) -> tuple[list[float], list[str]]:
    """``USERS`` users at once, each asking ``per_user`` pages in turn; every latency, and what went wrong."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(USERS)

    def user(index: int) -> None:
        with requests.Session() as http:
            http.cookies.set(*cookie)
            start.wait()
            for turn in range(per_user):
                page = pages[(index + turn) % len(pages)]
                began = time.perf_counter()
                response = http.get(f"{url}{page}", timeout=60, allow_redirects=False)
                seconds = time.perf_counter() - began
                with lock:
                    latencies.append(seconds)
                    if response.status_code != 200 or "Tout cocher" not in response.text:
                        errors.append(f"{page}: HTTP {response.status_code}")

    threads = [threading.Thread(target=user, args=(index,)) for index in range(USERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors


def p95(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=20, method="inclusive")[18]


def run(context, scale: float, *, only: set[str]) -> list[Row]:
    from django.urls import reverse

    from invoices.counters import state_counts_compact
    from synchro.models import SyncRun, SyncRunCompany

    from .data import create_invoices
    from .support import close_database_connections, vacuum_analyze
    from .targets import RUN_COMPANY_TASK, run_start
    from .visuel import EXPORT_STATE, STATUS, UPDATE_STATE, _empty_invoices

    stub, connector = context.paced()
    per_user = max(3, scaled(REQUESTS_PER_USER, scale))
    export_rows = scaled(EXPORT_ROWS, scale)
    row = Row(name="visuel_under_load", n=USERS * per_user, limit_ratio=2)

    _empty_invoices()
    listed = [_company(context.stub, context.connector, f"BENCHL{index:02d}") for index in range(2)]
    for index, company in enumerate(listed):
        create_invoices(
            company.pk, scaled(PAGE_ROWS, scale) // 2, prefix=f"L{index}", lines=0, export_state_sql=EXPORT_STATE,
            status_sql=STATUS, update_state_sql=UPDATE_STATE,
        )  # fmt: skip
    exported = _company(stub, connector, "BENCHLOADX")
    create_invoices(exported.pk, export_rows, prefix="LX")
    state_counts_compact()
    vacuum_analyze("invoices_invoice", "invoices_invoiceline", "invoices_invoicestatecount")
    url = reverse("synchro:list")
    pages = [url, f"{url}?company={listed[0].pk}&status=to_export"]
    cookie = _session_cookie()
    close_database_connections()

    worker = context.workers()  # the export runs in the first of them (its own queue); the others stay idle
    with Gunicorn(context.var_dir) as web:
        _users(web.url, cookie, pages, 1)  # warm: templates, plans, connections of every gunicorn thread
        idle, idle_errors = _users(web.url, cookie, pages, per_user)
        run = run_start(
            trigger=SyncRun.Trigger.EXPORT, user=None, companies=[exported],
            selection={"kind": "all", "filters": {}}, dispatch=False,
        )  # fmt: skip
        line_id = run.companies.get().pk
        worker.send(RUN_COMPANY_TASK, line_id, solo=True)
        deadline = time.monotonic() + 120
        while SyncRunCompany.objects.filter(pk=line_id, status="queued").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        groups = {
            "gunicorn": lambda: descendants(web.process.pid),
            "workers": worker.pids,
            "postgres": postgres_backends(context.database),
            "stub": lambda: [stub.process.pid],
        }
        with CpuSampler(**groups) as cpu:
            loaded, loaded_errors = _users(web.url, cookie, pages, per_user)
        running_after = SyncRunCompany.objects.filter(pk=line_id, status="running").exists()
        deadline = time.monotonic() + 1800
        while (
            time.monotonic() < deadline
            and not SyncRunCompany.objects.filter(
                pk=line_id, status__in=("succeeded", "partial", "failed", "busy")
            ).exists()
        ):
            time.sleep(0.2)
    line = SyncRunCompany.objects.get(pk=line_id)
    row.baseline_seconds, row.seconds = p95(idle), p95(loaded)
    for side, errors in (("idle", idle_errors), ("under load", loaded_errors)):
        if errors:
            row.checks.append(f"visuel_under_load, {side}: {len(errors)} pages failed: {errors[:2]}")
    if (line.status, line.integrated) != ("succeeded", export_rows):
        row.checks.append(f"visuel_under_load: the export ended {line.status} with {line.integrated} integrated")
    if not running_after:
        # At a small scale the export is over before the users are: the pages were only partly under load.
        message = "the export ended before the users did: the pages were only partly under load"
        (row.checks.append if scale >= 1 else note)(f"visuel_under_load: {message}")
    note(
        f"visuel_under_load: {USERS} users × {per_user} pages; p95 {row.seconds * 1000:.0f} ms during a"
        f" {export_rows}-entry export, {row.baseline_seconds * 1000:.0f} ms idle (medians"
        f" {statistics.median(loaded) * 1000:.0f} / {statistics.median(idle) * 1000:.0f} ms)"
    )
    note(f"visuel_under_load CPU during the measure: {describe_cpu(cpu)}")
    row.extra["cpu_seconds"] = {name: None if value is None else round(value, 3) for name, value in cpu.items()}
    return [row]
