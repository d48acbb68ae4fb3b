"""What every benchmark needs: a throwaway PostgreSQL database, the Sage stub on a free port, timing and rows.

Nothing here may run before ``prepare_environment``: Django reads its settings from the environment once.
"""

from __future__ import annotations

import contextlib
import gc
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import requests

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432/sfd"
STUB_KEY = "bench-sage-key"
KEYS = ("name", "n", "seconds", "baseline_seconds", "ratio", "peak_rss_mb", "queries", "target", "ok")
# Besides KEYS, a row may carry details of its own after them (``cpu_ratio``, CPU seconds per process).
TARGETS = {
    "referential_pull": "ratio <= 1.3",
    "referential_repull": "ratio <= 0.1",
    "export": "ratio <= 1.5 and cpu_ratio <= 1.0",
    "memory": "peak_rss_mb <= 300",
    "export_erp_pace": "ratio <= 1.05",
    "export_workers": "throughput ratio >= 3.5",
    "visuel_page": "ratio <= 2 and queries <= 10",
    "select_all_export": "ratio <= 3",
    "visuel_under_load": "p95 ratio <= 2",
    "intake": "ratio <= 1.5",
}
# The pace of a real ERP for the rows that say so: what the stub waits per entry (``--entry-ms``), sleeping.
ERP_ENTRY_MS = 2.0


class BenchError(Exception):
    """The benchmark cannot run (no PostgreSQL, the stub did not start): said in one line, no traceback."""


# --- environment and database ----------------------------------------------------------------------


def bench_database_url() -> str:
    """The throwaway database: ``BENCH_DATABASE`` or ``<name>_bench`` on the server of ``DATABASE_URL``.

    The database named in ``DATABASE_URL`` itself is never touched.
    """
    url = os.environ.get("DATABASE_URL") or DEFAULT_SERVER
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        raise BenchError(
            f"PostgreSQL is required: DATABASE_URL must be a postgres:// URL (it is {parts.scheme or url!r})."
        )
    own = parts.path.lstrip("/") or "sfd"
    name = os.environ.get("BENCH_DATABASE") or f"{own}_bench"
    if name == own:
        raise BenchError(f"BENCH_DATABASE must not be the database of DATABASE_URL ({own}): it is dropped at the end.")
    return urlunsplit(parts._replace(path=f"/{name}"))


def _maintenance_connection(url: str):
    import psycopg

    parts = urlsplit(url)
    try:
        return psycopg.connect(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            user=parts.username or "postgres",
            password=unquote(parts.password) if parts.password else None,
            dbname="postgres",
            autocommit=True,
            connect_timeout=10,
        )
    except psycopg.OperationalError as exc:
        raise BenchError(f"PostgreSQL does not answer at {parts.hostname}:{parts.port or 5432}: {exc}") from None


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def create_database(url: str) -> None:
    from psycopg import sql

    with _maintenance_connection(url) as connection:
        name = sql.Identifier(database_name(url))
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(name))


def drop_database(url: str) -> None:
    from psycopg import sql

    with _maintenance_connection(url) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database_name(url)))
        )


def redis_url(url: str) -> str:
    """The Redis of the rows that run real Celery workers (``BENCH_REDIS_URL``, else ``CELERY_BROKER_URL`` as the
    caller had it, read before ``prepare_environment`` drops it), checked. Required: without it those rows fail."""
    if not url.startswith("redis://"):
        raise BenchError(
            f"Redis is required: set BENCH_REDIS_URL or CELERY_BROKER_URL to a redis:// URL (it is {url or 'unset'!r})."
        )
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=5).ping()
    except Exception as exc:
        raise BenchError(f"Redis does not answer at {url}: {exc}") from None
    return url


def prepare_environment(database_url: str, var_dir: Path) -> None:
    """Settings of the benchmark's own: its database, its var/ and a file-system broker nobody consumes (the
    « Exporter » request enqueues one message; no worker of anyone else must ever receive it)."""
    os.environ["DATABASE_URL"] = database_url
    os.environ["SFD_VAR_DIR"] = str(var_dir)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["LOG_LEVEL"] = "ERROR"
    os.environ["PULL_PROGRESS_INTERVAL"] = "1"
    for name in ("CELERY_BROKER_URL", "CELERY_TASK_ALWAYS_EAGER", "SYNC_BATCH_SIZE", "REFERENTIAL_PAGE_SIZE"):
        os.environ.pop(name, None)


