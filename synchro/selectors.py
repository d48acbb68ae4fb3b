"""Reads of the « Visuel Synchronisations » screen and of the history, scoped to the user's companies."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.shortcuts import get_object_or_404

from companies.models import Company
from companies.selectors import companies_for_user, visible_company_ids
from invoices.counters import state_count
from invoices.models import ExportState, Invoice

from .models import Anomaly, SyncItem, SyncRun, SyncRunCompany
from .services import apply_filters

PAGE_SIZE = 50
KINDS = {SyncItem.Kind.CREATION: "export_state", SyncItem.Kind.UPDATE: "update_state"}


def state_field(kind: str) -> str:
    return KINDS.get(kind, "export_state")


def visuel_rows(user, *, kind: str, filters: dict) -> QuerySet[Invoice]:
    """Every invoice with something to say about the notion (entry or update), filtered."""
    return _visuel_rows(visible_company_ids(user), kind=kind, filters=filters)


def _visuel_rows(visible: list[int] | None, *, kind: str, filters: dict) -> QuerySet[Invoice]:
    field = state_field(kind)
    rows = Invoice.objects.exclude(**{field: ExportState.NONE})
    if visible is not None:
        # The ids themselves, not a subquery: a count over the rows (dates, supplier) reads only these companies'.
        rows = rows.filter(company_id__in=visible)
    # Otherwise every company is visible, and every invoice has a company: no condition at all.
    return apply_filters(rows, filters, state_field=field)


# Filters the counter of invoices per company and state answers; any other (dates, supplier) counts the rows.
COUNTED_FILTERS = frozenset({"company", "status"})


def _visuel_count(visible: list[int] | None, *, kind: str, filters: dict) -> int | None:
    """The exact count of ``_visuel_rows`` from the counter (``invoices.counters``), whatever the number of rows;
    None when a filter needs the rows themselves."""
    if any(value for name, value in filters.items() if name not in COUNTED_FILTERS):
        return None
    company_ids = visible
    if filters.get("company"):
        company = int(filters["company"])
        company_ids = [company] if visible is None or company in visible else []
    return state_count(field=state_field(kind), company_ids=company_ids, state=filters.get("status") or "")


def visuel_page(user, *, kind: str, filters: dict, after: str = "", before: str = "", last: bool = False) -> Page:
    """One page of the Visuel list; its count from the counter when the filters allow (no date, no supplier)."""
    visible = visible_company_ids(user)
    rows = _visuel_rows(visible, kind=kind, filters=filters)
    count = _visuel_count(visible, kind=kind, filters=filters)
    return keyset_page(rows, after=after, before=before, last=last, count=count)


def companies_with_rows(user, rows: QuerySet[Invoice]) -> list[Company]:
    """The companies among the user's that have at least one of ``rows``: one probe per company, not a scan."""
    return list(
        companies_for_user(user).filter(Exists(rows.filter(company=OuterRef("pk")))).select_related("connector")
    )


@dataclass
class Page:
    rows: list[Invoice]
    count: int
    has_next: bool
    has_previous: bool
    next_cursor: str | None
    previous_cursor: str | None


def _cursor(invoice: Invoice) -> str:
    return f"{invoice.invoice_date.isoformat() if invoice.invoice_date else ''}_{invoice.pk}"


def _parse_cursor(value: str) -> tuple[dt.date | None, int] | None:
    try:
        date_text, pk = value.rsplit("_", 1)
        return (dt.date.fromisoformat(date_text) if date_text else None), int(pk)
    except ValueError:
        return None


