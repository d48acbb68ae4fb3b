"""The entry computed from an invoice balances to the cent and matches the invoice's totals, always."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invoices.accounting import EntryError, SourceLine, cents, compute_entry, round_to_total

RATES = {
    "T20": Decimal("20.00"),
    "T10": Decimal("10.00"),
    "T55": Decimal("5.50"),
    "T21": Decimal("2.10"),
    "EXO": Decimal("0"),
    "AL20": Decimal("20.00"),  # self-assessed: reverse charge
}
SELF_ASSESSED = {"AL20": "445710"}


def _line(amount: str, tax: str = "T20", account: str = "606400", kind: str = "line") -> SourceLine:
    return SourceLine(
        label="Ligne", amount_ht=Decimal(amount), account=account, tax_code=tax, tax_rate=RATES[tax],
        deductible_account="" if tax == "EXO" else "445660", kind=kind, collected_account=SELF_ASSESSED.get(tax),
    )  # fmt: skip


def _stated_vat(lines) -> Decimal:
    bases: dict[str, Decimal] = {}
    for line in lines:
        if line.tax_code not in SELF_ASSESSED:
            bases[line.tax_code] = bases.get(line.tax_code, Decimal("0")) + line.signed_amount
    return sum((cents(base * RATES[code] / 100) for code, base in bases.items()), Decimal("0"))


def _entry(lines, *, total_tva=None, credit_note=False, total_ht=None, total_ttc=None, currency="EUR", rate=None):
    ht = sum((line.signed_amount for line in lines), Decimal("0")) if total_ht is None else total_ht
    if total_tva is None:
        total_tva = _stated_vat(lines)
    return compute_entry(
        journal="ACH", date=dt.date(2026, 10, 1), due_date=None, number="FA-1", label="Fact. FA-1", payment_mode="VIR",
        bap=False, bap_date=None, supplier_code="F0001", collective_account="401000", total_ht=ht,
        total_tva=total_tva, total_ttc=ht + total_tva if total_ttc is None else total_ttc, credit_note=credit_note,
        lines=lines, currency=currency, rate=rate,
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
    assert "Le total HT (90,00 €) ne correspond pas à la somme des lignes (100,00 €)" in str(error.value)
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


def test_an_allowance_is_its_own_line_on_the_other_side():
    entry = _entry([_line("100.00"), _line("10.00", kind="charge"), _line("5.00", kind="allowance")])
    assert [(line.account, line.debit, line.credit) for line in entry.lines] == [
        ("401000", 0, Decimal("126.00")),
        ("606400", Decimal("100.00"), 0), ("606400", Decimal("10.00"), 0), ("606400", 0, Decimal("5.00")),
        ("445660", Decimal("21.00"), 0),
    ]  # fmt: skip


def test_self_assessed_vat_is_deductible_and_due_and_the_supplier_is_owed_none():
    entry = _entry([_line("1000.00", "AL20")], total_tva=Decimal("0"))
    assert [(line.account, line.label, line.debit, line.credit) for line in entry.lines] == [
        ("401000", "Fact. FA-1", 0, Decimal("1000.00")),
        ("606400", "Ligne", Decimal("1000.00"), 0),
        ("445660", "TVA autoliquidée déductible 20 %", Decimal("200.00"), 0),
        ("445710", "TVA autoliquidée due 20 %", 0, Decimal("200.00")),
    ]


def test_a_line_of_zero_is_not_written_and_a_negative_one_is_refused():
    entry = _entry([_line("100.00"), _line("0.00")])
    assert len(entry.lines) == 3
    with pytest.raises(EntryError) as error:
        _entry([_line("-5.00")])
    assert "Ligne 1 : le montant HT ne peut pas être négatif" in str(error.value)


def test_a_foreign_currency_is_converted_line_by_line_and_the_supplier_takes_the_balance():
    entry = _entry([_line("1000.00"), _line("333.33", "T10")], currency="USD", rate=Decimal("0.923456"))
    assert (entry.currency, entry.rate) == ("USD", Decimal("0.923456"))
    assert [(line.account, line.debit, line.credit, line.currency_amount) for line in entry.lines] == [
        ("401000", 0, Decimal("1446.75"), Decimal("1566.66")),  # the balance of the converted lines
        ("606400", Decimal("923.46"), 0, Decimal("1000.00")),
        ("606400", Decimal("307.82"), 0, Decimal("333.33")),
        ("445660", Decimal("30.78"), 0, Decimal("33.33")),
        ("445660", Decimal("184.69"), 0, Decimal("200.00")),
    ]
    payload = entry.payload("SFD-1-V1")
    assert (payload["currency"], payload["rate"]) == ("USD", "0.923456")
    assert payload["lines"][1]["currency_amount"] == "1000.00"
    assert "currency" not in _entry([_line("1.00")]).payload("SFD-2-V1")
    with pytest.raises(EntryError) as error:
        _entry([_line("1.00")], currency="USD")
    assert [p.field for p in error.value.problems] == ["exchange_rate"]


def test_lines_are_rounded_to_the_total_on_the_largest_one():
    assert round_to_total([Decimal("33.3333"), Decimal("33.3333"), Decimal("33.3334")], Decimal("100.00")) == [
        Decimal("33.33"), Decimal("33.33"), Decimal("33.34"),
    ]  # fmt: skip
    assert round_to_total([Decimal("10.005"), Decimal("20.005")], Decimal("30.01")) == [
        Decimal("10.01"), Decimal("20.00"),
    ]  # fmt: skip
    # Far from the total: only rounded, the entry will say the lines do not match.
    assert round_to_total([Decimal("1.004")], Decimal("5.00")) == [Decimal("1.00")]


amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999.99"), places=2)
kinds = st.sampled_from(["line", "line", "charge", "allowance"])
lines_strategy = st.lists(st.tuples(amounts, st.sampled_from(sorted(RATES)), kinds), min_size=1, max_size=12)
rates = st.one_of(st.none(), st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("500"), places=6))


@settings(max_examples=400, deadline=None)
@given(
    lines=lines_strategy,
    credit_note=st.booleans(),
    cent_shift=st.integers(min_value=-1, max_value=1),
    rate=rates,
)
def test_every_generated_entry_balances_and_matches_the_invoice(lines, credit_note, cent_shift, rate):
    """Lines, charges and allowances at every rate, self-assessed VAT, invoices and credit notes, in euros or in a
    foreign currency: the entry balances to the cent, every line on one side, and it says the invoice's totals."""
    source = [_line(f"{amount:.2f}", tax, kind=kind) for amount, tax, kind in lines]
    computed = _stated_vat(source)
    # The supplier's stated VAT may differ from ours by a rounding cent when there is VAT to round.
    stated = computed + (Decimal("0.01") * cent_shift if computed else 0)
    foreign = rate is not None
    entry = _entry(source, total_tva=stated, credit_note=credit_note, currency="USD" if foreign else "EUR", rate=rate)
    total_ht = sum((line.signed_amount for line in source), Decimal("0"))
    assert entry.total_debit == entry.total_credit
    for line in entry.lines:
        assert line.debit == line.debit.quantize(Decimal("0.01")) and line.credit == line.credit.quantize(
            Decimal("0.01")
        )
        assert (line.debit > 0) != (line.credit > 0), "one side, never both, never none"
    supplier = [line for line in entry.lines if line.supplier]
    others = [line for line in entry.lines if not line.supplier]
    if not foreign:
        assert sum((line.credit - line.debit for line in supplier), Decimal("0")) == (
            -(total_ht + stated) if credit_note else total_ht + stated
        )
        vat = sum((line.debit - line.credit for line in others if line.account == "445660" and line.tax_code != "AL20"),
                  Decimal("0"))  # fmt: skip
        assert vat == (-stated if credit_note else stated)
    else:
        for line in others:
            assert line.debit + line.credit == cents(line.currency_amount * rate)
        # The supplier's line is the conversion of the total to within half a cent per line converted: the lines of
        # the invoice, and at most two VAT lines per line (a self-assessed code books two).
        converted = sum((line.credit - line.debit for line in supplier), Decimal("0"))
        expected = (total_ht + stated) * rate * (-1 if credit_note else 1)
        assert abs(converted - expected) <= Decimal("0.005") * (3 * len(source) + 1)
    due = [line for line in others if line.account == "445710"]
    deducted = [line for line in others if line.account == "445660" and line.tax_code == "AL20"]
    assert sum((line.credit - line.debit for line in due), Decimal("0")) == sum(
        (line.debit - line.credit for line in deducted), Decimal("0")
    )


def test_amounts_in_messages_are_written_the_french_way():
    from invoices.accounting import euros

    assert euros(Decimal("1234567.5")) == "1\u202f234\u202f567,50"
    assert euros(Decimal("-0.005")) == "-0,01"
    assert euros(Decimal("20")) == "20,00"
