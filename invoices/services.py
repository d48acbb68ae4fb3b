"""Writes of the invoices app: create, correct, validate, BAP. Each is atomic and leaves a trace."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from companies.models import Account, AnalyticSection, Company, Supplier, TaxCode
from core.bulk import rows_copy
from core.services import actor_label

from .accounting import Problem, SourceLine
from .models import ExportState, Invoice, InvoiceEvent, InvoiceLine, ScanState
from .signals import invoice_corrected
from .validation import effective_due_date, invoice_problems, source_problems

# The accounting content: changing any of these makes a new version of the entry.
ACCOUNTING_FIELDS = (
    "supplier_id", "kind", "number", "invoice_date", "due_date", "currency", "exchange_rate", "total_ht", "total_tva",
    "total_ttc", "label", "payment_mode",
)  # fmt: skip
LINE_FIELDS = ("kind", "label", "amount_ht", "account_id", "tax_code_id", "analytic_section_id")


class InvoiceLocked(Exception):
    """The accounting content cannot change now (integrated, or being sent to Sage)."""


def duplicate_number_message(supplier: Supplier, number: str) -> str:
    return _(
        "Le fournisseur %(supplier)s a déjà une facture n° %(number)s dans SFD : corrigez le numéro ou le fournisseur."
    ) % {
        "supplier": supplier.code,
        "number": number,
    }


class InvoiceDuplicate(Exception):
    """The correction would give the invoice the supplier and number of another one (« facture en double »)."""

    def __init__(self, twin: Invoice):
        super().__init__(duplicate_number_message(twin.supplier, twin.number))
        self.twin = twin


class InvoiceInvalid(Exception):
    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


@dataclass
class LineData:
    label: str
    amount_ht: Decimal
    account_id: int | None = None
    tax_code_id: int | None = None
    analytic_section_id: int | None = None
    kind: str = InvoiceLine.Kind.LINE
    vat_category: str = ""
    source_amount: Decimal | None = None


def invoice_event(*, invoice: Invoice, actor, kind: str, message: str) -> InvoiceEvent:
    return InvoiceEvent.objects.create(
        invoice=invoice,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        actor_label=actor_label(actor),
        kind=kind,
        message=message[:500],
    )


def _settle_due_date(invoice: Invoice, *, typed: bool = False) -> None:
    """The due date as its origin says (``Invoice.DueDateSource``): one the accountant typed (``typed``) or the
    e-invoice gave stays where it is; one that came from the supplier's payment terms, or none, is computed again
    from the invoice date and the supplier's terms, so that it follows a corrected date. A typed empty date asks for
    the terms' one."""
    if typed:
        invoice.due_date_source = Invoice.DueDateSource.TYPED if invoice.due_date else Invoice.DueDateSource.TERMS
    if invoice.due_date is None:
        invoice.due_date_source = Invoice.DueDateSource.TERMS
    if invoice.due_date_source == Invoice.DueDateSource.TERMS:
        invoice.due_date = None  # else the computation would give back the stored date
        invoice.due_date = effective_due_date(invoice)


def _status_for(invoice: Invoice, lines: list[InvoiceLine]) -> tuple[str, str]:
    problems = invoice_problems(invoice, lines)
    if problems:
        return Invoice.Status.TO_COMPLETE, "\n".join(p.message for p in problems)
    return Invoice.Status.TO_VALIDATE, ""


def _lines_of(invoice: Invoice) -> list[InvoiceLine]:
    return list(invoice.lines.select_related("account", "tax_code", "analytic_section"))


# The columns of a new line, in ``rows_copy``'s order (the invoice's key and the position first).
_LINE_COLUMNS = (
    "invoice", "position", "kind", "label", "amount_ht", "source_amount", "vat_category", "account", "tax_code",
    "analytic_section",
)  # fmt: skip
_LINE_REFERENTIAL = (("account_id", Account), ("tax_code_id", TaxCode), ("analytic_section_id", AnalyticSection))