def keyset_page(
    rows: QuerySet[Invoice], *, after: str = "", before: str = "", last: bool = False, count: int | None = None
) -> Page:
    """Newest first, by (date, id): the first and the last page cost the same whatever the number of rows.
    ``count``: the number of ``rows`` when the caller knows it, else counted here."""
    rows = rows.select_related("company", "supplier")
    newest_first = rows.order_by("-invoice_date", "-id")
    oldest_first = rows.order_by("invoice_date", "id")
    after_key, before_key = _parse_cursor(after) if after else None, _parse_cursor(before) if before else None
    if after_key and after_key[0]:
        date, pk = after_key
        chunk = list(newest_first.filter(Q(invoice_date__lt=date) | Q(invoice_date=date, pk__lt=pk))[: PAGE_SIZE + 1])
        has_more, page_rows = len(chunk) > PAGE_SIZE, chunk[:PAGE_SIZE]
        has_next, has_previous = has_more, True
    elif before_key and before_key[0]:
        date, pk = before_key
        chunk = list(oldest_first.filter(Q(invoice_date__gt=date) | Q(invoice_date=date, pk__gt=pk))[: PAGE_SIZE + 1])
        has_more, page_rows = len(chunk) > PAGE_SIZE, list(reversed(chunk[:PAGE_SIZE]))
        has_next, has_previous = True, has_more
    elif last:
        chunk = list(oldest_first[: PAGE_SIZE + 1])
        has_more, page_rows = len(chunk) > PAGE_SIZE, list(reversed(chunk[:PAGE_SIZE]))
        has_next, has_previous = False, has_more
    else:
        chunk = list(newest_first[: PAGE_SIZE + 1])
        has_more, page_rows = len(chunk) > PAGE_SIZE, chunk[:PAGE_SIZE]
        has_next, has_previous = has_more, False
    return Page(
        rows=page_rows,
        count=rows.count() if count is None else count,
        has_next=has_next and bool(page_rows),
        has_previous=has_previous and bool(page_rows),
        next_cursor=_cursor(page_rows[-1]) if page_rows else None,
        previous_cursor=_cursor(page_rows[0]) if page_rows else None,
    )


def open_anomalies_for(user, invoice_pk: int) -> tuple[Invoice, list[Anomaly]]:
    invoice = get_object_or_404(
        Invoice.objects.filter(company__in=companies_for_user(user)).select_related("company", "supplier"),
        pk=invoice_pk,
    )
    anomalies = list(
        Anomaly.objects.filter(invoice=invoice, cleared_at__isnull=True, simulated=False).select_related("item")
    )
    return invoice, anomalies


def runs_for_user(user) -> QuerySet[SyncRun]:
    """Runs that touched at least one company the user may see."""
    visible = companies_for_user(user)
    return (
        SyncRun.objects.filter(Exists(SyncRunCompany.objects.filter(run=OuterRef("pk"), company__in=visible)))
        .select_related("user")
        .order_by("-started_at", "-id")
    )


def run_for_user(user, pk: int) -> tuple[SyncRun, list[SyncRunCompany]]:
    run = get_object_or_404(runs_for_user(user), pk=pk)
    lines = list(
        SyncRunCompany.objects.filter(run=run, company__in=companies_for_user(user))
        .select_related("company")
        .order_by("company__name")
    )
    return run, lines


def run_items(run: SyncRun, lines: list[SyncRunCompany]) -> QuerySet[SyncItem]:
    return (
        SyncItem.objects.filter(run=run, company_id__in=[line.company_id for line in lines])
        .select_related("invoice__supplier", "company")
        .order_by("company__name", "invoice__number")
    )


def run_simulated_anomalies(run: SyncRun, lines: list[SyncRunCompany]) -> QuerySet[Anomaly]:
    return (
        Anomaly.objects.filter(run=run, simulated=True, company_id__in=[line.company_id for line in lines])
        .select_related("invoice__supplier", "company")
        .order_by("company__name", "invoice__number", "id")
    )


def run_progress(lines: list[SyncRunCompany]) -> dict:
    total = sum(line.total for line in lines)
    done = sum(line.done for line in lines)
    return {
        "total": total,
        "done": done,
        "percent": int(done * 100 / total) if total else (100 if all(line.finished for line in lines) else 0),
        "finished": all(line.finished for line in lines),
        "integrated": sum(line.integrated for line in lines),
        "updated": sum(line.updated for line in lines),
        "rejected": sum(line.rejected + line.update_rejected for line in lines),
        "unknown": sum(line.unknown for line in lines),
        "open_anomalies": sum(line.open_anomalies or 0 for line in lines),
    }
