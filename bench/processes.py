"""The processes a benchmark measures: CPU seconds per process (SFD, PostgreSQL's backends, the stub, worker pools),
real Celery workers on Redis, and profiles of a row (``BENCH_PROFILE``). Split from ``bench/support.py``, which keeps
the database, the stub, timing and rows."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .support import ROOT, BenchError, note


def process_cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a process of this machine has used so far; None when it cannot be read (another
    machine's PostgreSQL, no ``/proc``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # utime and stime: fields 14 and 15 of the line, 12 and 13 after the command's closing parenthesis.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def cpu_usage(**pids: int | None) -> Iterator[dict[str, float | None]]:
    """``with cpu_usage(stub=pid, postgres=pid) as used: ...``: afterwards ``used`` holds the CPU seconds each of
    these processes spent in the block, and ``this`` this process's (every thread)."""
    started = {name: process_cpu_seconds(pid) if pid else None for name, pid in pids.items()}
    this = time.process_time()
    used: dict[str, float | None] = {}
    yield used
    used["this"] = time.process_time() - this
    for name, pid in pids.items():
        now = process_cpu_seconds(pid) if pid else None
        used[name] = None if now is None or started[name] is None else now - started[name]


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (a Celery worker and its pool), read from ``/proc``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, ()))
    return found


