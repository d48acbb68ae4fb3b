"""The accounting entry of an invoice: computed, never edited by hand (one function, tested).

An invoice becomes one purchase entry:
- one line on the supplier's collective account (401…) with the supplier code, for the TTC;
- one line per expense line, for its HT, with its analytics. A charge of the document (transport, packing) is a
  line like the others. An allowance (a discount of the document, a returned item) is its own line on the expense
  account, on the other side: the expense account holds the net amount, as the PCG wants for a discount granted on
  the invoice itself (not 609, kept for discounts obtained afterwards), and the entry shows the discount the
  accountant reads on the invoice, at the VAT rate the invoice gives it, without spreading it (spreading would
  round a share onto each line and change amounts the accountant checks against the paper);
- one line per VAT code on its deductible account (44566…);
- a self-assessed code (autoliquidation: reverse charge AE, intra-EU acquisition K — its ``collected_account`` is
  set) books its VAT twice, as deductible (debit) and as due (credit, 4452 or 4457): the supplier is owed no VAT,
  the company declares it and deducts it in the same return, as French accounting does.
An invoice puts the supplier on the credit side and the expenses and VAT on the debit side; a credit note (avoir)
reverses every side. A line of zero is not written.

Rounding rules, everything in ``Decimal``:
- lines: an electronic invoice may give line amounts with more than two decimals; the intake keeps them exactly
  (``InvoiceLine.source_amount``) and books each rounded half-up to the cent, the difference between the sum of the
  rounded lines and the invoice's total HT (at most half a cent per line) going to the largest line
  (``round_to_total``): the lines add up to the total HT exactly;
- VAT: the VAT of each code is ``base × rate / 100`` rounded half-up to the cent, computed on the sum of the lines
  of that code (as invoices state it). The VAT stated on the invoice wins: the difference with the computed VAT —
  at most one cent per rate, more is an error the accountant must fix — is added to the VAT line with the largest
  amount (the first tax code on a tie). Self-assessed VAT is not on the invoice: it is computed, never adjusted;
- foreign currency: each line is converted at the invoice's rate (EUR for one unit) and rounded half-up to the
  cent; the supplier's line is the balance of the others, so it absorbs the conversion's rounding (at most half a
  cent per other line). Each line keeps its amount in the invoice's currency; one whose conversion is 0,00 € is not
  written.
The supplier line is total HT + stated VAT. So the entry always balances to the cent and matches the invoice's
totals.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
ACCOUNTING_CURRENCY = "EUR"
ALLOWANCE = "allowance"


def cents(value: Decimal) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def euros(value: Decimal) -> str:
    """An amount as a French reader writes it in a message: to the cent, a comma, thin spaces between thousands
    (« 1 234,50 »)."""
    return f"{cents(value):,.2f}".replace(",", "\u202f").replace(".", ",")


def round_to_total(amounts: list[Decimal], total: Decimal) -> list[Decimal]:
    """``amounts`` (signed, any number of decimals) rounded to the cent so that they add up to ``total``: each
    half-up, the difference (at most half a cent per amount) on the largest one. Amounts that cannot reach the
    total that way are only rounded: the entry then says that the lines do not match the total HT."""
    rounded = [cents(amount) for amount in amounts]
    difference = cents(total) - sum(rounded, ZERO)
    if rounded and difference and abs(difference) <= CENT * (len(rounded) + 1) / 2:
        largest = max(range(len(rounded)), key=lambda i: (abs(amounts[i]), -i))
        rounded[largest] += difference
    return rounded


@dataclass(frozen=True)
class Problem:
    field: str
    message: str


class EntryError(Exception):
    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class AnalyticPart:
    axis: str
    section: str
    amount: Decimal


@dataclass(frozen=True)
class EntryLine:
    account: str
    label: str
    debit: Decimal = ZERO
    credit: Decimal = ZERO
    supplier: str | None = None
    tax_code: str | None = None
    analytic: tuple[AnalyticPart, ...] = ()
    # In the invoice's currency, when it is not the euro (the debit or credit is then its conversion).
    currency_amount: Decimal | None = None

    def payload(self) -> dict:
        line: dict = {
            "account": self.account,
            "label": self.label,
            "debit": f"{self.debit:.2f}",
            "credit": f"{self.credit:.2f}",
        }
        if self.supplier:
            line["supplier"] = self.supplier
        if self.tax_code:
            line["tax_code"] = self.tax_code
        if self.analytic:
            line["analytic"] = [
                {"axis": part.axis, "section": part.section, "amount": f"{part.amount:.2f}"} for part in self.analytic
            ]
        if self.currency_amount is not None:
            line["currency_amount"] = f"{self.currency_amount:.2f}"
        return line


@dataclass(frozen=True)
class Entry:
    journal: str
    date: dt.date
    due_date: dt.date | None
    piece_reference: str
    label: str
    payment_mode: str
    bap: bool
    bap_date: dt.date | None
    lines: tuple[EntryLine, ...] = field(default_factory=tuple)
    currency: str = ACCOUNTING_CURRENCY
    rate: Decimal | None = None

    @property
    def total_debit(self) -> Decimal:
        return sum((line.debit for line in self.lines), ZERO)

    @property
    def total_credit(self) -> Decimal:
        return sum((line.credit for line in self.lines), ZERO)

    def payload(self, external_id: str) -> dict:
        payload = {
            "external_id": external_id,
            "journal": self.journal,
            "date": self.date.isoformat(),
            "due_date": self.due_date.isoformat() if self.due_date else None,
            "piece_reference": self.piece_reference,
            "label": self.label,
            "payment_mode": self.payment_mode,
            "bap": self.bap,
            "bap_date": self.bap_date.isoformat() if self.bap_date else None,
            "lines": [line.payload() for line in self.lines],
        }
        # Only an entry in a foreign currency says so: an entry in euros keeps the payload it always had (Sage
        # compares payloads of the same key).
        if self.currency != ACCOUNTING_CURRENCY:
            payload |= {"currency": self.currency, "rate": f"{self.rate:f}"}
        return payload


@dataclass(frozen=True)
class SourceLine:
    """What the computation needs of an invoice line, whatever stores it."""

    label: str
    amount_ht: Decimal
    account: str | None
    tax_code: str | None
    tax_rate: Decimal | None
    deductible_account: str | None
    analytic_axis: str | None = None
    analytic_section: str | None = None
    kind: str = "line"
    collected_account: str | None = None

    @property
    def signed_amount(self) -> Decimal:
        """The line's effect on the expense: an allowance reduces it."""
        return -cents(self.amount_ht) if self.kind == ALLOWANCE else cents(self.amount_ht)


