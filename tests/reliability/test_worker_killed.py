"""Real workers killed with SIGKILL in their main process, on the embedded default's file-system broker and on Redis:
the message is gone (the file-system broker hands it out once; Redis keeps it unacknowledged for an hour), so the
company must free itself one lease after the worker's last sign of life, the screen must say until when at the
latest, and the reaper must dispatch the work again — counted once.

And the other side of the lease: a sync that is alive keeps its company however long one call to Sage takes, and
« Simuler » is never run twice by the reaper.
"""

from __future__ import annotations

import time
from html import unescape

import pytest
from django.urls import reverse
from django.utils import timezone

from companies.models import Company
from companies.services import company_referential_pull
from invoices.models import ExportState, Invoice
from synchro.beat import orphans_reap
from synchro.models import Anomaly, SyncRun, SyncRunCompany
from synchro.runs import run_start
from synchro.selectors import run_progress
from tests.support.exports import assert_exactly_once, booked, reap_until_finished
from tests.support.invoices import bulk_validated_invoices, make_invoice
from tests.support.polling import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.slow]

LEASE = 6
FAST = {"SYNC_LEASE_SECONDS": str(LEASE), "SYNC_REAP_SECONDS": "2", "SAGE_BACKOFF_SECONDS": "0.05"}
POST = "POST companies/{code}/entries"


@pytest.fixture
def fast(settings):
    settings.SYNC_LEASE_SECONDS = LEASE
    settings.SYNC_REAP_SECONDS = 2
    return settings


def _company(pk: int) -> Company:
    return Company.objects.get(pk=pk)


def test_a_pull_whose_worker_was_killed_frees_the_company_within_a_lease(
    broker, fast, start_worker, sage, client, alice, jno
):
    # A Sage that takes its time on one list: the worker is killed while it waits.
    sage.faults({"match": "GET /companies/*/suppliers", "fault": "latency", "delay": 60})
    worker = start_worker(extra_env=broker | FAST, concurrency=1)
    client.force_login(alice)
    client.post(reverse("companies:pull"), {"companies": [jno.pk]})
    wait_for(
        lambda: _company(jno.pk).pull_status == Company.PullStatus.RUNNING and _company(jno.pk).sync_lease_token,
        timeout=60,
        message="the pull to start in the worker",
    )
    worker.kill()
    killed_at = time.monotonic()
    held_until = _company(jno.pk).sync_lease_until

    response = client.post(reverse("companies:pull"), {"companies": [jno.pk]}, follow=True)
    assert (
        "JNO : déjà en cours (mise à jour du référentiel) ; si elle s'est interrompue, la société sera libérée au plus"
        f" tard à {timezone.localtime(held_until):%H:%M}."
    ) in unescape(response.content.decode())

    sage.clear_faults()
    start_worker(extra_env=broker | FAST, concurrency=1)

    def pulled() -> bool:
        orphans_reap()  # what each beat tick does
        return _company(jno.pk).pull_status == Company.PullStatus.SUCCEEDED

    wait_for(pulled, timeout=60, interval=0.5, message="the reaper to dispatch the pull again")
    # Free one lease after the last renewal, then one tick of the reaper: about a lease, not ten minutes.
    assert time.monotonic() - killed_at < LEASE + 20
    assert _company(jno.pk).sync_lease_token == ""


def test_an_export_whose_worker_was_killed_is_finished_and_counted_once(broker, fast, start_worker, sage, jno):
    company_referential_pull(company=jno)
    ids = bulk_validated_invoices(jno, 500)
    # The kill lands while a batch is on the wire (Sage books it anyway, later).
    sage.faults({"match": "POST /companies/*/entries", "fault": "latency", "delay": 1.5})
    worker = start_worker(extra_env=broker | FAST, concurrency=1)
    run = run_start(trigger=SyncRun.Trigger.EXPORT, user=None, companies=[jno], selection={"kind": "all"})
    wait_for(
        lambda: Invoice.objects.filter(export_state=ExportState.SENDING).count() >= 200 and sage.stats().get(POST),
        timeout=60,
        message="a batch on the wire to Sage",
    )
    worker.kill()

    def every_batch_sage_received_is_booked() -> bool:
        return booked(sage).total() >= min(sage.stats().get(POST, 0) * 200, len(ids))

    wait_for(every_batch_sage_received_is_booked, timeout=20, message="the stub to book what the dead worker sent")
    sage.clear_faults()
    start_worker(extra_env=broker | FAST, concurrency=1)
    line = SyncRunCompany.objects.get(run=run)

    reap_until_finished(line, timeout=120, interval=0.5, message="the run to finish after the kill")
    assert_exactly_once(sage, ids)
    assert (line.total, line.done, line.integrated, line.rejected) == (500, 500, 500, 0)
    assert run_progress([line])["percent"] == 100


def test_a_call_to_sage_longer_than_the_lease_keeps_the_company(fast, start_worker, sage, jno):
    company_referential_pull(company=jno)
    ids = bulk_validated_invoices(jno, 30)
    # One answer takes three leases (within the connector's timeout): only the heartbeat keeps the claim meanwhile.
    jno.connector.timeout_seconds = 30
    jno.connector.save()
    sage.faults({"match": "POST /companies/*/entries", "fault": "latency", "delay": 3 * LEASE})
    start_worker(extra_env=FAST, concurrency=2)
    run = run_start(trigger=SyncRun.Trigger.EXPORT, user=None, companies=[jno], selection={"kind": "all"})
    line = SyncRunCompany.objects.get(run=run)
    wait_for(lambda: Invoice.objects.filter(export_state=ExportState.SENDING).exists(), message="the batch on its way")
    reaped = reap_until_finished(line, timeout=90, message="the export to finish")
    assert sum(reaped) == 0
    assert line.status == SyncRunCompany.Status.SUCCEEDED and line.error == ""
    assert (line.total, line.done, line.integrated) == (30, 30, 30)
    assert sage.stats()[POST] == 1
    assert Invoice.objects.filter(pk__in=ids, status=Invoice.Status.INTEGRATED).count() == 30


def test_a_simulation_longer_than_the_reap_delay_runs_once(fast, start_worker, sage, jno, settings):
    settings.SYNC_BATCH_SIZE = 100
    company_referential_pull(company=jno)
    bulk_validated_invoices(jno, 300)
    make_invoice(jno, number="FA-BLOQ", supplier="F0042", validate=True)  # SUPPLIER_BLOCKED: one anomaly
    sage.faults({"match": "POST /companies/*/entries", "fault": "latency", "delay": 2})
    start_worker(extra_env=FAST | {"SYNC_BATCH_SIZE": "100"}, concurrency=2)
    run = run_start(trigger=SyncRun.Trigger.SIMULATION, user=None, companies=[jno], selection={"kind": "creation"})
    line = SyncRunCompany.objects.get(run=run)

    reap_until_finished(line, timeout=90, interval=0.5, message="the simulation to finish")
    # Four batches, each read once: three sent once, the last holds only the blocked supplier (refused by SFD's check).
    assert sage.stats()[POST] == 3
    assert (line.total, line.done, line.integrated, line.rejected) == (301, 301, 300, 1)
    assert run_progress([line])["percent"] == 100
    assert Anomaly.objects.filter(run=run, simulated=True).count() == 1
    assert not Invoice.objects.filter(status=Invoice.Status.INTEGRATED).exists()
