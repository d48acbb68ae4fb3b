"""« Simuler »: Sage's simulation mode on a selection; anomalies recorded for the run, nothing else changes."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from connectors.sage_frp1000.client import SageError, error_triples
from invoices.models import Invoice

from .anomalies import anomaly_build
from .batches import batch_payloads, batch_rows
from .models import Anomaly, SyncItem, SyncRunCompany
from .precheck import Referential
from .selection import selection_invoices


def simulation_run(line: SyncRunCompany, log) -> None:
    """« Simuler »: Sage's simulation mode on the selection; anomalies are recorded for the run, nothing else.

    Nothing it does outlives it, so an attempt after a dead one starts again from the beginning: what the dead one
    recorded is replaced, and the counters start from zero (each batch's anomalies and counts in one transaction).
    """
    company, run = line.company, line.run
    invoices = selection_invoices(run.selection, kind=SyncItem.Kind.CREATION, company=company, automatic=False)
    ids = list(invoices.order_by("pk").values_list("pk", flat=True))
    with transaction.atomic():
        Anomaly.objects.filter(run=run, company=company, simulated=True).delete()
        SyncRunCompany.objects.filter(pk=line.pk).update(
            status=SyncRunCompany.Status.RUNNING,
            started_at=timezone.now(),
            total=len(ids),
            done=0,
            integrated=0,
            rejected=0,
        )
    referential = Referential(company)
    status, error_message, refused = SyncRunCompany.Status.SUCCEEDED, "", 0
    try:
        with company.connector.client() as client:
            for start in range(0, len(ids), settings.SYNC_BATCH_SIZE):
                rows = batch_rows(Invoice.objects.filter(pk__in=ids[start : start + settings.SYNC_BATCH_SIZE]))
                payloads, local = batch_payloads(company, referential, rows)
                simulated = {"company": company, "run": run, "simulated": True}
                anomalies = [
                    anomaly_build(
                        invoice_id=pk, error=error, payload=payloads.get(pk, {}), source=Anomaly.Source.SFD, **simulated
                    )
                    for pk, found in local.items()
                    for error in found
                ]
                to_send = [(pk, payload) for pk, payload in payloads.items() if pk not in local]
                if to_send:
                    results = client.post_entries(company.code, [p for _, p in to_send], simulate=True)
                    for (pk, payload), result in zip(to_send, results, strict=True):
                        anomalies.extend(
                            anomaly_build(invoice_id=pk, error=error, payload=payload, **simulated)
                            for error in error_triples(result.errors)
                        )
                refused_ids = {anomaly.invoice_id for anomaly in anomalies}
                refused += len(refused_ids)
                with transaction.atomic():
                    Anomaly.objects.bulk_create(anomalies)
                    SyncRunCompany.objects.filter(pk=line.pk).update(
                        done=F("done") + len(rows),
                        integrated=F("integrated") + len(rows) - len(refused_ids),
                        rejected=F("rejected") + len(refused_ids),
                    )
    except SageError as failure:
        status, error_message = SyncRunCompany.Status.FAILED, failure.message
        log.warning("simulation failed: %s", failure.message)
    if status == SyncRunCompany.Status.SUCCEEDED and refused:
        status = SyncRunCompany.Status.PARTIAL
    SyncRunCompany.objects.filter(pk=line.pk).update(status=status, error=error_message, finished_at=timezone.now())