def _source_lines(lines: list[LineData], known: Iterable[models.Model] = ()) -> list[SourceLine]:
    """What the entry's computation reads of new lines (``validation.source_lines`` of the lines once written): the
    account, tax code and analytic section of each from the caller's ``known`` objects, the others read by key (one
    query per kind at most)."""
    objects = {(type(item), item.pk): item for item in known}
    for attribute, model in _LINE_REFERENTIAL:
        missing = {getattr(line, attribute) for line in lines} - {None} - {pk for kind, pk in objects if kind is model}
        if missing:
            objects.update(((model, pk), item) for pk, item in model.objects.in_bulk(missing).items())

    def item(model, pk):
        if not pk:
            return None
        try:
            return objects[(model, pk)]
        except KeyError:
            raise ValueError(f"{model._meta.verbose_name} {pk} absent du référentiel.") from None

    found = []
    for line in lines:
        account = item(Account, line.account_id)
        tax_code = item(TaxCode, line.tax_code_id)
        section = item(AnalyticSection, line.analytic_section_id)
        found.append(
            SourceLine(
                label=line.label,
                amount_ht=line.amount_ht,
                account=account.code if account else None,
                tax_code=tax_code.code if tax_code else None,
                tax_rate=tax_code.rate if tax_code else None,
                deductible_account=tax_code.deductible_account if tax_code else None,
                analytic_axis=section.axis if section else None,
                analytic_section=section.code if section else None,
                kind=line.kind,
                collected_account=tax_code.collected_account if tax_code else None,
            )
        )
    return found


@transaction.atomic
def invoice_create(**arguments) -> Invoice:
    """``invoice_insert`` in a transaction of its own (a savepoint inside the caller's): the same arguments."""
    return invoice_insert(**arguments)


def invoice_insert(
    *,
    company: Company,
    supplier: Supplier | None,
    number: str,
    lines: list[LineData],
    actor=None,
    event_message: str = "",
    reasons: Iterable[str] = (),
    known: Iterable[models.Model] = (),
    **fields,
) -> Invoice:
    """A new invoice, *à compléter* with the reasons, or *à valider* when nothing is missing. A due date given with
    it is the document's (an e-invoice's), unless ``due_date_source`` says otherwise; without one, the supplier's
    terms give it. ``reasons``: the caller's own reasons to leave it *à compléter* (before the validation's);
    ``known``: accounts, tax codes, sections the caller already holds (the others are read by key).

    The invoice is inserted with its final status, computed from the lines before they are written: one ``INSERT``
    of the invoice, one of its lines, one of its event. Runs inside the caller's transaction (required, with no
    savepoint of its own, so that a failure rolls back the caller's whole transaction); ``invoice_create`` opens one.
    """
    if not transaction.get_connection().in_atomic_block:
        raise transaction.TransactionManagementError("invoice_insert runs inside the caller's transaction.")
    invoice = Invoice(company=company, supplier=supplier, number=number, **fields)
    if "due_date_source" not in fields and invoice.due_date is not None:
        invoice.due_date_source = Invoice.DueDateSource.DOCUMENT
    _settle_due_date(invoice)
    problems = source_problems(invoice, _source_lines(lines, known))
    invoice.status = Invoice.Status.TO_COMPLETE if problems else Invoice.Status.TO_VALIDATE
    invoice.incomplete_reason = "\n".join(p.message for p in problems)
    reasons = list(reasons)
    if reasons:
        # The caller's first: they say why the validation's « fournisseur manquant »… happened.
        invoice.status = Invoice.Status.TO_COMPLETE
        invoice.incomplete_reason = "\n".join([*reasons, invoice.incomplete_reason]).strip()
    invoice.save()
    # Plain rows, no model instance written: what ``bulk_create`` would write, for a fraction of its CPU.
    rows_copy(
        InvoiceLine,
        list(_LINE_COLUMNS),
        [
            (
                invoice.pk,
                position,
                line.kind,
                line.label,
                line.amount_ht,
                line.source_amount,
                line.vat_category,
                line.account_id,
                line.tax_code_id,
                line.analytic_section_id,
            )
            for position, line in enumerate(lines, start=1)
        ],
    )
    invoice_event(
        invoice=invoice, actor=actor, kind=InvoiceEvent.Kind.CREATED, message=event_message or _("Facture créée.")
    )
    return invoice


