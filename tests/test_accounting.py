"""The entry computed from an invoice balances to the cent and matches the invoice's totals, always."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invoices.accounting import EntryError, SourceLine, cents, compute_entry

RATES = {
    "T20": Decimal("20.00"),
    "T10": Decimal("10.00"),
    "T55": Decimal("5.50"),
    "T21": Decimal("2.10"),
    "EXO": Decimal("0"),
}


def _line(amount: str, tax: str = "T20", account: str = "606400") -> SourceLine:
    return SourceLine(
        label="Ligne", amount_ht=Decimal(amount), account=account, tax_code=tax, tax_rate=RATES[tax],
        deductible_account="" if tax == "EXO" else "445660",
    )  # fmt: skip


def _entry(lines, *, total_tva=None, credit_note=False, total_ht=None, total_ttc=None):
    ht = sum((line.amount_ht for line in lines), Decimal("0")) if total_ht is None else total_ht
    if total_tva is None:
        total_tva = sum((cents(line.amount_ht * line.tax_rate / 100) for line in lines), Decimal("0"))
    return compute_entry(
        journal="ACH", date=dt.date(2026, 10, 1), due_date=None, number="FA-1", label="Fact. FA-1", payment_mode="VIR",
        bap=False, bap_date=None, supplier_code="F0001", collective_account="401000", total_ht=ht,
        total_tva=total_tva, total_ttc=ht + total_tva if total_ttc is None else total_ttc, credit_note=credit_note,
        lines=lines,
    )  # fmt: skip


def test_an_invoice_credits_the_supplier_and_debits_expenses_and_vat():
    entry = _entry([_line("100.00"), _line("50.00", "T10")])
    supplier, *rest = entry.lines
    assert (supplier.account, supplier.supplier, supplier.credit, supplier.debit) == (
        "401000",
        "F0001",
        Decimal("175.00"),
        0,
    )
    assert [(line.account, line.debit) for line in rest] == [
        ("606400", Decimal("100.00")), ("606400", Decimal("50.00")),
        ("445660", Decimal("5.00")), ("445660", Decimal("20.00")),
    ]  # fmt: skip
    assert entry.total_debit == entry.total_credit == Decimal("175.00")


def test_a_credit_note_reverses_the_sides():
    entry = _entry([_line("100.00")], credit_note=True)
    assert entry.lines[0].debit == Decimal("120.00") and entry.lines[0].credit == 0
    assert all(line.credit and not line.debit for line in entry.lines[1:])


def test_one_vat_line_per_rate():
    entry = _entry([_line("10.00"), _line("20.00"), _line("30.00", "T55")])
    vat = [line for line in entry.lines if line.account == "445660"]
    assert [(line.tax_code, line.debit) for line in vat] == [("T20", Decimal("6.00")), ("T55", Decimal("1.65"))]


def test_the_stated_vat_wins_within_one_cent_per_rate():
    lines = [_line("10.01"), _line("10.01")]  # 2 × 2.002 → computed on the base: 4.00
    entry = _entry(lines, total_tva=Decimal("4.01"))
    assert [line.debit for line in entry.lines if line.account == "445660"] == [Decimal("4.01")]
    assert entry.total_debit == entry.total_credit == Decimal("24.03")


def test_totals_that_do_not_add_up_are_refused_with_reasons():
    with pytest.raises(EntryError) as error:
        _entry([_line("100.00")], total_tva=Decimal("25.00"))
    assert "ne correspond pas à la TVA des lignes" in str(error.value)
    with pytest.raises(EntryError) as error:
        _entry([_line("100.00")], total_ht=Decimal("90.00"))
    assert "Le total HT (90.00 €) ne correspond pas à la somme des lignes (100.00 €)" in str(error.value)
    with pytest.raises(EntryError) as error:
        _entry([_line("100.00")], total_ttc=Decimal("121.00"))
    assert {p.field for p in error.value.problems} == {"total_ttc"}


def test_missing_account_and_tax_code_are_said_per_line():
    line = SourceLine(
        label="x", amount_ht=Decimal("5"), account=None, tax_code=None, tax_rate=None, deductible_account=None
    )
    with pytest.raises(EntryError) as error:
        _entry([line], total_tva=Decimal("0"))
    assert {p.field for p in error.value.problems} == {"lines-1-account", "lines-1-tax_code"}


def test_an_exempt_invoice_has_no_vat_line():
    entry = _entry([_line("80.00", "EXO")], total_tva=Decimal("0"))
    assert len(entry.lines) == 2


def test_analytics_travel_with_expense_lines():
    line = SourceLine("Conseil", Decimal("300"), "622600", "T20", RATES["T20"], "445660", "CC", "ADM")
    payload = _entry([line]).payload("SFD-1-V1")
    assert payload["lines"][1]["analytic"] == [{"axis": "CC", "section": "ADM", "amount": "300.00"}]
    assert all(isinstance(value, str) for value in (payload["lines"][0]["debit"], payload["lines"][0]["credit"]))


amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999.99"), places=2)
lines_strategy = st.lists(st.tuples(amounts, st.sampled_from(sorted(RATES))), min_size=1, max_size=12)


@settings(max_examples=400, deadline=None)
@given(lines=lines_strategy, credit_note=st.booleans(), cent_shift=st.integers(min_value=-1, max_value=1))
def test_every_generated_entry_balances_and_matches_the_invoice(lines, credit_note, cent_shift):
    source = [_line(f"{amount:.2f}", tax) for amount, tax in lines]
    bases = {tax: sum(Decimal(f"{a:.2f}") for a, t in lines if t == tax) for _, tax in lines}
    computed = sum((cents(base * RATES[tax] / 100) for tax, base in bases.items()), Decimal("0"))
    # The supplier's stated VAT may differ from ours by a rounding cent when there is VAT to round.
    stated = computed + (Decimal("0.01") * cent_shift if computed > 0 else 0)
    entry = _entry(source, total_tva=stated, credit_note=credit_note)
    total_ht = sum((line.amount_ht for line in source), Decimal("0"))
    assert entry.total_debit == entry.total_credit == total_ht + stated
    supplier_line = entry.lines[0]
    assert (supplier_line.debit if credit_note else supplier_line.credit) == total_ht + stated
    vat_total = sum((line.debit + line.credit for line in entry.lines if line.account == "445660"), Decimal("0"))
    assert vat_total == stated
    for line in entry.lines:
        assert line.debit == line.debit.quantize(Decimal("0.01")) and line.credit == line.credit.quantize(
            Decimal("0.01")
        )
        assert (line.debit > 0) != (line.credit > 0), "one side, never both, never none"
