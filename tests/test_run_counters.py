"""A run line's counters stay true when its task runs again after a dead attempt (a redelivered message, or the
reaper's): « 402 / 804 traitée(s) · 602 intégrée(s) · 50 % » must never be shown for 402 invoices all integrated.

A worker that dies leaves its line « en cours », as here: the line is set back to *en cours* after an attempt that
stopped half-way, then the same task runs again with the same token. ``tests/reliability/test_worker_killed.py``
does it with real workers killed by SIGKILL.
"""

from __future__ import annotations

import pytest

from invoices.models import Invoice
from synchro.models import Anomaly, SyncRun, SyncRunCompany
from synchro.runs import run_company_execute, run_start
from synchro.selectors import run_progress
from tests.support.exports import booked, pull
from tests.support.invoices import bulk_validated_invoices, make_invoice

pytestmark = pytest.mark.django_db(transaction=True)

POST = "POST companies/{code}/entries"


@pytest.fixture
def pulled(jno, settings):
    settings.SAGE_RETRIES = 0
    settings.SYNC_BATCH_SIZE = 10
    return pull(jno)


def _line(trigger: str, company) -> SyncRunCompany:
    run = run_start(trigger=trigger, user=None, companies=[company], selection={"kind": "all", "filters": {}})
    return run.companies.get()


def _as_left_by_a_dead_worker(line: SyncRunCompany) -> None:
    SyncRunCompany.objects.filter(pk=line.pk).update(status=SyncRunCompany.Status.RUNNING, finished_at=None)


def test_an_export_run_again_after_a_dead_attempt_counts_each_invoice_once(pulled, sage):
    ids = bulk_validated_invoices(pulled, 45)
    line = _line(SyncRun.Trigger.EXPORT, pulled)
    # Sage stops answering after two batches: the attempt stops half-way.
    sage.faults({"match": "POST /companies/*/entries", "fault": "status", "status": 503, "after": 2})
    first = run_company_execute(run_company_id=line.pk, token="task-1")
    assert first.integrated == 20 and Invoice.objects.filter(status=Invoice.Status.INTEGRATED).count() == 20
    sage.clear_faults()
    _as_left_by_a_dead_worker(line)
    again = run_company_execute(run_company_id=line.pk, token="task-1")
    assert (again.total, again.done, again.integrated, again.rejected) == (45, 45, 45, 0)
    assert run_progress([again])["percent"] == 100
    assert Invoice.objects.filter(pk__in=ids, status=Invoice.Status.INTEGRATED).count() == 45


def test_an_export_whose_selection_changed_under_it_still_ends_at_100_percent(pulled, sage):
    ids = bulk_validated_invoices(pulled, 12)
    line = _line(SyncRun.Trigger.EXPORT, pulled)
    # An accountant takes one back before the batch is claimed: it is no longer this run's.
    Invoice.objects.filter(pk=ids[0]).update(export_state="")
    done = run_company_execute(run_company_id=line.pk, token="task-1")
    assert (done.total, done.done, done.integrated) == (11, 11, 11)
    assert run_progress([done])["percent"] == 100


def test_a_simulation_run_again_after_a_dead_attempt_starts_from_zero(pulled, sage):
    for number in range(3):
        make_invoice(pulled, number=f"FA-{number}", validate=True)
    make_invoice(pulled, number="FA-BLOQ", supplier="F0042", validate=True)  # SUPPLIER_BLOCKED
    line = _line(SyncRun.Trigger.SIMULATION, pulled)
    run_company_execute(run_company_id=line.pk, token="task-1")
    _as_left_by_a_dead_worker(line)
    again = run_company_execute(run_company_id=line.pk, token="task-1")
    assert (again.total, again.done, again.integrated, again.rejected) == (4, 4, 3, 1)
    assert run_progress([again])["percent"] == 100
    assert Anomaly.objects.filter(run=line.run, simulated=True).count() == 1
    assert not booked(sage)
