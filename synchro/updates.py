"""The updates of already integrated documents (*mises à jour*): the BAP changed after integration, pushed to Sage.

Their own idempotent protocol: each update carries the invoice's ``update_id``, which Sage applies once, so an update
whose outcome is unknown is simply sent again (no lookup, unlike an entry). One item per (invoice, BAP version).
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from connectors.sage_frp1000.client import SageAuthError, SageRejected, SageUnavailable, error_triples
from invoices.models import ExportState, Invoice, InvoiceEvent

from .export import CompanyExporter
from .models import Anomaly, SyncItem
from .selection import sendable_states


def updates_export(exporter: CompanyExporter) -> None:
    """Push every selected update of the exporter's company, one by one, the line's counters kept up."""
    for invoice_id in exporter.selected(SyncItem.Kind.UPDATE):
        _update_send(exporter, invoice_id)
        exporter.tally()
        exporter.heartbeat()
    exporter.tally(force=True)


def _update_send(exporter: CompanyExporter, invoice_id: int) -> None:
    company, run = exporter.company, exporter.run
    now = timezone.now()
    with transaction.atomic():
        invoice = (
            Invoice.objects.select_for_update(of=("self",))
            .filter(pk=invoice_id, update_state__in=sendable_states(automatic=exporter.automatic))
            .first()
        )
        if invoice is None:
            exporter.unselect(SyncItem.Kind.UPDATE)
            return
        payload = {
            "update_id": invoice.update_id,
            "bap": invoice.bap,
            "bap_date": invoice.bap_date.isoformat() if invoice.bap_date else None,
        }
        item, _created = SyncItem.objects.get_or_create(
            invoice=invoice,
            kind=SyncItem.Kind.UPDATE,
            version=invoice.bap_version,
            defaults={"company": company, "key": invoice.update_id},
        )
        item.payload = payload
        item.status = SyncItem.Status.SENDING
        item.attempts += 1
        item.last_attempt_at = now
        item.run = run
        item.save()
        Invoice.objects.filter(pk=invoice.pk).update(update_state=ExportState.SENDING, last_attempt_at=now)
        piece = invoice.sage_piece_number
    try:
        exporter.client.patch_entry(company.code, piece, payload)
    except SageRejected as error:
        with transaction.atomic():
            exporter.rejections_record(
                [(item, error_triples(error.errors) or [("REJECTED", "", error.message)])],
                source=Anomaly.Source.SAGE,
                state_field="update_state",
            )
        return
    except (SageUnavailable, SageAuthError) as error:
        # The update is idempotent (its update_id): back to *à exporter*, sent again next time.
        with transaction.atomic():
            SyncItem.objects.filter(pk=item.pk).update(status=SyncItem.Status.TO_EXPORT, last_error=error.message)
            Invoice.objects.filter(pk=invoice_id).update(update_state=ExportState.TO_EXPORT)
        raise
    with transaction.atomic():
        fresh = Invoice.objects.select_for_update(of=("self",)).get(pk=invoice_id)
        fresh.bap_pushed_version = max(fresh.bap_pushed_version, item.version)
        fresh.update_state = ExportState.INTEGRATED if fresh.bap_version == item.version else ExportState.TO_EXPORT
        fresh.save(update_fields=["bap_pushed_version", "update_state", "updated_at"])
        SyncItem.objects.filter(pk=item.pk).update(status=SyncItem.Status.INTEGRATED, piece_number=piece, last_error="")
        Anomaly.objects.filter(
            item__invoice_id=invoice_id, item__kind=SyncItem.Kind.UPDATE, cleared_at__isnull=True
        ).update(cleared_at=timezone.now(), cleared_reason=Anomaly.ClearedReason.UPDATE_APPLIED)
        InvoiceEvent.objects.create(
            invoice_id=invoice_id,
            actor_label=exporter.actor,
            kind=InvoiceEvent.Kind.UPDATED,
            message=_("BAP transmis à Sage FRP 1000 (pièce %(piece)s).") % {"piece": piece},
        )