@dataclass(frozen=True)
class VatLine:
    tax_code: str
    rate: Decimal
    account: str
    base: Decimal
    computed: Decimal
    amount: Decimal
    # Set for a self-assessed code: the account of the VAT due, booked opposite the deductible one.
    collected_account: str = ""


def vat_breakdown(lines: Iterable[SourceLine], stated_vat: Decimal) -> tuple[list[VatLine], list[Problem]]:
    """VAT per tax code after the rounding rule of this module; problems if it cannot agree with the invoice.

    Self-assessed codes come last, with their computed VAT, outside the comparison with the stated VAT."""
    bases: dict[str, tuple[Decimal, str | None, Decimal, str | None]] = {}
    for line in lines:
        if line.tax_code is None or line.tax_rate is None:
            continue
        base, account, rate, collected = bases.get(
            line.tax_code, (ZERO, line.deductible_account, line.tax_rate, line.collected_account)
        )
        bases[line.tax_code] = (base + line.signed_amount, account, rate, collected)
    problems: list[Problem] = []
    vat: list[VatLine] = []
    self_assessed: list[VatLine] = []
    for code in sorted(bases):
        base, account, rate, collected = bases[code]
        computed = cents(base * rate / Decimal(100))
        if computed == ZERO:
            continue
        if not account:
            problems.append(Problem("lines", f"Le code TVA {code} n'a pas de compte de TVA déductible dans Sage."))
            continue
        line = VatLine(code, rate, account, base, computed, computed, collected or "")
        (self_assessed if collected else vat).append(line)
    computed_total = sum((line.computed for line in vat), ZERO)
    difference = cents(stated_vat) - computed_total
    if difference:
        tolerance = CENT * max(len(vat), 1)
        if not vat or abs(difference) > tolerance:
            problems.append(
                Problem(
                    "total_tva",
                    f"Le total TVA de la facture ({euros(stated_vat)} €) ne correspond pas à la TVA des lignes"
                    f" ({euros(computed_total)} €).",
                )
            )
        else:
            largest = max(range(len(vat)), key=lambda i: (abs(vat[i].computed), -i))
            vat[largest] = replace(vat[largest], amount=vat[largest].computed + difference)
    # A rate whose VAT the invoice rounded down to nothing has no line.
    return [line for line in vat if line.amount] + self_assessed, problems


def _line_problems(lines: list[SourceLine], total_ht: Decimal, total_tva: Decimal, total_ttc: Decimal) -> list:
    problems: list[Problem] = []
    lines_ht = sum((line.signed_amount for line in lines), ZERO)
    if not lines:
        problems.append(Problem("lines", "La facture n'a aucune ligne."))
    if lines_ht != cents(total_ht):
        problems.append(
            Problem(
                "total_ht",
                f"Le total HT ({euros(total_ht)} €) ne correspond pas à la somme des lignes ({euros(lines_ht)} €).",
            )
        )
    if cents(total_ht) + cents(total_tva) != cents(total_ttc):
        problems.append(
            Problem(
                "total_ttc",
                f"Le total TTC ({euros(total_ttc)} €) n'est pas égal à HT + TVA"
                f" ({euros(cents(total_ht) + cents(total_tva))} €).",
            )
        )
    for index, line in enumerate(lines, start=1):
        if not line.account:
            problems.append(Problem(f"lines-{index}-account", f"Ligne {index} : compte de charge manquant."))
        if not line.tax_code:
            problems.append(Problem(f"lines-{index}-tax_code", f"Ligne {index} : code TVA manquant."))
        if line.amount_ht < ZERO:
            problems.append(
                Problem(
                    f"lines-{index}-amount_ht",
                    f"Ligne {index} : le montant HT ne peut pas être négatif (une remise se saisit en nature"
                    " « Remise »).",
                )
            )
        if line.collected_account and not line.deductible_account:
            problems.append(
                Problem("lines", f"Le code TVA {line.tax_code} n'a pas de compte de TVA déductible dans Sage.")
            )
    return problems


