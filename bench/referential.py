"""``referential_pull`` and ``referential_repull``: one company with a large referential, pulled from the stub.

The baseline of the first pull is the least any pull must do: fetch the same pages from the stub (same page size,
JSON decoded) and ``COPY`` the same rows into empty tables shaped like the real ones (same columns, same
indexes), without validating, comparing or counting anything. The baseline of the second pull is the first.
"""

from __future__ import annotations

import contextlib

from django.conf import settings

from .processes import cpu_usage, describe_cpu, profiled
from .support import Row, Stub, counting, note, scaled, sql, stopwatch, vacuum_analyze

COMPANY = "BENCHREF"
REPEAT = 3
KINDS = ("accounts", "suppliers", "journals", "tax-codes", "analytic-sections", "payment-modes")


def _fetch_all(stub: Stub) -> dict[str, list[dict]]:
    """Every page of every kind, as the pull asks for them, decoded and nothing more."""
    fetched: dict[str, list[dict]] = {}
    stub.http.get(f"{stub.url}/api/v1/companies", headers=stub.auth, timeout=60).raise_for_status()
    for kind in KINDS:
        items: list[dict] = []
        cursor = None
        while True:
            params = {"limit": settings.REFERENTIAL_PAGE_SIZE} | ({"cursor": cursor} if cursor else {})
            response = stub.http.get(
                f"{stub.url}/api/v1/companies/{COMPANY}/{kind}", headers=stub.auth, params=params, timeout=60
            )
            response.raise_for_status()
            body = response.json()
            items.extend(body["items"])
            cursor = body["next_cursor"]
            if not cursor:
                break
        fetched[kind] = items
    return fetched


def _copy_into_empty_tables(fetched: dict[str, list[dict]], company_id: int) -> None:
    from django.db import connection, transaction

    from companies.models import REFERENTIAL_KINDS

    with transaction.atomic(), connection.cursor() as cursor:
        for kind, items in fetched.items():
            meta = REFERENTIAL_KINDS[kind]._meta
            fields = [f for f in meta.concrete_fields if not f.primary_key]
            defaults = {f.attname: f.get_default() for f in fields}
            table = f"bench_copy_{meta.db_table}"
            cursor.execute(f'DROP TABLE IF EXISTS "{table}"')
            cursor.execute(f'CREATE TABLE "{table}" (LIKE "{meta.db_table}" INCLUDING ALL)')
            columns = ", ".join(f'"{f.column}"' for f in fields)
            with cursor.cursor.copy(f'COPY "{table}" ({columns}) FROM STDIN') as copy:
                for item in items:
                    values = defaults | item | {"company_id": company_id, "gone_upstream_at": None}
                    copy.write_row(tuple(values[f.attname] for f in fields))


def _drop_copies() -> None:
    from companies.models import REFERENTIAL_KINDS

    for model in REFERENTIAL_KINDS.values():
        sql(f'DROP TABLE IF EXISTS "bench_copy_{model._meta.db_table}"')


def _forget(company) -> None:
    """Back to a company that was never pulled, so that the next pull is a first one again."""
    from companies.models import REFERENTIAL_KINDS, Company

    for model in REFERENTIAL_KINDS.values():
        sql(f'DELETE FROM "{model._meta.db_table}" WHERE company_id = %s', [company.pk])
    vacuum_analyze(*(model._meta.db_table for model in REFERENTIAL_KINDS.values()))
    Company.objects.filter(pk=company.pk).update(pull_watermarks={}, pull_result={})
    company.refresh_from_db()


