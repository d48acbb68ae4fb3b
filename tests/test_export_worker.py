"""A real Celery worker killed with SIGKILL in the middle of an export: after restart, exactly once."""

from __future__ import annotations

import pytest

from companies.services import company_referential_pull
from invoices.models import ExportState, Invoice
from synchro.models import SyncRun, SyncRunCompany
from synchro.runs import run_start
from tests.support.exports import assert_exactly_once, booked, reap_until_finished
from tests.support.invoices import bulk_validated_invoices
from tests.support.polling import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.slow]

FAST_LEASE = {"SYNC_LEASE_SECONDS": "3", "SYNC_REAP_SECONDS": "1", "SAGE_BACKOFF_SECONDS": "0.05"}
POST = "POST companies/{code}/entries"


def test_a_worker_killed_mid_export_loses_nothing_and_doubles_nothing(start_worker, sage, jno, settings):
    settings.SYNC_LEASE_SECONDS = 3
    settings.SYNC_REAP_SECONDS = 1
    company_referential_pull(company=jno)
    ids = bulk_validated_invoices(jno, 600)
    # Sage takes its time: the kill lands while a batch is on the wire (it is booked anyway, later).
    sage.faults({"match": "POST /companies/*/entries", "fault": "latency", "delay": 1.5})
    worker = start_worker(extra_env=FAST_LEASE)
    run = run_start(trigger=SyncRun.Trigger.EXPORT, user=None, companies=[jno], selection={"kind": "all"})
    wait_for(lambda: sage.stats().get(POST), timeout=60, message="a batch on the wire to Sage")
    worker.kill()
    assert Invoice.objects.filter(pk__in=ids, export_state=ExportState.SENDING).exists()

    def every_batch_sage_received_is_booked() -> bool:
        received = sage.stats().get(POST, 0) * settings.SYNC_BATCH_SIZE
        return booked(sage).total() >= min(received, len(ids))

    wait_for(every_batch_sage_received_is_booked, timeout=20, message="the stub to book what the dead worker sent")
    sage.clear_faults()

    start_worker(extra_env=FAST_LEASE)
    line = SyncRunCompany.objects.get(run=run)

    # What beat does every minute: the dead worker's claim expires, its run line is dispatched again.
    reap_until_finished(line, timeout=90, interval=1, message="the run to finish after the restart")
    assert_exactly_once(sage, ids)
