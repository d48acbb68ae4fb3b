"""What a run sends: the export states each trigger may send, and the invoices a run's selection designates.

A read module: the selectors (the Visuel list) and the writers (export, updates, simulation) import it; it imports
no writer.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet

from companies.models import Company
from invoices.models import ExportState, Invoice
from invoices.selectors import invoices_filtered

from .models import Anomaly, SyncItem

# What « Exporter » may send: what waits, and what Sage refused (once fixed in Sage, it may pass).
MANUAL_STATES = (ExportState.TO_EXPORT, ExportState.REJECTED)
# What an automatic run sends: only what waits; a refused entry waits for its correction in SFD.
AUTOMATIC_STATES = (ExportState.TO_EXPORT,)


def sendable_states(*, automatic: bool) -> tuple[ExportState, ...]:
    return AUTOMATIC_STATES if automatic else MANUAL_STATES


def selection_invoices(selection: dict, *, kind: str, company: Company, automatic: bool) -> QuerySet[Invoice]:
    """The invoices of one company that a run's selection designates, for one kind (creation or update)."""
    state_field = "export_state" if kind == SyncItem.Kind.CREATION else "update_state"
    invoices = Invoice.objects.filter(company=company, **{f"{state_field}__in": sendable_states(automatic=automatic)})
    wanted_kind = selection.get("kind", "all")
    if wanted_kind not in ("all", kind):
        return invoices.none()
    if "invoices" in selection:
        return invoices.filter(pk__in=selection["invoices"])
    return selection_filtered(invoices, selection.get("filters", {}), state_field=state_field)


def selection_filtered(invoices: QuerySet[Invoice], filters: dict, *, state_field: str) -> QuerySet[Invoice]:
    """The filters of the Visuel Synchronisations screen, as stored in a run's selection: the invoice list's, and
    the code of an open anomaly."""
    invoices = invoices_filtered(invoices, filters, state_field=state_field)
    if filters.get("anomaly"):
        open_of_code = Anomaly.objects.filter(
            invoice=OuterRef("pk"), code=filters["anomaly"], cleared_at__isnull=True, simulated=False
        )
        invoices = invoices.filter(Exists(open_of_code))
    return invoices