def run(stub: Stub, scale: float, connector, *, only: set[str]) -> list[Row]:
    """Both rows whatever ``only`` says: the second pull needs the first. Best of ``REPEAT`` for every timing."""
    from companies.models import Company, Supplier
    from companies.services import company_referential_pull

    suppliers, accounts = scaled(100_000, scale), scaled(5_000, scale)
    stub.generate(COMPANY, suppliers=suppliers, accounts=accounts)
    company = Company.objects.create(connector=connector, code=COMPANY, name=COMPANY)
    first = Row(name="referential_pull", n=suppliers + accounts, limit_ratio=1.3)
    second = Row(name="referential_repull", n=suppliers + accounts, limit_ratio=0.1)

    _fetch_all(stub)  # the stub's caches warm for both sides alike
    stub_pid = stub.process.pid if stub.process else None
    ((postgres_pid,),) = sql("SELECT pg_backend_pid()")
    baselines, pulls, repulls = [], [], []
    # CPU seconds of each process (this one = SFD, its PostgreSQL backend, the stub) per measure, kept for the best.
    cpu: dict[str, list[tuple[float, dict]]] = {"baseline": [], "pull": [], "repull": []}
    for attempt in range(REPEAT):
        with cpu_usage(stub=stub_pid, postgres=postgres_pid) as used, stopwatch() as elapsed:
            fetched = _fetch_all(stub)
            _copy_into_empty_tables(fetched, company.pk)
        baselines.append(elapsed())
        cpu["baseline"].append((baselines[-1], used))
        received = sum(len(items) for items in fetched.values())
        del fetched
        _drop_copies()

        if attempt:
            _forget(company)
        with (
            cpu_usage(stub=stub_pid, postgres=postgres_pid) as used,
            counting() as queries,
            profiled(first.name) if attempt == REPEAT - 1 else _nothing(),
            stopwatch() as elapsed,
        ):
            outcome = company_referential_pull(company=company)
        pulls.append(elapsed())
        cpu["pull"].append((pulls[-1], used))
        first.queries = queries()
        stored = Supplier.objects.filter(company=company).count()
        if outcome.status != Company.PullStatus.SUCCEEDED:
            first.checks.append(f"first pull: {outcome.status} {outcome.error}")
        if sum(counts["created"] for counts in outcome.counts.values()) != received or stored < suppliers:
            first.checks.append(f"first pull stored {stored} suppliers, counts {outcome.counts}")

    for _attempt in range(REPEAT):
        company.refresh_from_db()
        with (
            cpu_usage(stub=stub_pid, postgres=postgres_pid) as used,
            counting() as queries,
            profiled(second.name) if _attempt == REPEAT - 1 else _nothing(),
            stopwatch() as elapsed,
        ):
            again = company_referential_pull(company=company)
        repulls.append(elapsed())
        cpu["repull"].append((repulls[-1], used))
        second.queries = queries()
        changed = {k: c for k, c in again.counts.items() if c["created"] or c["updated"] or c["deactivated"]}
        if again.status != Company.PullStatus.SUCCEEDED or changed:
            second.checks.append(f"second pull: {again.status} {again.error} {changed}")

    first.seconds, first.baseline_seconds = min(pulls), min(baselines)
    second.seconds, second.baseline_seconds = min(repulls), first.seconds
    note(f"referential_pull: {received} items; pulls {_list(pulls)}, baselines {_list(baselines)}")
    note(f"referential_repull: {_list(repulls)}")
    best = {what: _rounded(min(measures, key=lambda measure: measure[0])[1]) for what, measures in cpu.items()}
    for what, measures in cpu.items():
        note(f"referential {what} CPU (this = SFD): " + "; ".join(describe_cpu(used) for _t, used in measures))
    first.extra["cpu_seconds"], first.extra["baseline_cpu_seconds"] = best["pull"], best["baseline"]
    second.extra["cpu_seconds"], second.extra["baseline_cpu_seconds"] = best["repull"], best["pull"]
    return [first, second]


def _rounded(used: dict) -> dict:
    """The CPU of the best measure, named as the other rows name it (``sfd`` is this process, every thread)."""
    names = {"this": "sfd", "postgres": "postgres", "stub": "stub"}
    return {names[k]: None if v is None else round(v, 3) for k, v in used.items() if k in names}


@contextlib.contextmanager
def _nothing():
    yield


def _list(timings: list[float]) -> str:
    return " ".join(f"{t:.3f}" for t in timings)
