"""What an invoice needs before it can be validated, and its entry computed from what it holds."""

from __future__ import annotations

import datetime as dt

from .accounting import Entry, EntryError, Problem, SourceLine, compute_entry
from .models import Invoice, InvoiceLine

LABEL_MAX = 60


def default_label(invoice: Invoice) -> str:
    supplier = invoice.supplier.label if invoice.supplier_id else ""
    prefix = "Avoir" if invoice.is_credit_note else "Fact."
    return f"{prefix} {invoice.number} {supplier}".strip()[:LABEL_MAX]


def effective_due_date(invoice: Invoice) -> dt.date | None:
    if invoice.due_date:
        return invoice.due_date
    if invoice.invoice_date and invoice.supplier_id:
        return invoice.invoice_date + dt.timedelta(days=invoice.supplier.payment_terms_days)
    return None


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
        )
        for line in lines
    ]


def header_problems(invoice: Invoice, lines: list[InvoiceLine]) -> list[Problem]:
    problems = []
    if not invoice.supplier_id:
        problems.append(Problem("supplier", "Fournisseur manquant."))
    if not invoice.number:
        problems.append(Problem("number", "Numéro de facture manquant."))
    if not invoice.invoice_date:
        problems.append(Problem("invoice_date", "Date de facture manquante."))
    if invoice.currency != "EUR":
        problems.append(
            Problem("currency", f"Devise {invoice.currency} refusée : seules les factures en EUR sont acceptées.")
        )
    due = effective_due_date(invoice)
    if due and invoice.invoice_date and due < invoice.invoice_date:
        problems.append(Problem("due_date", "L'échéance précède la date de facture."))
    if invoice.company.analytic_required:
        for index, line in enumerate(lines, start=1):
            if not line.analytic_section_id:
                problems.append(
                    Problem(
                        f"lines-{index}-analytic_section",
                        f"Ligne {index} : section analytique obligatoire pour cette société.",
                    )
                )
    return problems


def entry_for_invoice(invoice: Invoice, lines: list[InvoiceLine] | None = None) -> Entry:
    """The entry of this invoice as it stands; ``EntryError`` lists everything that prevents it."""
    if lines is None:
        lines = list(invoice.lines.select_related("account", "tax_code", "analytic_section"))
    problems = header_problems(invoice, lines)
    try:
        entry = compute_entry(
            journal=invoice.company.purchase_journal_code,
            date=invoice.invoice_date or dt.date.min,
            due_date=effective_due_date(invoice),
            number=invoice.number,
            label=invoice.label or default_label(invoice),
            payment_mode=invoice.payment_mode or (invoice.supplier.payment_mode if invoice.supplier_id else ""),
            bap=invoice.bap,
            bap_date=invoice.bap_date,
            supplier_code=invoice.supplier.code if invoice.supplier_id else "",
            collective_account=invoice.supplier.collective_account if invoice.supplier_id else "",
            total_ht=invoice.total_ht,
            total_tva=invoice.total_tva,
            total_ttc=invoice.total_ttc,
            credit_note=invoice.is_credit_note,
            lines=source_lines(lines),
        )
    except EntryError as error:
        problems += error.problems
    if problems:
        raise EntryError(problems)
    return entry


def invoice_problems(invoice: Invoice, lines: list[InvoiceLine] | None = None) -> list[Problem]:
    try:
        entry_for_invoice(invoice, lines)
    except EntryError as error:
        return error.problems
    return []
