"""A batch of invoices as plain rows and as Sage's payloads, with what SFD already knows Sage would refuse: what the
export and the simulation send, one query for the invoices and one for their lines, no model per row."""

from __future__ import annotations

from collections import defaultdict

from django.db.models import QuerySet

from companies.models import Company
from connectors.sage_frp1000.client import ErrorTriple
from invoices.accounting import EntryError, SourceLine
from invoices.models import Invoice, InvoiceLine, entry_external_id
from invoices.validation import FACT_COLUMNS, LINE_COLUMNS, entry_from_facts, facts_from_row

from .precheck import Referential


def batch_rows(invoices: QuerySet[Invoice]) -> list[tuple]:
    """A batch of invoices as plain rows, in key order: ``(pk, accounting_version, bap_version, *FACT_COLUMNS)``
    (their suppliers joined): one query, no model per row."""
    return list(invoices.order_by("pk").values_list("pk", "accounting_version", "bap_version", *FACT_COLUMNS))


def batch_payloads(
    company: Company, referential: Referential, rows: list[tuple], *, sent_before: dict[int, dict] | None = None
) -> tuple[dict[int, dict], dict[int, list[ErrorTriple]]]:
    """The entry of each invoice of ``rows`` (``batch_rows``) as Sage's payload, and what SFD already knows Sage
    would refuse: ``(payloads, errors)``, errors being ``(code, field, message)`` per invoice — the entry's own
    problems (``ENTRY_INVALID``) or the pre-check's, with Sage's codes.

    The lines are read in one query with their codes; each entry is computed by the function the screens use.
    ``sent_before``: payloads already sent once for an invoice, sent again as they were, with the BAP as it is now
    (the BAP is outside what Sage compares)."""
    sent_before = sent_before or {}
    lines: dict[int, list[SourceLine]] = defaultdict(list)
    batch_lines = (
        InvoiceLine.objects.filter(invoice_id__any=[row[0] for row in rows])
        .order_by("invoice_id", "position", "id")
        .values_list("invoice_id", *LINE_COLUMNS)
    )
    for invoice_id, *values in batch_lines:
        lines[invoice_id].append(SourceLine(*values))
    payloads: dict[int, dict] = {}
    errors: dict[int, list[ErrorTriple]] = {}
    for pk, version, _bap_version, *columns in rows:
        facts = facts_from_row(company.purchase_journal_code, company.analytic_required, columns)
        if pk in sent_before:
            bap_date = facts.bap_date.isoformat() if facts.bap_date else None
            payloads[pk] = sent_before[pk] | {"bap": facts.bap, "bap_date": bap_date}
            continue
        try:
            payloads[pk] = entry_from_facts(facts, lines[pk]).payload(entry_external_id(pk, version))
        except EntryError as error:
            errors[pk] = [("ENTRY_INVALID", problem.field, problem.message) for problem in error.problems]
    referential.load_for(list(payloads.values()))
    for pk, payload in payloads.items():
        found = referential.check(payload)
        if found:
            errors[pk] = [(e.code, e.field, e.message) for e in found]
    return payloads, errors
