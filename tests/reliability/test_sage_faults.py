"""Sage misbehaving during an export: killed and restarted mid-batch, 503 for a while, garbage answers.

Each time: a clear error or anomaly, bounded time and memory, and nothing doubled in Sage.
"""

from __future__ import annotations

import threading
import time
import tracemalloc

import pytest
from django.db import connection

from invoices.models import ExportState, Invoice
from synchro.models import SyncItem, SyncRunCompany
from tests.support.exports import assert_exactly_once, booked, export, pull
from tests.support.invoices import bulk_validated_invoices
from tests.support.polling import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def pulled(jno, fast_retries):
    jno.connector.timeout_seconds = 2
    jno.connector.save()
    return pull(jno)


def test_the_stub_killed_mid_batch_and_restarted(pulled, sage, stub_process):
    ids = bulk_validated_invoices(pulled, 400)
    sage.faults({"match": "POST /companies/*/entries", "fault": "latency", "delay": 1.0})
    outcome = {}
    exporting = threading.Thread(target=lambda: (outcome.update(line=export(pulled)), connection.close()))
    exporting.start()
    wait_for(lambda: Invoice.objects.filter(export_state=ExportState.SENDING).exists(), timeout=20)
    stub_process.kill()  # while the batch is on the wire
    exporting.join(60)
    line = outcome["line"]
    assert line.status == SyncRunCompany.Status.FAILED
    assert "Sage FRP 1000" in line.error
    stub_process.start()
    for _attempt in range(3):
        if (
            export(pulled).status == SyncRunCompany.Status.SUCCEEDED
            and not SyncItem.objects.exclude(status=SyncItem.Status.INTEGRATED).exists()
        ):
            break
    assert_exactly_once(sage, ids)


def test_503_with_retry_after_for_a_while_fails_cleanly_then_passes(pulled, sage):
    ids = bulk_validated_invoices(pulled, 20)
    # « A minute » of 503, scaled down to 4 s: the export waits as told, gives up clearly, and the next one passes.
    sage.faults(
        {"match": "POST /companies/*/entries", "fault": "status", "status": 503, "retry_after": 1, "for_seconds": 4}
    )
    started = time.monotonic()
    line = export(pulled)
    assert time.monotonic() - started < 10
    assert line.status == SyncRunCompany.Status.FAILED
    assert line.error == "Sage FRP 1000 est surchargé (HTTP 503)."
    assert set(Invoice.objects.filter(pk__in=ids).values_list("export_state", flat=True)) == {ExportState.TO_EXPORT}
    assert "GET companies/{code}/entries/{key}" not in sage.stats()  # « not processed »: nothing to look up

    def sage_takes_entries_again() -> bool:
        # An empty batch books nothing: it only asks whether the 503s are over.
        return sage.post("/companies/JNO/entries", {"mode": "simulation", "entries": []}).status_code == 200

    wait_for(sage_takes_entries_again, timeout=10, interval=0.5, message="Sage to stop answering 503")
    assert export(pulled).integrated == 20
    assert_exactly_once(sage, ids)


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ({"fault": "malformed"}, "Réponse illisible de Sage FRP 1000 (JSON invalide)."),
        ({"fault": "html", "status": 502}, "Sage FRP 1000 est en erreur (page HTML reçue) (HTTP 502)."),
        ({"fault": "oversized", "size": 20 * 1024 * 1024}, "Réponse de Sage FRP 1000 trop volumineuse."),
        ({"fault": "drip", "delay": 0.3}, "Sage FRP 1000 répond trop lentement (délai dépassé)."),
    ],
)
def test_garbage_answers_are_reconciled_and_said_in_french(pulled, sage, fault, message):
    ids = bulk_validated_invoices(pulled, 10)
    sage.faults({"match": "POST /companies/*/entries"} | fault)
    tracemalloc.start()
    started = time.monotonic()
    line = export(pulled)
    elapsed = time.monotonic() - started
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 60 and peak < 40 * 1024 * 1024  # the 20 MB body is never held whole
    # The answer could have followed a booking: every key was looked up, nothing was sent blindly again.
    assert line.status in (SyncRunCompany.Status.PARTIAL, SyncRunCompany.Status.FAILED)
    assert set(SyncItem.objects.values_list("last_error", flat=True)) == {message}
    assert sage.stats()["GET companies/{code}/entries/{key}"] >= 10
    assert not booked(sage)
    sage.clear_faults()
    for _attempt in range(2):
        export(pulled)
    assert_exactly_once(sage, ids)
