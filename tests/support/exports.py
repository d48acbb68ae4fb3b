"""A company ready to export, an export run in this process, and what Sage FRP 1000 booked.

The helpers the export tests each used to write again, in one place:

- ``pull(company)`` and the ``pulled`` fixture: JNO, its referential pulled from the stub;
- ``export(company, ...)``: one run of one company, executed here rather than by a worker;
- ``booked(sage)``: how many times Sage holds each of SFD's keys;
- ``assert_exactly_once(sage, ids)``: the invariant every fault must keep;
- ``reap_until_finished(line)``: beat's reaper ticked until a run line a worker left is finished.
"""

from __future__ import annotations

from collections import Counter

import pytest

from companies.services import company_referential_pull
from invoices.models import Invoice
from synchro.beat import orphans_reap
from synchro.models import SyncRun, SyncRunCompany
from synchro.runs import run_company_execute, run_start
from tests.support.polling import wait_for


def pull(company):
    """The company's referential pulled from the stub, and the company as the pull left it."""
    company_referential_pull(company=company)
    company.refresh_from_db()
    return company


@pytest.fixture
def pulled(jno):
    """JNO, its referential pulled from the stub: ready for invoices and exports."""
    return pull(jno)


def export(
    company,
    *,
    kind: str = "all",
    invoices: list[int] | None = None,
    trigger: str = SyncRun.Trigger.EXPORT,
    user=None,
    include_pull: bool = False,
) -> SyncRunCompany:
    """One run of one company, executed in this process: everything of ``kind``, or the ticked ``invoices``.

    ``include_pull`` pulls the referential first, as ``schedule_tick`` and ``sync_now`` start an automatic run.
    """
    selection = {"kind": kind, "filters": {}} if invoices is None else {"kind": kind, "invoices": invoices}
    run = run_start(trigger=trigger, user=user, companies=[company], selection=selection, include_pull=include_pull)
    return run_company_execute(run_company_id=run.companies.get().pk)


def booked(sage, company: str = "JNO") -> Counter[str]:
    """How many times Sage holds each of SFD's keys (``SFD-<invoice>-V<version>``), the stub's own entries left out."""
    return Counter(e["external_id"] for e in sage.entries(company) if e["external_id"].startswith("SFD-"))


def assert_exactly_once(sage, invoice_ids, company: str = "JNO") -> None:
    """Sage holds each invoice's first version once and nothing else of SFD's; SFD says each is integrated, with the
    piece number Sage gave it."""
    entries = booked(sage, company)
    assert [key for key, count in entries.items() if count > 1] == []
    assert set(entries) == {f"SFD-{pk}-V1" for pk in invoice_ids}
    assert Invoice.objects.filter(pk__in=invoice_ids, status=Invoice.Status.INTEGRATED).count() == len(invoice_ids)
    pieces = dict(Invoice.objects.filter(pk__in=invoice_ids).values_list("pk", "sage_piece_number"))
    by_key = {e["external_id"]: e["piece_number"] for e in sage.entries(company)}
    assert {pk: by_key[f"SFD-{pk}-V1"] for pk in invoice_ids} == pieces


def reap_until_finished(line: SyncRunCompany, *, timeout: float, message: str, interval: float = 0.5) -> list[int]:
    """Tick the reaper, as beat does every minute, until the run line is finished; how many run lines each tick
    dispatched again (the claim of a dead worker runs out, its line is sent to a live one)."""
    reaped: list[int] = []

    def finished() -> bool:
        reaped.append(orphans_reap()["lines"])
        line.refresh_from_db()
        return line.finished

    wait_for(finished, timeout=timeout, interval=interval, message=message)
    return reaped
