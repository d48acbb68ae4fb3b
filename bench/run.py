"""``python -m bench`` (``make bench``): every benchmark of issue 8, one JSON line each on stdout.

Environment:
- ``DATABASE_URL``: a PostgreSQL server (``postgres://postgres@127.0.0.1:5432/sfd`` when unset); the benchmark
  creates its own database ``<name>_bench`` there (or ``BENCH_DATABASE``), and drops it at the end
  (``BENCH_KEEP_DB=1`` keeps it for a look);
- ``BENCH_SCALE`` (1.0): multiplies every size; ``BENCH_ONLY``: comma-separated names to run a subset.

Exit status: 2 when a benchmark crashed or could not run; 1 when a check failed at any scale (a count not exact, an
entry not booked, more queries than allowed) or, at ``BENCH_SCALE`` ≥ 1, when a row is not ok; else 0. Below scale 1
the timings and the memory are reported, not enforced: on tiny sizes, ratios measure noise.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

from .support import (
    KEYS,
    BenchError,
    Row,
    Stub,
    bench_database_url,
    create_database,
    drop_database,
    note,
    prepare_environment,
)

GROUPS = {
    "referential": ("referential_pull", "referential_repull"),
    "export": ("export", "memory"),
    "visuel": ("visuel_page", "select_all_export"),
}


def _run_group(group: str, stub: Stub, scale: float, connector, only: set[str]) -> list[Row]:
    import importlib

    return importlib.import_module(f"bench.{group}").run(stub, scale, connector, only=only)


def _connector(stub: Stub):
    from connectors.models import Connector

    connector = Connector.objects.create(name="Sage FRP 1000 (bench)", url=stub.url, timeout_seconds=60)
    connector.set_api_key("bench-sage-key")
    connector.save()
    return connector


def _print(row: dict) -> None:
    assert tuple(row) == KEYS
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
    var_dir = Path(tempfile.mkdtemp(prefix="sfd-bench-"))
    prepare_environment(database_url, var_dir)
    crashed = unsound = failed = False
    try:
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        note(f"scale {scale}, database {database_url.rsplit('/', 1)[-1]}, var {var_dir}")
        with Stub(var_dir) as stub:
            connector = _connector(stub)
            for group, group_names in GROUPS.items():
                wanted = [name for name in group_names if name in only]
                if not wanted:
                    continue
                try:
                    rows = _run_group(group, stub, scale, connector, set(wanted))
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