def compute_entry(
    *,
    journal: str,
    date: dt.date,
    due_date: dt.date | None,
    number: str,
    label: str,
    payment_mode: str,
    bap: bool,
    bap_date: dt.date | None,
    supplier_code: str,
    collective_account: str,
    total_ht: Decimal,
    total_tva: Decimal,
    total_ttc: Decimal,
    credit_note: bool,
    lines: list[SourceLine],
    currency: str = ACCOUNTING_CURRENCY,
    rate: Decimal | None = None,
) -> Entry:
    """The balanced entry, or ``EntryError`` listing what prevents it (in French, with the field)."""
    problems = _line_problems(lines, total_ht, total_tva, total_ttc)
    foreign = currency != ACCOUNTING_CURRENCY
    if foreign and (rate is None or rate <= 0):
        problems.append(Problem("exchange_rate", f"Facture en {currency} : saisissez le cours (1 {currency} = … EUR)."))
    vat, vat_problems = vat_breakdown(lines, total_tva)
    problems += vat_problems
    if problems:
        raise EntryError(problems)

    def booked(
        account: str,
        label: str,
        amount: Decimal,
        *,
        expense_side: bool,
        section: tuple[str, str] | None = None,
        **extra,
    ) -> EntryLine | None:
        """A line for ``amount`` in the invoice's currency: expenses and VAT are debits on an invoice, a negative
        amount goes to the other side, and a credit note reverses every side."""
        if not amount:
            return None
        debit = (expense_side != credit_note) == (amount > 0)
        converted = cents(abs(amount) * rate) if foreign else abs(amount)
        if not converted:  # a few units of a currency worth less than half a cent: nothing to book in euros
            return None
        sides = {"debit": converted, "credit": ZERO} if debit else {"debit": ZERO, "credit": converted}
        currency_amount = abs(amount) if foreign else None
        analytic = (AnalyticPart(section[0], section[1], converted),) if section else ()
        return EntryLine(
            account=account, label=label[:200], currency_amount=currency_amount, analytic=analytic, **sides, **extra
        )  # fmt: skip

    entry_label = label[:200]
    others: list[EntryLine | None] = []
    for line in lines:
        section = (line.analytic_axis or "", line.analytic_section) if line.analytic_section else None
        others.append(
            booked(line.account or "", line.label, line.signed_amount, expense_side=True, tax_code=line.tax_code,
                   section=section)
        )  # fmt: skip
    for vat_line in vat:
        rate_label = f"{vat_line.rate.normalize():f} %"
        if vat_line.collected_account:
            others.append(
                booked(vat_line.account, f"TVA autoliquidée déductible {rate_label}", vat_line.amount,
                       expense_side=True, tax_code=vat_line.tax_code)
            )  # fmt: skip
            others.append(
                booked(vat_line.collected_account, f"TVA autoliquidée due {rate_label}", vat_line.amount,
                       expense_side=False, tax_code=vat_line.tax_code)
            )  # fmt: skip
        else:
            others.append(
                booked(vat_line.account, f"TVA {rate_label}", vat_line.amount, expense_side=True,
                       tax_code=vat_line.tax_code)
            )  # fmt: skip
    written = [line for line in others if line is not None]
    if foreign:
        # The supplier's line is the balance: it absorbs the rounding of each conversion.
        balance = sum((line.debit - line.credit for line in written), ZERO)
        supplier_sides = {"debit": -balance, "credit": ZERO} if balance < 0 else {"debit": ZERO, "credit": balance}
        supplier_line = EntryLine(
            account=collective_account, supplier=supplier_code, label=entry_label,
            currency_amount=abs(cents(total_ttc)), **supplier_sides,
        )  # fmt: skip
        supplier_lines = [supplier_line] if balance else []
    else:
        supplier_lines = [
            line
            for line in [
                booked(collective_account, entry_label, cents(total_ttc), expense_side=False, supplier=supplier_code)
            ]
            if line is not None
        ]
    entry = Entry(
        journal=journal,
        date=date,
        due_date=due_date,
        piece_reference=number,
        label=entry_label,
        payment_mode=payment_mode,
        bap=bap,
        bap_date=bap_date,
        lines=tuple(supplier_lines + written),
        currency=currency,
        rate=rate if foreign else None,
    )
    if entry.total_debit != entry.total_credit:  # pragma: no cover - the rounding rule makes this impossible
        raise EntryError([Problem("lines", "Écriture déséquilibrée.")])
    return entry
