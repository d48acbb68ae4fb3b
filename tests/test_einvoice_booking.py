"""From the scan folder to Sage: e-invoices with allowances and charges, reverse charge, credit notes in every form
and a foreign currency are imported, validated and booked by the stub over HTTP, balanced, on the right sides."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from invoices.intake import intake_company
from invoices.models import Invoice, InvoiceLine
from invoices.samples.build_samples import cii_xml, facturx_pdf, ubl_xml
from invoices.services import LineData, invoice_update, invoice_validate
from tests.support.exports import export
from tests.support.intake import an_invoice, drop

pytestmark = pytest.mark.django_db(transaction=True)


def imported(company, name: str, content: bytes) -> Invoice:
    drop(company, name, content)
    [item] = intake_company(company=company).files
    return Invoice.objects.get(pk=item.invoice_id)


def booked_entry(sage, invoice: Invoice) -> dict:
    [found] = [e for e in sage.entries("JNO") if e["external_id"] == invoice.external_id]
    return found["entry"]


def sides(entry: dict) -> list[tuple[str, str, str]]:
    return [(line["account"], line["debit"], line["credit"]) for line in entry["lines"]]


def with_allowance_and_charge(company) -> dict:
    data = an_invoice(company, lines=[("Papier", "100.00", "20.00")])
    data["BG-20"] = [{"amount": "5.00", "reason": "Fidélité", "vat_category_code": "S", "vat_rate": "20.00"}]
    data["BG-21"] = [{"amount": "10.00", "reason": "Port", "vat_category_code": "S", "vat_rate": "20.00"}]
    data |= {"BT-107": "5.00", "BT-108": "10.00", "BT-109": "105.00", "BT-110": "21.00", "BT-112": "126.00"}
    data["BT-115"] = "126.00"
    data["BG-23"][0] |= {"BT-116": "105.00", "BT-117": "21.00"}
    return data


def test_an_allowance_reduces_the_expense_and_a_charge_adds_one(jno_ready, sage):
    invoice = imported(jno_ready, "remise.pdf", facturx_pdf(with_allowance_and_charge(jno_ready)))
    assert invoice.status == Invoice.Status.TO_VALIDATE, invoice.incomplete_reason
    assert sorted(invoice.lines.values_list("kind", "label", "amount_ht", "vat_category")) == [
        (InvoiceLine.Kind.ALLOWANCE, "Remise Fidélité", Decimal("5.00"), "S"),
        (InvoiceLine.Kind.CHARGE, "Frais Port", Decimal("10.00"), "S"),
        (InvoiceLine.Kind.LINE, "Papier", Decimal("100.00"), "S"),
    ]
    invoice_validate(invoice=invoice, actor=None)
    assert export(jno_ready).integrated == 1
    entry = booked_entry(sage, invoice)
    expense = invoice.lines.first().account.code
    assert sorted(sides(entry)) == sorted(
        [
            ("401000", "0.00", "126.00"),
            (expense, "100.00", "0.00"),
            (expense, "10.00", "0.00"),
            (expense, "0.00", "5.00"),  # the allowance: its own line, on the other side
            ("445660", "21.00", "0.00"),
        ]
    )


def reverse_charge(company, category: str) -> dict:
    data = an_invoice(company, lines=[("Travaux de sous-traitance", "1000.00", "0.00")])
    data["BG-25"][0]["BT-151"] = category
    data["BG-23"] = [
        {"BT-116": "1000.00", "BT-117": "0.00", "BT-118": category, "BT-119": "0.00", "BT-120": "Autoliquidation"}
    ]
    return data | {"BT-110": "0.00", "BT-112": "1000.00", "BT-115": "1000.00"}


@pytest.mark.parametrize(
    ("category", "code", "deductible", "due"), [("AE", "AL20", "445660", "445710"), ("K", "AI20", "445662", "445200")]
)
def test_self_assessed_vat_is_booked_on_both_sides(jno_ready, sage, category, code, deductible, due):
    invoice = imported(jno_ready, "autoliquidation.xml", cii_xml(reverse_charge(jno_ready, category)))
    line = invoice.lines.select_related("tax_code").get()
    assert (line.vat_category, line.tax_code.code) == (category, code)
    assert (invoice.total_tva, invoice.total_ttc, invoice.status) == (0, Decimal("1000"), Invoice.Status.TO_VALIDATE)
    invoice_validate(invoice=invoice, actor=None)
    assert export(jno_ready).integrated == 1
    assert sorted(sides(booked_entry(sage, invoice))) == sorted(
        [
            ("401000", "0.00", "1000.00"),  # the supplier is owed no VAT
            (line.account.code, "1000.00", "0.00"),
            (deductible, "200.00", "0.00"),
            (due, "0.00", "200.00"),
        ]
    )


@pytest.mark.parametrize(
    "form",
    ["ubl-credit-note", "cii-381", "negative-380", "negative-384"],
)
def test_a_credit_note_in_every_form_is_an_avoir_with_reversed_sides(jno_ready, sage, form):
    data = an_invoice(jno_ready, number="AV-12", type_code="381")
    render = ubl_xml if form == "ubl-credit-note" else cii_xml
    if form.startswith("negative"):
        data = an_invoice(jno_ready, number="AV-12", type_code=form[-3:], lines=[("Retour", "-100.00", "20.00")])
        data["BG-3"] = [{"BT-25": "FA-100", "BT-26": dt.date(2026, 10, 2)}]
    invoice = imported(jno_ready, "avoir.xml", render(data))
    assert (invoice.kind, invoice.total_ht, invoice.total_tva, invoice.total_ttc) == (
        Invoice.Kind.CREDIT_NOTE, Decimal("100"), Decimal("20"), Decimal("120"),
    )  # fmt: skip
    assert list(invoice.lines.values_list("kind", "amount_ht")) == [(InvoiceLine.Kind.LINE, Decimal("100.00"))]
    invoice_validate(invoice=invoice, actor=None)
    assert export(jno_ready).integrated == 1
    assert sorted(sides(booked_entry(sage, invoice))) == sorted(
        [
            ("401000", "120.00", "0.00"),
            (invoice.lines.get().account.code, "0.00", "100.00"),
            ("445660", "0.00", "20.00"),
        ]
    )


def test_a_positive_corrective_invoice_stays_an_invoice_and_names_the_one_it_corrects(jno_ready):
    data = an_invoice(jno_ready, number="FA-101", type_code="384")
    data["BG-3"] = [{"BT-25": "FA-100", "BT-26": dt.date(2026, 10, 2)}]
    invoice = imported(jno_ready, "rectificative.xml", cii_xml(data))
    assert (invoice.kind, invoice.corrected_number, invoice.corrects) == (Invoice.Kind.INVOICE, "FA-100", None)


def test_a_foreign_currency_is_booked_in_euros_with_its_amount_and_rate(jno_ready, sage):
    data = an_invoice(jno_ready, currency="USD", lines=[("Logiciel", "1000.00", "20.00")])
    invoice = imported(jno_ready, "dollars.pdf", facturx_pdf(data))
    assert (invoice.currency, invoice.status) == ("USD", Invoice.Status.TO_COMPLETE)
    invoice = invoice_update(
        invoice=invoice, fields={"exchange_rate": Decimal("0.923456")}, lines=_lines(invoice), actor=None
    )
    invoice_validate(invoice=invoice, actor=None)
    assert export(jno_ready).integrated == 1
    entry = booked_entry(sage, invoice)
    assert (entry["currency"], entry["rate"]) == ("USD", "0.923456")
    account = invoice.lines.get().account.code
    assert [(line["account"], line["debit"], line["credit"], line["currency_amount"]) for line in entry["lines"]] == [
        ("401000", "0.00", "1108.15", "1200.00"),  # 923.46 + 184.69: the balance of the converted lines
        (account, "923.46", "0.00", "1000.00"),
        ("445660", "184.69", "0.00", "200.00"),
    ]


def test_the_invoice_gives_its_rate_when_it_states_its_vat_in_euros(jno_ready):
    data = an_invoice(jno_ready, currency="USD", lines=[("Logiciel", "1000.00", "20.00")])
    data |= {"BT-6": "EUR", "BT-111": "184.00"}
    invoice = imported(jno_ready, "dollars.xml", cii_xml(data))
    assert (invoice.exchange_rate, invoice.status) == (Decimal("0.920000"), Invoice.Status.TO_VALIDATE)


def _lines(invoice):
    return [
        LineData(line.label, line.amount_ht, line.account_id, line.tax_code_id, line.analytic_section_id, line.kind)
        for line in invoice.lines.all()
    ]
