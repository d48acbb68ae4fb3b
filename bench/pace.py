"""``export_erp_pace`` and ``export_workers``: the export against a stub that takes a real ERP's pace.

A real ERP spends milliseconds on each entry, most of them waiting; the stub started with ``--entry-ms`` sleeps that
long per entry (no CPU). What a user feels is then whether SFD adds anything to the ERP's own pace
(``export_erp_pace``: the same pre-built batches posted to the same slow stub are the baseline) and whether more
workers export more companies faster (``export_workers``: 4 real Celery worker processes on Redis against 1).
"""

from __future__ import annotations

import time

from .export import _company, measure_export
from .processes import CpuSampler, Workers, describe_cpu, postgres_backends
from .support import ERP_ENTRY_MS, Row, note, scaled

COMPANY, TWIN = "BENCHPACE", "BENCHPACEB"
COMPANIES, INVOICES_PER_COMPANY, WORKERS = 8, 1_250, 4
DONE = ("succeeded", "partial", "failed", "busy")


def _erp_pace_row(context, scale: float) -> Row:
    stub, connector = context.paced()
    row = Row(name="export_erp_pace", n=scaled(10_000, scale), limit_ratio=1.05)
    measure_export(row, stub, connector, company_code=COMPANY, twin_code=TWIN, prefix="P")
    return row


def _export_with_workers(
    context, pool: Workers, companies: list, *, solo: bool, prefix: str, per_company: int
) -> tuple[float, dict]:
    """Every company's invoices exported by the pool's workers (its first one alone when ``solo``); the time from the
    first task sent to the last company finished (the workers' own timestamps), and the CPU of each kind of process
    meanwhile (every worker of the pool: those left idle by a solo measure cost nothing)."""
    from synchro.models import SyncRun, SyncRunCompany

    from .data import create_invoices
    from .support import vacuum_analyze
    from .targets import RUN_COMPANY_TASK, run_start

    stub, _connector = context.paced()
    for index, company in enumerate(companies):
        create_invoices(company.pk, per_company, prefix=f"{prefix}{index}")
    vacuum_analyze("invoices_invoice", "invoices_invoiceline")
    run = run_start(
        trigger=SyncRun.Trigger.EXPORT,
        user=None,
        companies=companies,
        selection={"kind": "all", "filters": {}},
        dispatch=False,
    )
    lines = list(run.companies.values_list("pk", flat=True))
    groups = {
        "workers": pool.pids,
        "postgres": postgres_backends(context.database),
        "stub": lambda: [stub.process.pid],
    }
    with CpuSampler(**groups) as cpu:
        started = time.time()
        for line_id in lines:
            pool.send(RUN_COMPANY_TASK, line_id, solo=solo)
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            if not SyncRunCompany.objects.filter(pk__in=lines).exclude(status__in=DONE).exists():
                break
            time.sleep(0.1)
    finished = SyncRunCompany.objects.filter(pk__in=lines)
    last = max((line.finished_at for line in finished if line.finished_at), default=None)
    seconds = (last.timestamp() - started) if last else float("nan")
    outcome = {line.company.code: (line.status, line.integrated) for line in finished.select_related("company")}
    spans = [
        (line.finished_at - line.started_at).total_seconds()
        for line in finished
        if line.started_at and line.finished_at
    ]
    return seconds, {"cpu": cpu, "outcome": outcome, "spans": spans}


def _workers_row(context, scale: float) -> Row:
    stub, connector = context.paced()
    per_company = scaled(INVOICES_PER_COMPANY, scale)
    row = Row(name="export_workers", n=COMPANIES * per_company, limit_ratio=3.5, higher_is_better=True)
    # Two sets of companies, the same in number and size: each side exports companies of its own, from scratch.
    single = [_company(stub, connector, f"BENCHW1{index}") for index in range(COMPANIES)]
    many = [_company(stub, connector, f"BENCHW4{index}") for index in range(COMPANIES)]
    pool = context.workers()
    if pool.count != WORKERS:
        raise RuntimeError(f"export_workers needs a pool of {WORKERS} workers, not {pool.count}")
    row.baseline_seconds, one = _export_with_workers(
        context, pool, single, solo=True, prefix="W1-", per_company=per_company
    )
    row.seconds, four = _export_with_workers(context, pool, many, solo=False, prefix="W4-", per_company=per_company)
    for side, measured in (("1 worker", one), (f"{WORKERS} workers", four)):
        wrong = {code: got for code, got in measured["outcome"].items() if got != ("succeeded", per_company)}
        if len(measured["outcome"]) != COMPANIES or wrong:
            row.checks.append(f"export_workers, {side}: not every company exported: {wrong}")
        spans = measured["spans"]
        each = f"{sum(spans) / len(spans):.2f} s per company on average" if spans else "no company finished"
        note(f"export_workers, {side}: {each}; CPU {describe_cpu(measured['cpu'])}")
    note(
        f"export_workers: {COMPANIES} companies × {per_company} invoices at {ERP_ENTRY_MS:g} ms/entry:"
        f" {row.seconds:.2f} s with {WORKERS} workers, {row.baseline_seconds:.2f} s with 1"
    )
    rounded = {side: {k: None if v is None else round(v, 3) for k, v in m["cpu"].items()} for side, m in (
        ("workers", four), ("baseline", one))}  # fmt: skip
    row.extra["cpu_seconds"], row.extra["baseline_cpu_seconds"] = rounded["workers"], rounded["baseline"]
    return row


def run(context, scale: float, *, only: set[str]) -> list[Row]:
    rows = []
    if "export_erp_pace" in only:
        rows.append(_erp_pace_row(context, scale))
    if "export_workers" in only:
        rows.append(_workers_row(context, scale))
    return rows
