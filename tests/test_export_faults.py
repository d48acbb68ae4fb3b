"""Exactly once in Sage under faults: every unknown outcome is reconciled by key, never blindly resent."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection

from companies.lease import CompanyBusy
from invoices.models import ExportState, Invoice
from synchro.models import SyncItem, SyncRun, SyncRunCompany
from tests.support.exports import assert_exactly_once, export, pull
from tests.support.invoices import bulk_validated_invoices, make_invoice

pytestmark = pytest.mark.django_db(transaction=True)

POST = "POST companies/{code}/entries"
LOOKUP = "GET companies/{code}/entries/{key}"


@pytest.fixture
def pulled(jno, fast_retries):
    jno.connector.timeout_seconds = 1
    jno.connector.save()
    return pull(jno)


def test_a_500_is_reconciled_before_anything_is_sent_again(pulled, sage):
    ids = bulk_validated_invoices(pulled, 5)
    sage.faults({"match": "POST /companies/*/entries", "fault": "status", "status": 500, "times": 1})
    line = export(pulled)
    assert line.integrated == 5
    stats = sage.stats()
    assert stats[POST] == 2 and stats[LOOKUP] == 5
    assert_exactly_once(sage, ids)


def test_a_timeout_after_commit_is_found_by_its_key(pulled, sage):
    ids = bulk_validated_invoices(pulled, 5)
    sage.faults({"match": "POST /companies/*/entries", "fault": "timeout_after_commit", "delay": 2, "times": 1})
    line = export(pulled)
    assert line.integrated == 5
    assert sage.stats()[POST] == 1  # found by lookup: never sent twice
    assert_exactly_once(sage, ids)
    events = set(Invoice.objects.get(pk=ids[0]).events.values_list("message", flat=True))
    assert any("Retrouvée dans Sage FRP 1000 après vérification" in message for message in events)


@pytest.mark.parametrize("fault", ["reset", "reset_after_commit"])
def test_a_reset_connection_is_reconciled(pulled, sage, fault):
    ids = bulk_validated_invoices(pulled, 4)
    sage.faults({"match": "POST /companies/*/entries", "fault": fault, "times": 1})
    assert export(pulled).integrated == 4
    assert_exactly_once(sage, ids)


def test_a_503_with_retry_after_is_simply_retried(pulled, sage):
    ids = bulk_validated_invoices(pulled, 3)
    sage.faults({"match": "POST /companies/*/entries", "fault": "status", "status": 503, "retry_after": 1, "times": 1})
    assert export(pulled).integrated == 3
    stats = sage.stats()
    assert stats[POST] == 2 and LOOKUP not in stats  # a 503 says « not processed »: no lookup needed
    assert_exactly_once(sage, ids)


def test_sage_down_leaves_everything_to_export_and_says_why(pulled, sage, stub_process):
    ids = bulk_validated_invoices(pulled, 3)
    stub_process.kill()
    try:
        line = export(pulled)
    finally:
        stub_process.start()
    assert line.status == SyncRunCompany.Status.FAILED
    assert line.error == "Sage FRP 1000 est injoignable (connexion refusée)."
    assert set(Invoice.objects.filter(pk__in=ids).values_list("export_state", flat=True)) == {ExportState.TO_EXPORT}
    assert set(SyncItem.objects.values_list("last_error", flat=True)) == {line.error}
    assert export(pulled).integrated == 3
    assert_exactly_once(sage, ids)


def test_a_batch_prepared_while_the_run_fails_goes_back_to_export(pulled, sage, settings):
    """The next batch is claimed (committed « en cours ») while the previous one is in Sage's hands; when that one
    ends the run (the key refused on the second send), the batch claimed meanwhile was never sent: it goes back to
    « à exporter », not « à vérifier »."""
    settings.SYNC_BATCH_SIZE = 4
    ids = bulk_validated_invoices(pulled, 12)
    sage.faults({"match": "POST /companies/*/entries", "fault": "status", "status": 401, "after": 1})
    line = export(pulled)
    assert line.status == SyncRunCompany.Status.FAILED and line.error == "Clé API refusée par Sage FRP 1000."
    assert line.integrated == 4 and line.unknown == 0
    assert sage.stats()[POST] == 2  # the third batch never left
    states = Counter(Invoice.objects.filter(pk__in=ids).values_list("export_state", flat=True))
    assert states == {ExportState.INTEGRATED: 4, ExportState.TO_EXPORT: 8}
    assert Counter(SyncItem.objects.values_list("status", flat=True)) == {
        SyncItem.Status.INTEGRATED: 4,
        SyncItem.Status.TO_EXPORT: 8,
    }
    sage.clear_faults()
    assert export(pulled).integrated == 8
    assert_exactly_once(sage, ids)


def test_a_batch_lost_in_flight_while_the_next_is_prepared_is_found_by_key(pulled, sage, settings):
    """The second send ends in a reset after Sage booked it, while the third batch is already claimed: the second
    is found by its keys, the third sent once, every entry booked once."""
    settings.SYNC_BATCH_SIZE = 4
    ids = bulk_validated_invoices(pulled, 12)
    sage.faults({"match": "POST /companies/*/entries", "fault": "reset_after_commit", "after": 1, "times": 1})
    line = export(pulled)
    assert (line.status, line.integrated, line.unknown) == (SyncRunCompany.Status.SUCCEEDED, 12, 0)
    stats = sage.stats()
    assert stats[POST] == 3 and stats[LOOKUP] == 4
    assert_exactly_once(sage, ids)


def test_what_a_crash_left_en_cours_is_reconciled_first(pulled, sage):
    """Two items committed « en cours » by a worker that died: one had reached Sage, the other not."""
    from invoices.validation import entry_for_invoice

    reached, lost = make_invoice(pulled, number="R", validate=True), make_invoice(pulled, number="L", validate=True)
    for invoice in (reached, lost):
        payload = entry_for_invoice(invoice).payload(invoice.external_id)
        SyncItem.objects.create(
            invoice=invoice, company=pulled, kind=SyncItem.Kind.CREATION, version=1, key=invoice.external_id,
            status=SyncItem.Status.SENDING, payload=payload, attempts=1,
        )  # fmt: skip
        Invoice.objects.filter(pk=invoice.pk).update(export_state=ExportState.SENDING)
    sage.post("/companies/JNO/entries", {"entries": [SyncItem.objects.get(invoice=reached).payload]})
    line = export(pulled)
    assert line.integrated == 2
    assert sage.stats()[POST] == 2  # ours above, then only the lost one
    assert_exactly_once(sage, [reached.pk, lost.pk])


def test_two_exports_of_the_same_selection_at_once_book_each_entry_once(pulled, sage):
    ids = bulk_validated_invoices(pulled, 30)
    sage.faults({"match": "POST /companies/*/entries", "fault": "latency", "delay": 0.5})
    outcomes = []

    def run():
        try:
            outcomes.append(export(pulled).integrated)
        except CompanyBusy as busy:
            outcomes.append(str(busy))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(map(str, outcomes)) in (
        ["0", "30"],
        sorted(["30", next(o for o in outcomes if "déjà en cours" in str(o))]),
    )
    assert_exactly_once(sage, ids)


def test_a_manual_export_during_a_scheduled_run_doubles_nothing(pulled, sage):
    ids = bulk_validated_invoices(pulled, 20)
    sage.faults({"match": "POST /companies/*/entries", "fault": "latency", "delay": 0.5})
    scheduled = threading.Thread(target=lambda: (export(pulled, trigger=SyncRun.Trigger.SCHEDULE), connection.close()))
    scheduled.start()
    from tests.support.polling import wait_for

    wait_for(lambda: Invoice.objects.filter(export_state=ExportState.SENDING).exists(), timeout=10)
    with pytest.raises(CompanyBusy):
        export(pulled)
    scheduled.join(60)
    assert export(pulled).integrated == 0
    assert_exactly_once(sage, ids)


@pytest.mark.slow
def test_two_thousand_entries_under_faults_are_all_integrated_exactly_once(pulled, sage, settings):
    settings.SYNC_SEND_ROUNDS = 3
    ids = bulk_validated_invoices(pulled, 2000)
    sage.faults(
        {"match": "POST /companies/*/entries", "fault": "status", "status": 500, "probability": 0.2},
        {"match": "POST /companies/*/entries", "fault": "timeout_after_commit", "delay": 1.5, "probability": 0.1},
        {"match": "POST /companies/*/entries", "fault": "reset", "probability": 0.05},
        {"match": "* *", "fault": "latency", "delay": 0.02, "probability": 0.3},
        seed=7,
    )
    for _attempt in range(10):
        export(pulled)
        if not Invoice.objects.filter(pk__in=ids).exclude(status=Invoice.Status.INTEGRATED).exists():
            break
    assert_exactly_once(sage, ids)
    assert not SyncItem.objects.exclude(status=SyncItem.Status.INTEGRATED).exists()
    assert sage.stats()[POST] > 10  # the faults did happen
