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


def bulk_validated_invoices(company, count: int, *, prefix: str = "B", supplier: str = "F0001", date=None) -> list[int]:
    """Many validated invoices at once (one line at 20 %), for volume tests: bulk inserts, same shape as the
    services produce."""
    from invoices.models import ExportState, Invoice, InvoiceLine

    supplier_row = Supplier.objects.get(company=company, code=supplier)
    account = Account.objects.get(company=company, code="606400")
    tax = TaxCode.objects.get(company=company, code="T20")
    section = AnalyticSection.objects.filter(company=company, code="ADM").first() if company.analytic_required else None
    invoices = [
        Invoice(
            company=company,
            supplier=supplier_row,
            number=f"{prefix}-{index:06d}",
            invoice_date=date or dt.date(2026, 10, 1) + dt.timedelta(days=index % 28),
            total_ht=Decimal("100.00") + index % 50,
            total_tva=(Decimal("100.00") + index % 50) * Decimal("0.2"),
            total_ttc=(Decimal("100.00") + index % 50) * Decimal("1.2"),
            status=Invoice.Status.VALIDATED,
            export_state=ExportState.TO_EXPORT,
        )
        for index in range(count)
    ]
    created = Invoice.objects.bulk_create(invoices, batch_size=1000)
    InvoiceLine.objects.bulk_create(
        [
            InvoiceLine(
                invoice=invoice, position=1, label="Fournitures", amount_ht=invoice.total_ht, account=account,
                tax_code=tax, analytic_section=section,
            )
            for invoice in created
        ],
        batch_size=1000,
    )  # fmt: skip
    return [invoice.pk for invoice in created]


def invoice_form(invoice, **changes) -> dict:
    """The form as the browser posts it: every field with the value shown, the due date included."""
    data = {
        "supplier": invoice.supplier_id, "kind": invoice.kind, "number": invoice.number,
        "invoice_date": invoice.invoice_date.isoformat(),
        "due_date": invoice.due_date.isoformat() if invoice.due_date else "", "currency": "EUR",
        "total_ht": str(invoice.total_ht), "total_tva": str(invoice.total_tva), "total_ttc": str(invoice.total_ttc),
        "label": invoice.label, "payment_mode": "", "lines-TOTAL_FORMS": invoice.lines.count(),
        "lines-INITIAL_FORMS": invoice.lines.count(), "lines-MIN_NUM_FORMS": 0, "lines-MAX_NUM_FORMS": 1000,
    }  # fmt: skip
    for index, line in enumerate(invoice.lines.all()):
        data |= {
            f"lines-{index}-id": line.pk, f"lines-{index}-invoice": invoice.pk, f"lines-{index}-label": line.label,
            f"lines-{index}-amount_ht": str(line.amount_ht), f"lines-{index}-account": line.account_id,
            f"lines-{index}-tax_code": line.tax_code_id, f"lines-{index}-analytic_section": "",
        }  # fmt: skip
    return data | changes