def sql(statement: str, params: list | tuple | None = None) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def vacuum_analyze(*tables: str) -> None:
    """Fresh statistics and visibility maps, as autovacuum would leave them on a table that lives."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f'VACUUM (ANALYZE) "{table}"')


def close_database_connections() -> None:
    from django.db import connections

    connections.close_all()


# --- the Sage FRP 1000 stub -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Stub:
    """The stub as its own process, with its own SQLite file and its control surface."""

    def __init__(self, directory: Path, *, entry_ms: float = 0.0, name: str = "sage-stub"):
        self.db_path = directory / f"{name}.sqlite3"
        self.entry_ms = entry_ms
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = requests.Session()
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Stub:
        command = [
            sys.executable, "-m", "connectors.sage_frp1000.stub", "--port", str(self.port),
            "--db", str(self.db_path), "--api-key", STUB_KEY, "--enable-control", "--entry-ms", str(self.entry_ms),
        ]  # fmt: skip
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__()  # never leave a stub behind a failed start
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"the Sage stub exited: {self.process.stderr.read().decode()[-500:]}")
            with contextlib.suppress(requests.RequestException):
                self.http.get(f"{self.url}/api/v1/health", headers=self.auth, timeout=5)
                return
            time.sleep(0.1)
        raise BenchError("the Sage stub did not start within 30 s")

    def __exit__(self, *exc_info) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    @property
    def auth(self) -> dict:
        return {"Authorization": f"Bearer {STUB_KEY}"}

    def control(self, method: str, path: str, **kwargs) -> dict:
        response = self.http.request(method, f"{self.url}/_control{path}", timeout=600, **kwargs)
        response.raise_for_status()
        return response.json()

    def generate(self, company: str, *, suppliers: int = 0, accounts: int = 0) -> None:
        self.control("POST", "/generate", json={"company": company, "suppliers": suppliers, "accounts": accounts})


# --- measuring --------------------------------------------------------------------------------------


@contextlib.contextmanager
def stopwatch() -> Iterator[Callable[[], float]]:
    """``with stopwatch() as elapsed: ...``; ``elapsed()`` is the wall-clock time of the block."""
    gc.collect()
    started = time.perf_counter()
    finished: list[float] = []
    yield lambda: (finished[0] if finished else time.perf_counter()) - started
    finished.append(time.perf_counter())


@contextlib.contextmanager
def counting() -> Iterator[Callable[[], int]]:
    """``with counting() as queries: ...``: how many statements went through Django (nothing stored, no cost)."""
    from django.db import connection

    executed = [0]

    def count(execute, sql, params, many, context):
        executed[0] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        yield lambda: executed[0]


def median_seconds(action: Callable[[], object], *, repeat: int) -> float:
    """The median of ``repeat`` timed calls, after one untimed call that warms caches (plans, templates)."""
    action()
    timings = []
    for _ in range(repeat):
        with stopwatch() as elapsed:
            action()
        timings.append(elapsed())
    return statistics.median(timings)


def scaled(value: int, scale: float, *, minimum: int = 1) -> int:
    return max(minimum, round(value * scale))


@dataclass
class Row:
    name: str
    n: int
    seconds: float | None = None
    baseline_seconds: float | None = None
    peak_rss_mb: float | None = None
    queries: int | None = None
    checks: list[str] = field(default_factory=list)  # what failed besides the numbers, said on stderr
    limit_ratio: float | None = None
    limit_queries: int | None = None
    limit_rss_mb: float | None = None
    extra: dict = field(default_factory=dict)  # details printed after KEYS (cpu_ratio, CPU per process…)
    higher_is_better: bool = False  # a throughput ratio: ok when ratio >= limit_ratio

    @property
    def target(self) -> str:
        return TARGETS[self.name]

    @property
    def ratio(self) -> float | None:
        if self.seconds is None or not self.baseline_seconds:
            return None
        if self.higher_is_better:  # a throughput: the baseline's time over this one's
            return self.baseline_seconds / self.seconds
        return self.seconds / self.baseline_seconds

    @property
    def sound(self) -> bool:
        """What holds at every scale: it ran, its checks passed (exact counts, everything booked), its queries."""
        if self.checks or self.seconds is None:
            return False
        return self.limit_queries is None or (self.queries is not None and self.queries <= self.limit_queries)

    @property
    def ok(self) -> bool:
        if not self.sound:
            return False
        if self.limit_ratio is not None:
            if self.ratio is None:
                return False
            if (self.ratio < self.limit_ratio) if self.higher_is_better else (self.ratio > self.limit_ratio):
                return False
        limit_cpu = self.extra.get("cpu_ratio_limit")
        if limit_cpu is not None and (self.extra.get("cpu_ratio") is None or self.extra["cpu_ratio"] > limit_cpu):
            return False
        return self.limit_rss_mb is None or (self.peak_rss_mb is not None and self.peak_rss_mb <= self.limit_rss_mb)

    def as_dict(self) -> dict:
        def rounded(value: float | None, digits: int) -> float | None:
            return None if value is None else round(value, digits)

        return {
            "name": self.name,
            "n": self.n,
            "seconds": rounded(self.seconds, 4),
            "baseline_seconds": rounded(self.baseline_seconds, 4),
            "ratio": rounded(self.ratio, 3),
            "peak_rss_mb": rounded(self.peak_rss_mb, 1),
            "queries": self.queries,
            "target": self.target,
            "ok": self.ok,
        } | {key: value for key, value in self.extra.items() if not key.endswith("_limit")}


def note(text: str) -> None:
    """Details for the reader (stderr), never mixed with the JSON rows of stdout."""
    print(f"[bench] {text}", file=sys.stderr, flush=True)
