"""``export`` and ``memory``: validated invoices exported through the stub, in-process and in a worker of its own.

The baseline of ``export`` posts the same entries, built beforehand and cut in the same batches, straight to the
stub with the same client, into a twin company that has the same referential and has booked nothing yet: the
stub does the same work for both, the difference is what SFD adds (claims, payloads, pre-check, bookkeeping).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from .data import create_invoices
from .processes import cpu_usage, describe_cpu, profiled
from .support import ROOT, Row, Stub, counting, note, scaled, sql, stopwatch, vacuum_analyze

COMPANY, TWIN, MEMORY = "BENCHEXP", "BENCHEXPB", "BENCHMEM"
MEMORY_LIMIT_MB = 300


def _company(stub: Stub, connector, code: str):
    from companies.models import Company
    from companies.services import company_referential_pull

    stub.generate(code)
    company = Company.objects.create(connector=connector, code=code, name=code)
    outcome = company_referential_pull(company=company)
    if outcome.error:
        raise RuntimeError(f"referential of {code}: {outcome.error}")
    company.refresh_from_db()
    return company


def _batches(company) -> list[list[dict]]:
    """The entries of the company's invoices, as the exporter computes them, in its batches."""
    from django.conf import settings

    from invoices.models import Invoice
    from invoices.validation import entry_for_invoice

    invoices = (
        Invoice.objects.filter(company=company)
        .order_by("pk")
        .select_related("company", "supplier")
        .prefetch_related("lines__account", "lines__tax_code", "lines__analytic_section")
    )
    payloads = [
        entry_for_invoice(invoice, list(invoice.lines.all())).payload(invoice.external_id)
        for invoice in invoices.iterator(chunk_size=2000)
    ]
    size = settings.SYNC_BATCH_SIZE
    return [payloads[start : start + size] for start in range(0, len(payloads), size)]


def _start(company):
    from synchro.models import SyncRun

    from .targets import run_start

    run = run_start(
        trigger=SyncRun.Trigger.EXPORT,
        user=None,
        companies=[company],
        selection={"kind": "all", "filters": {}},
        dispatch=False,
    )
    return run.companies.get()


def measure_export(row: Row, stub: Stub, connector, *, company_code: str, twin_code: str, prefix: str) -> dict:
    """``row.n`` invoices of ``company_code`` exported in-process, against the same entries posted as pre-built batches
    to ``twin_code``: fills the row's times and queries, returns the CPU seconds of each process on each side."""
    from .targets import run_company_execute

    count = row.n
    company = _company(stub, connector, company_code)
    _company(stub, connector, twin_code)
    create_invoices(company.pk, count, prefix=prefix)
    # Statistics of the tables just loaded, as autovacuum leaves them on tables that live: without them, the planner
    # believes the lines fit in a page and reads all of them for each batch.
    vacuum_analyze("invoices_invoice", "invoices_invoiceline")
    batches = _batches(company)

    stub_pid = stub.process.pid if stub.process else None
    with cpu_usage(stub=stub_pid) as baseline_cpu, connector.client() as client, stopwatch() as elapsed:
        results = [result for batch in batches for result in client.post_entries(twin_code, batch)]
    row.baseline_seconds = elapsed()
    refused = [result for result in results if result.status != "accepted"]
    if len(results) != count or refused:
        row.checks.append(f"baseline: {len(results)} results, {len(refused)} not accepted: {refused[:1]}")

    line_id = _start(company).pk
    ((postgres_pid,),) = sql("SELECT pg_backend_pid()")
    with (
        cpu_usage(stub=stub_pid, postgres=postgres_pid) as export_cpu,
        counting() as queries,
        profiled(row.name),
        stopwatch() as elapsed,
    ):
        line = run_company_execute(run_company_id=line_id)
    row.seconds, row.queries = elapsed(), queries()
    if (line.integrated, line.rejected, line.unknown) != (count, 0, 0):
        row.checks.append(f"export: {line.integrated} integrated, {line.rejected} rejected, {line.unknown} unknown")
    note(f"{row.name}: {count} in {len(batches)} batches: {row.seconds:.2f} s; baseline {row.baseline_seconds:.2f}")
    # Where the time goes: on a machine of few cores, the CPU that SFD, PostgreSQL and the stub need together bounds
    # the wall-clock time from below (their sum divided by the cores), however well they overlap.
    note(f"{row.name} CPU: {describe_cpu(export_cpu)} (this = SFD); baseline CPU: {describe_cpu(baseline_cpu)}")
    cpu = {"sfd": export_cpu["this"], "postgres": export_cpu["postgres"], "stub": export_cpu["stub"]}
    row.extra["cpu_seconds"] = {name: None if value is None else round(value, 3) for name, value in cpu.items()}
    row.extra["baseline_cpu_seconds"] = {
        "client": round(baseline_cpu["this"], 3),
        "stub": None if baseline_cpu["stub"] is None else round(baseline_cpu["stub"], 3),
    }
    return cpu


def _export_row(stub: Stub, scale: float, connector) -> Row:
    row = Row(name="export", n=scaled(10_000, scale), limit_ratio=1.5)
    cpu = measure_export(row, stub, connector, company_code=COMPANY, twin_code=TWIN, prefix="E")
    # SFD's own efficiency, which holds across machines: the CPU SFD and PostgreSQL spend per entry against what
    # the stub spends booking it.
    if cpu["postgres"] is not None and cpu["stub"]:
        row.extra["cpu_ratio"] = round((cpu["sfd"] + cpu["postgres"]) / cpu["stub"], 3)
    else:
        row.extra["cpu_ratio"] = None
        row.checks.append("cpu_ratio: the CPU of PostgreSQL or of the stub cannot be read (not on this machine?)")
    row.extra["cpu_ratio_limit"] = 1.0
    return row


def _memory_row(stub: Stub, scale: float, connector) -> Row:
    count = scaled(100_000, scale)
    row = Row(name="memory", n=count, limit_rss_mb=MEMORY_LIMIT_MB)
    company = _company(stub, connector, MEMORY)
    create_invoices(company.pk, count, prefix="M")
    vacuum_analyze("invoices_invoice", "invoices_invoiceline")
    line = _start(company)
    with stopwatch() as elapsed:
        # A process of its own, as a worker is: its peak is the export's, not the benchmark's.
        child = subprocess.run(
            [sys.executable, "-m", "bench.worker", str(line.pk)],
            cwd=ROOT,
            env=os.environ.copy(),
            capture_output=True,
            text=True,
            check=False,
        )
    row.seconds = elapsed()
    if child.returncode != 0:
        row.checks.append(f"the worker failed: {child.stderr[-2000:]}")
        return row
    report = json.loads(child.stdout.strip().splitlines()[-1])
    row.peak_rss_mb, row.queries = report["peak_rss_mb"], report["queries"]
    if report["integrated"] != count:
        row.checks.append(f"memory: {report['integrated']} of {count} integrated ({report['status']})")
    note(f"memory: {count} entries in {row.seconds:.1f} s, peak RSS {row.peak_rss_mb:.0f} MB")
    return row


def run(stub: Stub, scale: float, connector, *, only: set[str]) -> list[Row]:
    rows = []
    if "export" in only:
        rows.append(_export_row(stub, scale, connector))
    if "memory" in only:
        rows.append(_memory_row(stub, scale, connector))
    return rows
