"""Reads of the invoices app, scoped to the companies the user may see."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from companies.selectors import companies_for_user

from .models import Invoice


def invoices_for_user(user) -> QuerySet[Invoice]:
    return Invoice.objects.filter(company__in=companies_for_user(user))


def invoice_for_user(user, pk) -> Invoice:
    """One invoice of a company the user may see; any other answers 404."""
    return get_object_or_404(invoices_for_user(user).select_related("company", "supplier", "bap_by"), pk=pk)


def invoice_list(user, *, filters: dict) -> QuerySet[Invoice]:
    invoices = invoices_for_user(user).select_related("company", "supplier")
    if filters.get("company"):
        invoices = invoices.filter(company=filters["company"])
    if filters.get("status"):
        invoices = invoices.filter(status=filters["status"])
    if filters.get("supplier"):
        text = filters["supplier"]
        invoices = invoices.filter(Q(supplier__code__iexact=text) | Q(supplier__label__icontains=text))
    if filters.get("number"):
        invoices = invoices.filter(number__icontains=filters["number"])
    if filters.get("bap") == "yes":
        invoices = invoices.filter(bap=True)
    elif filters.get("bap") == "no":
        invoices = invoices.filter(bap=False)
    if filters.get("date_from"):
        invoices = invoices.filter(invoice_date__gte=filters["date_from"])
    if filters.get("date_to"):
        invoices = invoices.filter(invoice_date__lte=filters["date_to"])
    return invoices.order_by("-invoice_date", "-id")


def invoice_history(invoice: Invoice) -> dict:
    return {
        "events": list(invoice.events.all()[:50]),
        "sync_items": list(invoice.sync_items.order_by("-created_at")[:20]),
        "open_anomalies": list(invoice.anomalies.filter(cleared_at__isnull=True, simulated=False)),
        "past_anomalies": list(invoice.anomalies.filter(cleared_at__isnull=False, simulated=False)[:20]),
    }
