"""Anomalies are data: each error Sage raised (or SFD's own check raised before sending, with Sage's codes) is stored
with its code, the field in French words, Sage's message and a hint; the invoice's history says it was refused.

Built in one place (``anomaly_build``) for an export, an update and a simulation alike.
"""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext as _

from companies.models import Company
from connectors.sage_frp1000.client import ErrorTriple
from core.bulk import rows_update
from invoices.models import ExportState, Invoice, InvoiceEvent

from .hints import field_label, hint_for
from .models import Anomaly, SyncItem, SyncRun


def anomaly_build(
    *,
    invoice_id: int,
    company: Company,
    run: SyncRun,
    error: ErrorTriple,
    payload: dict,
    source: str = Anomaly.Source.SAGE,
    item_id: int | None = None,
    simulated: bool = False,
) -> Anomaly:
    """One anomaly, unsaved: the error ``(code, field, message)`` with the field's label and a hint, cut to the
    columns' sizes."""
    code, field, message = error
    return Anomaly(
        item_id=item_id, invoice_id=invoice_id, company=company, run=run, simulated=simulated, source=source,
        code=code[:40], field=field_label(field)[:100], message=message[:500],
        hint=hint_for(code, payload, field)[:500],
    )  # fmt: skip


def rejections_record(
    refused: list[tuple[SyncItem, list[ErrorTriple]]],
    *,
    company: Company,
    run: SyncRun,
    actor: str,
    source: str,
    state_field: str = "export_state",
) -> None:
    """Items refused (by Sage, or by SFD's check before sending), each with its errors: the items *anomalie*, their
    anomalies (an earlier open one of the same invoice replaced), an event in each invoice's history. In the
    caller's transaction."""
    now = timezone.now()
    anomalies, events = [], []
    for item, errors in refused:
        item.status = SyncItem.Status.REJECTED
        item.last_error = errors[0][2] if errors else _("Refusée par Sage FRP 1000.")
        item.updated_at = now
        for error in errors or [("REJECTED", "", item.last_error)]:
            anomalies.append(
                anomaly_build(
                    item_id=item.pk, invoice_id=item.invoice_id, company=company, run=run, source=source,
                    error=error, payload=item.payload,
                )
            )  # fmt: skip
        codes = ", ".join(sorted({code for code, *_ in errors}))
        events.append(
            InvoiceEvent(
                invoice_id=item.invoice_id,
                actor_label=actor,
                kind=InvoiceEvent.Kind.REJECTED,
                message=(
                    _("Refusée avant envoi (contrôle SFD) : %(codes)s.")
                    if source == Anomaly.Source.SFD
                    else _("Refusée par Sage FRP 1000 : %(codes)s.")
                )
                % {"codes": codes},
            )
        )
    ids = [item.invoice_id for item, _ in refused]
    # An earlier version's anomalies of the same invoice were cleared when it was corrected; a re-export of
    # the same version replaces its own.
    Anomaly.objects.filter(invoice_id__any=ids, cleared_at__isnull=True, simulated=False).update(
        cleared_at=now, cleared_reason=Anomaly.ClearedReason.REPLACED
    )
    rows_update(
        SyncItem,
        ["status", "last_error", "updated_at"],
        sorted((item.pk, item.status, item.last_error, item.updated_at) for item, _ in refused),
    )
    Anomaly.objects.bulk_create(anomalies)
    InvoiceEvent.objects.bulk_create(events)
    Invoice.objects.filter(pk__any=ids).update(**{state_field: ExportState.REJECTED})
