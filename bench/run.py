"""``python -m bench`` (``make bench``): every benchmark of issue 8, one JSON line each on stdout.

Environment:
- ``DATABASE_URL``: a PostgreSQL server (``postgres://postgres@127.0.0.1:5432/sfd`` when unset); the benchmark
  creates its own database ``<name>_bench`` there (or ``BENCH_DATABASE``), and drops it at the end
  (``BENCH_KEEP_DB=1`` keeps it for a look);
- ``BENCH_REDIS_URL`` or ``CELERY_BROKER_URL``: a Redis server, for the rows that run real Celery workers
  (``export_workers``, ``visuel_under_load``); required by them;
- ``BENCH_SCALE`` (1.0): multiplies every size; ``BENCH_ONLY``: comma-separated names to run a subset.

Exit status: 2 when a benchmark crashed or could not run; 1 when a check failed at any scale (a count not exact, an
entry not booked, more queries than allowed) or, at ``BENCH_SCALE`` ≥ 1, when a row is not ok; else 0. Below scale 1
the timings and the memory are reported, not enforced: on tiny sizes, ratios measure noise.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

from .processes import Workers
from .support import (
    ERP_ENTRY_MS,
    KEYS,
    BenchError,
    Row,
    Stub,
    bench_database_url,
    create_database,
    drop_database,
    note,
    prepare_environment,
    redis_url,
)

GROUPS = {
    "referential": ("referential_pull", "referential_repull"),
    "export": ("export", "memory"),
    "pace": ("export_erp_pace", "export_workers"),
    "visuel": ("visuel_page", "select_all_export"),
    "load": ("visuel_under_load",),
    "intake": ("intake",),
}
WORKER_PROCESSES = 4
# The groups written before the context existed take (stub, scale, connector); the others the context.
WITH_CONTEXT = {"pace", "load", "intake"}


class Context:
    """What the rows share: the raw stub and its connector, and on demand a stub at a real ERP's pace
    (``--entry-ms``), Redis for real workers (required by the rows that need it), the throwaway directory."""

    def __init__(self, stub: Stub, connector, var_dir: Path, database_url: str, redis: str, exits):
        self.stub, self.connector, self.var_dir = stub, connector, var_dir
        self.database = database_url.rsplit("/", 1)[-1]
        self._redis, self._exits, self._paced, self._workers = redis, exits, None, None

    def paced(self):
        if self._paced is None:
            stub = self._exits.enter_context(Stub(self.var_dir, entry_ms=ERP_ENTRY_MS, name="sage-stub-paced"))
            self._paced = (stub, _connector(stub, name="Sage FRP 1000 (bench, au rythme d'un ERP)"))
        return self._paced

    def redis(self) -> str:
        return redis_url(self._redis)

    def workers(self) -> Workers:
        """One pool of real Celery workers for every row that needs some, started once (a start costs seconds)."""
        if self._workers is None:
            self._workers = self._exits.enter_context(
                Workers(WORKER_PROCESSES, self.redis(), self.var_dir, name="bench")
            )
        return self._workers


def _run_group(group: str, context: Context, scale: float, only: set[str]) -> list[Row]:
    import importlib

    module = importlib.import_module(f"bench.{group}")
    if group in WITH_CONTEXT:
        return module.run(context, scale, only=only)
    return module.run(context.stub, scale, context.connector, only=only)


def _connector(stub: Stub, name: str = "Sage FRP 1000 (bench)"):
    from connectors.models import Connector

    connector = Connector.objects.create(name=name, url=stub.url, timeout_seconds=60)
    connector.set_api_key("bench-sage-key")
    connector.save()
    return connector


def _print(row: dict) -> None:
    assert tuple(row)[: len(KEYS)] == KEYS
    print(json.dumps(row, ensure_ascii=False), flush=True)


def main() -> int:
    scale = float(os.environ.get("BENCH_SCALE", "1.0"))
    only = {name.strip() for name in os.environ.get("BENCH_ONLY", "").split(",") if name.strip()}
    names = [name for names in GROUPS.values() for name in names]
    if only - set(names):
        print(f"BENCH_ONLY: unknown benchmark(s) {sorted(only - set(names))}; known: {names}", file=sys.stderr)
        return 2
    only = only or set(names)
    try:
        database_url = bench_database_url()
        create_database(database_url)
    except BenchError as error:
        print(f"make bench: {error}", file=sys.stderr)
        return 2
    # Read before prepare_environment drops it: the broker of the rows that run real workers.
    redis = os.environ.get("BENCH_REDIS_URL") or os.environ.get("CELERY_BROKER_URL") or ""
    var_dir = Path(tempfile.mkdtemp(prefix="sfd-bench-"))
    prepare_environment(database_url, var_dir)
    crashed = unsound = failed = False
    try:
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        note(f"scale {scale}, database {database_url.rsplit('/', 1)[-1]}, var {var_dir}")
        with Stub(var_dir) as stub, contextlib.ExitStack() as exits:
            context = Context(stub, _connector(stub), var_dir, database_url, redis, exits)
            for group, group_names in GROUPS.items():
                wanted = [name for name in group_names if name in only]
                if not wanted:
                    continue
                try:
                    rows = _run_group(group, context, scale, set(wanted))
                except BenchError as error:
                    print(f"make bench: {error}", file=sys.stderr)
                    crashed = True
                    rows = [Row(name=name, n=0, checks=[str(error)]) for name in wanted]
                except Exception:
                    traceback.print_exc()
                    crashed = True
                    rows = [Row(name=name, n=0, checks=["crashed"]) for name in wanted]
                for row in rows:
                    for check in row.checks:
                        note(f"{row.name}: {check}")
                    unsound |= not row.sound
                    failed |= not row.ok
                    _print(row.as_dict())
    except BenchError as error:
        print(f"make bench: {error}", file=sys.stderr)
        crashed = True
    finally:
        from django.db import connections

        connections.close_all()
        if os.environ.get("BENCH_KEEP_DB") != "1":
            drop_database(database_url)
        shutil.rmtree(var_dir, ignore_errors=True)
    if crashed:
        return 2
    if unsound or (failed and scale >= 1):
        return 1
    return 0