@transaction.atomic
def invoice_prefill(
    *, invoice: Invoice, supplier: Supplier | None, fields: dict, lines: list[LineData], scan: dict, reasons, message
) -> Invoice:
    """A paper invoice's columns and lines as its reading found them (``invoices.paper``). It stays *à compléter*
    whatever was read: the accountant checks the pre-filled fields against the document before validating."""
    invoice = Invoice.objects.select_for_update(of=("self",)).select_related("company").get(pk=invoice.pk)
    invoice.supplier = supplier
    for name, value in fields.items():
        setattr(invoice, name, value)
    _settle_due_date(invoice)
    invoice.scan = scan
    invoice.save()
    invoice.lines.all().delete()
    InvoiceLine.objects.bulk_create(
        [InvoiceLine(invoice=invoice, position=i, **vars(line)) for i, line in enumerate(lines, start=1)]
    )
    _status, problems = _status_for(invoice, _lines_of(invoice))
    invoice.status = Invoice.Status.TO_COMPLETE
    invoice.incomplete_reason = "\n".join([*reasons, problems]).strip() or _(
        "Facture papier lue : vérifiez les champs pré-remplis sur le document avant de la valider."
    )
    invoice.save(update_fields=["status", "incomplete_reason", "updated_at"])
    invoice_event(invoice=invoice, actor=None, kind=InvoiceEvent.Kind.SCAN, message=message)
    return invoice


def _locked_reason(invoice: Invoice) -> str | None:
    if invoice.scan_state == ScanState.READING:
        # The reading pre-fills every field when it ends: what the accountant typed meanwhile would be overwritten.
        return _(
            "Lecture du document en cours : la facture se modifie une fois les champs pré-remplis (quelques secondes ;"
            " rechargez la page)."
        )
    if invoice.is_integrated:
        return _(
            "Facture intégrée dans Sage FRP 1000 (pièce %(piece)s) : son contenu comptable est en lecture seule."
        ) % {"piece": invoice.sage_piece_number}
    if invoice.export_state in (ExportState.SENDING, ExportState.UNKNOWN):
        return _("Facture en cours d'envoi à Sage FRP 1000 : attendez la fin de l'export pour la modifier.")
    return None


def invoice_locked_reason(invoice: Invoice) -> str | None:
    """Why the accounting content cannot be edited now, or None."""
    return _locked_reason(invoice)


@transaction.atomic
def invoice_update(*, invoice: Invoice, fields: dict, lines: list[LineData], actor) -> Invoice:
    """Correct an invoice (in SFD, never in the ERP): a change of accounting content is a new version.

    A ``due_date`` in ``fields`` different from the stored one is the accountant's own (kept from then on); the same
    one, when it came from the supplier's terms, is computed again (a corrected invoice date moves it)."""
    invoice = Invoice.objects.select_for_update(of=("self",)).select_related("company", "supplier").get(pk=invoice.pk)
    reason = _locked_reason(invoice)
    if reason:
        raise InvoiceLocked(reason)
    before = {name: getattr(invoice, name) for name in ACCOUNTING_FIELDS}
    before_lines = [tuple(getattr(line, name) for name in LINE_FIELDS) for line in invoice.lines.all()]
    source_before = invoice.due_date_source
    typed = "due_date" in fields and fields["due_date"] != invoice.due_date
    for name, value in fields.items():
        setattr(invoice, name, value)
    _settle_due_date(invoice, typed=typed)
    after_lines = [tuple(getattr(line, name) for name in LINE_FIELDS) for line in lines]
    changed = before != {name: getattr(invoice, name) for name in ACCOUNTING_FIELDS} or before_lines != after_lines
    if changed:
        invoice.lines.all().delete()
        InvoiceLine.objects.bulk_create(
            [InvoiceLine(invoice=invoice, position=i, **vars(line)) for i, line in enumerate(lines, start=1)]
        )
        previous_state = invoice.export_state
        invoice.accounting_version += 1
        invoice.export_state = ExportState.NONE
        invoice.status, invoice.incomplete_reason = _status_for(invoice, _lines_of(invoice))
        _save_unless_duplicate(invoice)
        invoice_event(
            invoice=invoice,
            actor=actor,
            kind=InvoiceEvent.Kind.CORRECTED,
            message=_("Facture corrigée (version %(version)s).") % {"version": invoice.accounting_version},
        )
        invoice_corrected.send(sender=Invoice, invoice=invoice, previous_export_state=previous_state)
    elif invoice.due_date_source != source_before:
        # The same due date, now the terms' (or the accountant's): what happens to it when the date moves changed.
        invoice.save(update_fields=["due_date_source", "updated_at"])
    return invoice