class CpuSampler:
    """CPU seconds of groups of processes that come and go (PostgreSQL backends, worker pools) over a block:
    ``with CpuSampler(postgres=lambda: [...pids]) as used: ...``. A thread samples each group's processes every
    ``interval``; a process alive at the start counts from then, one born inside the block from its birth, until the
    last sample (up to ``interval`` of a process that ends inside the block is missed: none of ours does)."""

    def __init__(self, interval: float = 0.25, **groups: Callable[[], list[int]]):
        import threading

        self.groups = groups
        self.interval = interval
        self.first: dict[tuple[str, int], float] = {}
        self.last: dict[tuple[str, int], float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.used: dict[str, float | None] = {}

    def _sample(self, *, starting: bool = False) -> None:
        for name, pids in self.groups.items():
            for pid in pids():
                seconds = process_cpu_seconds(pid)
                if seconds is None:
                    continue
                # A process alive at the start counts from then; one born inside the block, from its birth.
                self.first.setdefault((name, pid), seconds if starting else 0.0)
                self.last[(name, pid)] = seconds

    def _loop(self) -> None:
        while not self.stop.wait(self.interval):
            with contextlib.suppress(Exception):
                self._sample()

    def __enter__(self) -> dict[str, float | None]:
        self._sample(starting=True)
        self.thread.start()
        return self.used

    def __exit__(self, *exc_info) -> None:
        self.stop.set()
        self.thread.join()
        self._sample()
        for pids in self.groups.values():
            getattr(pids, "close", lambda: None)()
        for name in self.groups:
            keys = [key for key in self.first if key[0] == name]
            self.used[name] = sum(self.last[key] - self.first[key] for key in keys) if keys else None


def postgres_backends(database: str) -> Callable[[], list[int]]:
    """The backends of one database (every connection of SFD's processes to it), by ``pg_stat_activity``, read
    from a connection of its own (the sampler's thread)."""
    import psycopg
    from django.db import connection

    info = connection.settings_dict
    own = psycopg.connect(
        host=info.get("HOST") or "127.0.0.1", port=info.get("PORT") or 5432, user=info.get("USER") or "postgres",
        password=info.get("PASSWORD") or None, dbname=database, autocommit=True,
    )  # fmt: skip
    own_pid = own.info.backend_pid

    def pids() -> list[int]:
        rows = own.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> %s", [database, own_pid])
        return [pid for (pid,) in rows.fetchall()]

    pids.close = own.close  # type: ignore[attr-defined]
    return pids


def describe_cpu(used: dict[str, float | None]) -> str:
    return ", ".join(f"{name} {'?' if value is None else f'{value:.2f}'} s" for name, value in used.items())


# --- real Celery workers ----------------------------------------------------------------------------


class Workers:
    """``count`` real Celery worker processes (one task at a time each, prefork), on Redis, consuming a queue of the
    benchmark's own, with the benchmark's database and settings; ``send`` hands them a task by name. The first
    worker also consumes a queue of its own (``send(..., solo=True)``): one pool serves a measure with one worker
    and one with all of them, started once."""

    def __init__(self, count: int, redis: str, directory: Path, *, name: str):
        import uuid

        self.count = count
        self.redis = redis
        self.queue = f"bench-{name}-{uuid.uuid4().hex[:8]}"
        self.solo_queue = f"{self.queue}-solo"
        self.hostnames = [f"{self.queue}-{index}@bench" for index in range(count)]
        self.logs = [directory / f"{self.queue}-{index}.log" for index in range(count)]
        self.processes: list[subprocess.Popen] = []
        self.app = None

    def __enter__(self) -> Workers:
        from celery import Celery

        env = os.environ | {
            "CELERY_BROKER_URL": self.redis,
            "CELERY_TASK_DEFAULT_QUEUE": self.queue,
            "PYTHONUNBUFFERED": "1",
        }
        for index, (hostname, log_path) in enumerate(zip(self.hostnames, self.logs, strict=True)):
            queues = f"{self.queue},{self.solo_queue}" if index == 0 else self.queue
            command = [
                sys.executable, "-m", "celery", "-A", "config", "worker", "--queues", queues, "--concurrency", "1",
                "--pool", "prefork", "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
                "--hostname", hostname,
            ]  # fmt: skip
            with open(log_path, "ab") as log:
                process = subprocess.Popen(
                    command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            self.processes.append(process)
        self.app = Celery("bench", broker=self.redis)
        self.app.conf.broker_connection_retry_on_startup = True
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [process.args[-1] for process in self.processes if process.poll() is not None]
            if dead:
                raise BenchError(f"a Celery worker exited at start: {self.logs[0].read_text()[-1500:]}")
            replies = self.app.control.ping(destination=self.hostnames, timeout=1.0)
            if len({name for reply in replies for name in reply}) == self.count:
                return
        raise BenchError(f"{self.count} Celery workers not ready within {timeout:.0f} s")

    def send(self, task: str, *args, solo: bool = False) -> None:
        self.app.send_task(task, args=list(args), queue=self.solo_queue if solo else self.queue)

    def pids(self) -> list[int]:
        return [pid for process in self.processes if process.poll() is None for pid in descendants(process.pid)]

    def __exit__(self, *exc_info) -> None:
        import signal

        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        if self.app is not None:
            with contextlib.suppress(Exception), self.app.connection_for_write() as connection:
                connection.default_channel.queue_delete(self.queue)
                connection.default_channel.queue_delete(self.solo_queue)
            self.app.close()


# --- profiles (BENCH_PROFILE=<directory>) -----------------------------------------------------------


@contextlib.contextmanager
def profiled(name: str) -> Iterator[None]:
    """With ``BENCH_PROFILE=<directory>``, the block is profiled: pyinstrument's call tree of wall time
    (``<name>.txt`` and ``.html``), or with ``BENCH_PROFILE_CPU=1`` cProfile's on the CPU clock (``<name>-cpu.txt``),
    and the time of each SQL statement, grouped by its text (``<name>-sql.txt``). A profiled run's timings are not
    the benchmark's: the profiler costs time of its own."""
    directory = os.environ.get("BENCH_PROFILE")
    if not directory:
        yield
        return
    import re
    from collections import defaultdict

    from django.db import connection
    from pyinstrument import Profiler

    statements: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0])

    def timed(execute, sql, params, many, context):
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            key = re.sub(r'"s\d+_x\d+"', '"…"', re.sub(r"\s+", " ", sql))[:300]
            statements[key][0] += 1
            statements[key][1] += time.perf_counter() - began

    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    if os.environ.get("BENCH_PROFILE_CPU") == "1":
        # CPU, not wall time: cProfile on the process's CPU clock (the calling thread only).
        import cProfile
        import io
        import pstats

        cpu_profiler = cProfile.Profile(time.process_time)
        with connection.execute_wrapper(timed):
            cpu_profiler.enable()
            try:
                yield
            finally:
                cpu_profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(cpu_profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(45)
        stats.sort_stats("tottime").print_stats(30)
        (target / f"{name}-cpu.txt").write_text(out.getvalue())
        # The raw statistics too, for callers and callees (``python -m pstats <name>-cpu.prof``).
        cpu_profiler.dump_stats(target / f"{name}-cpu.prof")
    else:
        profiler = Profiler(interval=0.001)
        with connection.execute_wrapper(timed):
            profiler.start()
            try:
                yield
            finally:
                profiler.stop()
        (target / f"{name}.txt").write_text(profiler.output_text(unicode=True, color=False, show_all=False))
        (target / f"{name}.html").write_text(profiler.output_html())
    total = sum(seconds for _count, seconds, _ in statements.values())
    lines = [f"{total:.3f} s in {sum(c for c, _s, _ in statements.values())} statements (wall time seen by SFD)"]
    for key, (count, seconds, _) in sorted(statements.items(), key=lambda item: -item[1][1]):
        lines.append(f"{seconds:8.3f} s {count:6d} × {key}")
    (target / f"{name}-sql.txt").write_text("\n".join(lines) + "\n")
    note(f"profile of {name}: {target}/{name}.txt, .html, -sql.txt")
