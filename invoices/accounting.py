"""The accounting entry of an invoice: computed, never edited by hand (one function, tested).

An invoice becomes one purchase entry:
- one line on the supplier's collective account (401…) with the supplier code, for the TTC;
- one line per expense line, for its HT, with its analytics;
- one line per VAT rate on the tax code's deductible account (44566…).
An invoice puts the supplier on the credit side and the expenses and VAT on the debit side; a credit note
(avoir) reverses both sides.

Rounding rule: the VAT of each rate is ``base × rate / 100`` rounded half-up to the cent, computed on the
sum of the lines of that rate (as invoices state it). The VAT stated on the invoice wins: the difference with
the computed VAT — at most one cent per rate, more is an error the accountant must fix — is added to the VAT
line with the largest amount (the first tax code on a tie). The supplier line is total HT + stated VAT. So
the entry always balances to the cent and matches the invoice's totals. Everything is ``Decimal``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def cents(value: Decimal) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


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

    @property
    def total_debit(self) -> Decimal:
        return sum((line.debit for line in self.lines), ZERO)

    @property
    def total_credit(self) -> Decimal:
        return sum((line.credit for line in self.lines), ZERO)

    def payload(self, external_id: str) -> dict:
        return {
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


@dataclass(frozen=True)
class VatLine:
    tax_code: str
    rate: Decimal
    account: str
    base: Decimal
    computed: Decimal
    amount: Decimal


def vat_breakdown(lines: Iterable[SourceLine], stated_vat: Decimal) -> tuple[list[VatLine], list[Problem]]:
    """VAT per tax code after the rounding rule of this module; problems if it cannot agree with the invoice."""
    bases: dict[str, tuple[Decimal, str | None, Decimal]] = {}
    for line in lines:
        if line.tax_code is None or line.tax_rate is None:
            continue
        base, account, rate = bases.get(line.tax_code, (ZERO, line.deductible_account, line.tax_rate))
        bases[line.tax_code] = (base + line.amount_ht, account, rate)
    problems: list[Problem] = []
    vat: list[VatLine] = []
    for code in sorted(bases):
        base, account, rate = bases[code]
        computed = cents(base * rate / Decimal(100))
        if computed == ZERO:
            continue
        if not account:
            problems.append(Problem("lines", f"Le code TVA {code} n'a pas de compte de TVA déductible dans Sage."))
            continue
        vat.append(VatLine(code, rate, account, base, computed, computed))
    computed_total = sum((line.computed for line in vat), ZERO)
    difference = cents(stated_vat) - computed_total
    if difference:
        tolerance = CENT * max(len(vat), 1)
        if not vat or abs(difference) > tolerance:
            problems.append(
                Problem(
                    "total_tva",
                    f"Le total TVA de la facture ({cents(stated_vat)} €) ne correspond pas à la TVA des lignes"
                    f" ({computed_total} €).",
                )
            )
        else:
            largest = max(range(len(vat)), key=lambda i: (vat[i].computed, -i))
            adjusted = vat[largest]
            vat[largest] = VatLine(
                adjusted.tax_code, adjusted.rate, adjusted.account, adjusted.base, adjusted.computed,
                adjusted.computed + difference,
            )  # fmt: skip
    if any(line.amount < ZERO for line in vat):
        problems.append(Problem("total_tva", "Le total TVA de la facture est incohérent avec ses lignes."))
    # A rate whose VAT the invoice rounded down to nothing has no line.
    return [line for line in vat if line.amount], problems


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
) -> Entry:
    """The balanced entry, or ``EntryError`` listing what prevents it (in French, with the field)."""
    problems: list[Problem] = []
    lines_ht = sum((cents(line.amount_ht) for line in lines), ZERO)
    if not lines:
        problems.append(Problem("lines", "La facture n'a aucune ligne."))
    if lines_ht != cents(total_ht):
        problems.append(
            Problem(
                "total_ht",
                f"Le total HT ({cents(total_ht)} €) ne correspond pas à la somme des lignes ({lines_ht} €).",
            )
        )
    if cents(total_ht) + cents(total_tva) != cents(total_ttc):
        problems.append(
            Problem(
                "total_ttc",
                f"Le total TTC ({cents(total_ttc)} €) n'est pas égal à HT + TVA"
                f" ({cents(total_ht) + cents(total_tva)} €).",
            )
        )
    for index, line in enumerate(lines, start=1):
        if not line.account:
            problems.append(Problem(f"lines-{index}-account", f"Ligne {index} : compte de charge manquant."))
        if not line.tax_code:
            problems.append(Problem(f"lines-{index}-tax_code", f"Ligne {index} : code TVA manquant."))
        if line.amount_ht <= ZERO:
            problems.append(Problem(f"lines-{index}-amount_ht", f"Ligne {index} : le montant HT doit être positif."))
    vat, vat_problems = vat_breakdown(lines, total_tva)
    problems += vat_problems
    if problems:
        raise EntryError(problems)

    def side(amount: Decimal, *, expense_side: bool) -> dict:
        # Expenses and VAT are debits on an invoice; a credit note reverses every side.
        debit = expense_side != credit_note
        return {"debit": amount, "credit": ZERO} if debit else {"debit": ZERO, "credit": amount}

    entry_label = label[:200]
    entry_lines = [
        EntryLine(
            account=collective_account,
            supplier=supplier_code,
            label=entry_label,
            **side(cents(total_ttc), expense_side=False),
        )
    ]
    for line in lines:
        analytic = ()
        if line.analytic_section:
            analytic = (AnalyticPart(line.analytic_axis or "", line.analytic_section, cents(line.amount_ht)),)
        entry_lines.append(
            EntryLine(
                account=line.account or "",
                label=line.label[:200],
                tax_code=line.tax_code,
                analytic=analytic,
                **side(cents(line.amount_ht), expense_side=True),
            )
        )
    for vat_line in vat:
        entry_lines.append(
            EntryLine(
                account=vat_line.account,
                label=f"TVA {vat_line.rate.normalize():f} %",
                tax_code=vat_line.tax_code,
                **side(vat_line.amount, expense_side=True),
            )
        )
    entry = Entry(
        journal=journal,
        date=date,
        due_date=due_date,
        piece_reference=number,
        label=entry_label,
        payment_mode=payment_mode,
        bap=bap,
        bap_date=bap_date,
        lines=tuple(entry_lines),
    )
    if entry.total_debit != entry.total_credit:  # pragma: no cover - the rounding rule makes this impossible
        raise EntryError([Problem("lines", "Écriture déséquilibrée.")])
    return entry