def _save_unless_duplicate(invoice: Invoice) -> None:
    """Save; the same supplier and number as another invoice (the form checks it, but another correction may have
    taken them in between) raises ``InvoiceDuplicate``, and the caller's transaction undoes the whole correction."""
    try:
        with transaction.atomic():
            invoice.save()
    except IntegrityError:
        twin = (
            Invoice.objects.filter(
                company_id=invoice.company_id, supplier_id=invoice.supplier_id, number=invoice.number
            )
            .exclude(pk=invoice.pk)
            .select_related("supplier")
            .first()
        )
        if twin is None:
            raise
        raise InvoiceDuplicate(twin) from None


@transaction.atomic
def invoice_validate(*, invoice: Invoice, actor) -> Invoice:
    """*validée*: ready for accounting, the entry waits to be exported (*à exporter*)."""
    invoice = Invoice.objects.select_for_update(of=("self",)).select_related("company", "supplier").get(pk=invoice.pk)
    if invoice.status == Invoice.Status.VALIDATED:
        return invoice
    reason = _locked_reason(invoice)
    if reason:
        raise InvoiceLocked(reason)
    problems = invoice_problems(invoice)
    if problems:
        invoice.status = Invoice.Status.TO_COMPLETE
        invoice.incomplete_reason = "\n".join(p.message for p in problems)
        invoice.save(update_fields=["status", "incomplete_reason", "updated_at"])
        raise InvoiceInvalid(problems)
    invoice.status = Invoice.Status.VALIDATED
    invoice.incomplete_reason = ""
    invoice.export_state = ExportState.TO_EXPORT
    invoice.save(update_fields=["status", "incomplete_reason", "export_state", "updated_at"])
    invoice_event(
        invoice=invoice,
        actor=actor,
        kind=InvoiceEvent.Kind.VALIDATED,
        message=_("Facture validée : écriture à exporter."),
    )
    return invoice


@transaction.atomic
def invoice_set_bap(*, invoice: Invoice, bap: bool, actor) -> Invoice:
    """Give or withdraw the BAP. On an integrated invoice, each change is an update to push to Sage; several
    changes before the next export collapse into the latest value."""
    invoice = Invoice.objects.select_for_update(of=("self",)).get(pk=invoice.pk)
    if invoice.bap == bap:
        return invoice
    invoice.bap = bap
    invoice.bap_date = timezone.localdate() if bap else None
    invoice.bap_by = actor if bap and getattr(actor, "is_authenticated", False) else None
    invoice.bap_version += 1
    if invoice.is_integrated:
        invoice.update_state = ExportState.TO_EXPORT
    invoice.save(update_fields=["bap", "bap_date", "bap_by", "bap_version", "update_state", "updated_at"])
    invoice_event(
        invoice=invoice,
        actor=actor,
        kind=InvoiceEvent.Kind.BAP,
        message=_("Bon à payer donné.") if bap else _("Bon à payer retiré."),
    )
    return invoice
