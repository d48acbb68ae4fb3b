"""Reads of the invoices app, scoped to the companies the user may see."""

from __future__ import annotations

import datetime as dt

from django.db.models import Exists, Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from companies.models import CompanyAccess
from companies.selectors import companies_for_user, visible_company_ids

from .models import IntakeFile, IntakeScan, Invoice


def invoices_for_user(user) -> QuerySet[Invoice]:
    return Invoice.objects.filter(company__in=companies_for_user(user))


def invoice_for_user(user, pk) -> Invoice:
    """One invoice of a company the user may see; any other answers 404."""
    return get_object_or_404(invoices_for_user(user).select_related("company", "supplier", "bap_by"), pk=pk)


def invoices_filtered(invoices: QuerySet[Invoice], filters: dict, *, state_field: str = "status") -> QuerySet[Invoice]:
    """The filters the invoice list and the Visuel Synchronisations screen share: company, status (of the invoice,
    or of one of its notions with Sage: ``state_field``), supplier (its exact code or part of its name), dates."""
    if filters.get("company"):
        invoices = invoices.filter(company=filters["company"])
    if filters.get("status"):
        invoices = invoices.filter(**{state_field: filters["status"]})
    if filters.get("supplier"):
        text = filters["supplier"]
        invoices = invoices.filter(Q(supplier__code__iexact=text) | Q(supplier__label__icontains=text))
    if filters.get("date_from"):
        invoices = invoices.filter(invoice_date__gte=filters["date_from"])
    if filters.get("date_to"):
        invoices = invoices.filter(invoice_date__lte=filters["date_to"])
    return invoices


def invoice_list(user, *, filters: dict) -> QuerySet[Invoice]:
    invoices = invoices_filtered(invoices_for_user(user).select_related("company", "supplier"), filters)
    if filters.get("number"):
        invoices = invoices.filter(number__icontains=filters["number"])
    if filters.get("bap") == "yes":
        invoices = invoices.filter(bap=True)
    elif filters.get("bap") == "no":
        invoices = invoices.filter(bap=False)
    # A paper invoice's reading (the words of its pages) is for its own page only.
    return invoices.defer("scan", "einvoice").order_by("-invoice_date", "-id")


def invoice_history(invoice: Invoice) -> dict:
    return {
        "events": list(invoice.events.all()[:50]),
        "sync_items": list(invoice.sync_items.order_by("-created_at")[:20]),
        "open_anomalies": list(invoice.anomalies.filter(cleared_at__isnull=True, simulated=False)),
        "past_anomalies": list(invoice.anomalies.filter(cleared_at__isnull=False, simulated=False)[:20]),
    }


# --- « Imports » --------------------------------------------------------------------------------------------
# A file belongs to the company whose folder received it and, when its buyer routed it, to the company it was
# addressed to as well: the users of either see it.


def intake_files_visible(visible: list[int] | None) -> QuerySet[IntakeFile]:
    """The files of the companies ``visible`` (``visible_company_ids``: None for every company)."""
    files = IntakeFile.objects.all()
    if visible is not None:
        files = files.filter(Q(company_id__in=visible) | Q(routed_to_id__in=visible))
    return files


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=timezone.get_current_timezone())


def intake_file_list(visible: list[int] | None, *, filters: dict) -> QuerySet[IntakeFile]:
    """The « Imports » list, newest first; the period is of days in Europe/Paris."""
    files = intake_files_visible(visible).select_related("company", "routed_to", "invoice")
    if filters.get("company"):
        company = filters["company"].pk
        files = files.filter(Q(company_id=company) | Q(routed_to_id=company))
    if filters.get("outcome"):
        files = files.filter(outcome=filters["outcome"])
    if filters.get("unseen"):
        files = files.filter(outcome=IntakeFile.Outcome.REFUSED, seen_at__isnull=True)
    if filters.get("date_from"):
        files = files.filter(received_at__gte=_day_start(filters["date_from"]))
    if filters.get("date_to"):
        files = files.filter(received_at__lt=_day_start(filters["date_to"] + dt.timedelta(days=1)))
    if filters.get("name"):
        files = files.filter(name__icontains=filters["name"])
    return files.order_by("-received_at", "-id")


def intake_file_for_user(user, pk: int) -> IntakeFile:
    """One file of a company the user may see; any other answers 404."""
    return get_object_or_404(
        intake_files_visible(visible_company_ids(user)).select_related("company", "routed_to", "invoice"), pk=pk
    )


def unseen_refused_files(user) -> QuerySet[IntakeFile]:
    """The refused files nobody has seen yet, in the user's companies — in one statement (the user's companies are a
    subquery of it, not a query of their own), which the partial index of the unseen refused files serves."""
    files = IntakeFile.objects.filter(outcome=IntakeFile.Outcome.REFUSED, seen_at__isnull=True)
    if not user.is_superuser:
        access = CompanyAccess.objects.filter(user=user)
        listed = access.values("companies")
        files = files.filter(
            Exists(access.filter(all_companies=True)) | Q(company_id__in=listed) | Q(routed_to_id__in=listed)
        )
    return files


def unseen_refused_count(user) -> int:
    """The menu's badge."""
    return unseen_refused_files(user).count()


def intake_scans_for_user(user, batch) -> list[IntakeScan]:
    """The scans of one « Importer », those of the user's companies only."""
    scans = IntakeScan.objects.filter(batch=batch).select_related("company")
    visible = visible_company_ids(user)
    if visible is not None:
        scans = scans.filter(company_id__in=visible)
    return list(scans)
