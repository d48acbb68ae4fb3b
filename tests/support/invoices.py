"""Invoices built through the services, on a company whose referential was pulled from the stub."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from companies.models import Account, AnalyticSection, Supplier, TaxCode
from invoices.accounting import cents
from invoices.services import LineData, invoice_create, invoice_validate


def make_invoice(
    company,
    *,
    supplier: str = "F0001",
    number: str = "FA-001",
    lines: list[tuple] = (("Fournitures", "100.00", "606400", "T20"),),
    invoice_date: dt.date = dt.date(2026, 10, 15),
    total_tva: Decimal | None = None,
    validate: bool = False,
    analytic: str | None = None,
    **fields,
):
    """Lines: (label, amount HT, account code, tax code). Totals are computed unless given."""
    supplier_row = Supplier.objects.get(company=company, code=supplier) if supplier else None
    line_data = []
    vat = Decimal("0")
    for label, amount, account, tax in lines:
        tax_code = TaxCode.objects.get(company=company, code=tax) if tax else None
        section = AnalyticSection.objects.get(company=company, code=analytic) if analytic else None
        line_data.append(
            LineData(
                label=label,
                amount_ht=Decimal(amount),
                account_id=Account.objects.get(company=company, code=account).pk if account else None,
                tax_code_id=tax_code.pk if tax_code else None,
                analytic_section_id=section.pk if section else None,
            )
        )
        if tax_code:
            vat += Decimal(amount) * tax_code.rate / 100
    total_ht = sum((line.amount_ht for line in line_data), Decimal("0"))
    total_tva = cents(vat) if total_tva is None else total_tva
    invoice = invoice_create(
        company=company,
        supplier=supplier_row,
        number=number,
        lines=line_data,
        invoice_date=invoice_date,
        total_ht=total_ht,
        total_tva=total_tva,
        total_ttc=total_ht + total_tva,
        **fields,
    )
    if validate:
        invoice = invoice_validate(invoice=invoice, actor=None)
    return invoice
