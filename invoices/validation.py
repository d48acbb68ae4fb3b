"""What an invoice needs before it can be validated, and its entry computed from what it holds.

The entry is computed from ``InvoiceFacts`` and ``SourceLine``: what the computation needs of an invoice, its
supplier and its lines, whatever holds them. A screen builds them from models (``entry_for_invoice``); the export
builds them from the plain rows of a whole batch, read in two queries (``InvoiceFacts`` fields are read by name,
``FACT_COLUMNS``). Both paths end in the same ``entry_from_facts``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from .accounting import Entry, EntryError, Problem, SourceLine, compute_entry
from .models import Invoice, InvoiceLine

LABEL_MAX = 60


@dataclass(frozen=True, slots=True)
class InvoiceFacts:
    """What the entry needs of an invoice and of its supplier (``supplier_code`` None: no supplier)."""

    journal: str
    analytic_required: bool
    kind: str
    number: str
    invoice_date: dt.date | None
    due_date: dt.date | None
    currency: str
    label: str
    payment_mode: str
    bap: bool
    bap_date: dt.date | None
    total_ht: Decimal
    total_tva: Decimal
    total_ttc: Decimal
    supplier_code: str | None = None
    supplier_label: str = ""
    collective_account: str = ""
    payment_terms_days: int = 0
    supplier_payment_mode: str = ""
    exchange_rate: Decimal | None = None


# The invoice's own columns among the facts, and the supplier's (``Invoice.objects.values_list`` names): the export
# reads a batch with exactly these.
FACT_COLUMNS = (
    "kind", "number", "invoice_date", "due_date", "currency", "label", "payment_mode", "bap", "bap_date",
    "total_ht", "total_tva", "total_ttc", "supplier__code", "supplier__label", "supplier__collective_account",
    "supplier__payment_terms_days", "supplier__payment_mode", "exchange_rate",
)  # fmt: skip
# The lines' columns (``InvoiceLine.objects.values_list`` names), in the order of ``SourceLine``'s fields.
LINE_COLUMNS = (
    "label", "amount_ht", "account__code", "tax_code__code", "tax_code__rate", "tax_code__deductible_account",
    "analytic_section__axis", "analytic_section__code", "kind", "tax_code__collected_account",
)  # fmt: skip


def facts_of(invoice: Invoice) -> InvoiceFacts:
    supplier = invoice.supplier if invoice.supplier_id else None
    return InvoiceFacts(
        journal=invoice.company.purchase_journal_code,
        analytic_required=invoice.company.analytic_required,
        kind=invoice.kind,
        number=invoice.number,
        invoice_date=invoice.invoice_date,
        due_date=invoice.due_date,
        currency=invoice.currency,
        label=invoice.label,
        payment_mode=invoice.payment_mode,
        bap=invoice.bap,
        bap_date=invoice.bap_date,
        total_ht=invoice.total_ht,
        total_tva=invoice.total_tva,
        total_ttc=invoice.total_ttc,
        supplier_code=supplier.code if supplier else None,
        supplier_label=supplier.label if supplier else "",
        collective_account=supplier.collective_account if supplier else "",
        payment_terms_days=supplier.payment_terms_days if supplier else 0,
        supplier_payment_mode=supplier.payment_mode if supplier else "",
        exchange_rate=invoice.exchange_rate,
    )


def facts_from_row(journal: str, analytic_required: bool, row: tuple) -> InvoiceFacts:
    """The facts of one invoice read with ``FACT_COLUMNS`` (a supplier's absent columns read as None)."""
    (kind, number, invoice_date, due_date, currency, label, payment_mode, bap, bap_date, total_ht, total_tva,
     total_ttc, supplier_code, supplier_label, collective_account, terms, supplier_payment_mode,
     rate) = row  # fmt: skip
    return InvoiceFacts(
        journal, analytic_required, kind, number, invoice_date, due_date, currency, label, payment_mode, bap,
        bap_date, total_ht, total_tva, total_ttc, supplier_code, supplier_label or "", collective_account or "",
        terms or 0, supplier_payment_mode or "", rate,
    )  # fmt: skip


def _label(facts: InvoiceFacts) -> str:
    prefix = "Avoir" if facts.kind == Invoice.Kind.CREDIT_NOTE else "Fact."
    return f"{prefix} {facts.number} {facts.supplier_label}".strip()[:LABEL_MAX]


def _due_date(facts: InvoiceFacts) -> dt.date | None:
    if facts.due_date:
        return facts.due_date
    if facts.invoice_date and facts.supplier_code is not None:
        return facts.invoice_date + dt.timedelta(days=facts.payment_terms_days)
    return None


def effective_due_date(invoice: Invoice) -> dt.date | None:
    return _due_date(facts_of(invoice))


def source_lines(lines: list[InvoiceLine]) -> list[SourceLine]:
    return [
        SourceLine(
            label=line.label,
            amount_ht=line.amount_ht,
            account=line.account.code if line.account_id else None,
            tax_code=line.tax_code.code if line.tax_code_id else None,
            tax_rate=line.tax_code.rate if line.tax_code_id else None,
            deductible_account=line.tax_code.deductible_account if line.tax_code_id else None,
            analytic_axis=line.analytic_section.axis if line.analytic_section_id else None,
            analytic_section=line.analytic_section.code if line.analytic_section_id else None,
            kind=line.kind,
            collected_account=line.tax_code.collected_account if line.tax_code_id else None,
        )
        for line in lines
    ]


def header_problems(facts: InvoiceFacts, lines: list[SourceLine]) -> list[Problem]:
    problems = []
    if facts.supplier_code is None:
        problems.append(Problem("supplier", "Fournisseur manquant."))
    if not facts.number:
        problems.append(Problem("number", "Numéro de facture manquant."))
    if not facts.invoice_date:
        problems.append(Problem("invoice_date", "Date de facture manquante."))
    due = _due_date(facts)
    if due and facts.invoice_date and due < facts.invoice_date:
        problems.append(Problem("due_date", "L'échéance précède la date de facture."))
    if facts.analytic_required:
        for index, line in enumerate(lines, start=1):
            if line.analytic_section is None:
                problems.append(
                    Problem(
                        f"lines-{index}-analytic_section",
                        f"Ligne {index} : section analytique obligatoire pour cette société.",
                    )
                )
    return problems


def entry_from_facts(facts: InvoiceFacts, lines: list[SourceLine]) -> Entry:
    """The entry; ``EntryError`` lists everything that prevents it."""
    problems = header_problems(facts, lines)
    try:
        entry = compute_entry(
            journal=facts.journal,
            date=facts.invoice_date or dt.date.min,
            due_date=_due_date(facts),
            number=facts.number,
            label=facts.label or _label(facts),
            payment_mode=facts.payment_mode or facts.supplier_payment_mode,
            bap=facts.bap,
            bap_date=facts.bap_date,
            supplier_code=facts.supplier_code or "",
            collective_account=facts.collective_account,
            total_ht=facts.total_ht,
            total_tva=facts.total_tva,
            total_ttc=facts.total_ttc,
            credit_note=facts.kind == Invoice.Kind.CREDIT_NOTE,
            lines=lines,
            currency=facts.currency,
            rate=facts.exchange_rate,
        )
    except EntryError as error:
        problems += error.problems
    if problems:
        raise EntryError(problems)
    return entry


def entry_for_invoice(invoice: Invoice, lines: list[InvoiceLine] | None = None) -> Entry:
    """The entry of this invoice as it stands; ``EntryError`` lists everything that prevents it."""
    if lines is None:
        lines = list(invoice.lines.select_related("account", "tax_code", "analytic_section"))
    return entry_from_facts(facts_of(invoice), source_lines(lines))


def invoice_problems(invoice: Invoice, lines: list[InvoiceLine] | None = None) -> list[Problem]:
    try:
        entry_for_invoice(invoice, lines)
    except EntryError as error:
        return error.problems
    return []


def source_problems(invoice: Invoice, lines: list[SourceLine]) -> list[Problem]:
    """``invoice_problems`` of an invoice whose lines are given as the computation reads them."""
    try:
        entry_from_facts(facts_of(invoice), lines)
    except EntryError as error:
        return error.problems
    return []
