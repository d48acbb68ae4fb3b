"""« Factures »: the supplier invoices, where accountants correct what Sage rejected (never in the ERP)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from pathlib import PurePosixPath

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.http import FileResponse, Http404, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from companies.models import Company
from companies.selectors import companies_for_user, visible_company_ids

from . import imports, intake, paper, paper_learning, selectors, services, views_document
from .accounting import EntryError
from .forms import IntakeFileFilterForm, InvoiceFilterForm, InvoiceForm, LineFormSet
from .imports import IntakeFileUnavailable
from .models import IntakeFile, IntakeScan, Invoice
from .scan import Limits, ScanError
from .tasks import intake_scan_task
from .validation import entry_for_invoice, invoice_problems

VIEW = "invoices.view_invoices"
EDIT = "invoices.edit_invoices"
BAP = "invoices.give_bap"
PAGE_SIZE = 50


@require_GET
@login_required
@permission_required(VIEW, raise_exception=True)
def invoice_list(request):
    form = InvoiceFilterForm(request.GET or None, companies=companies_for_user(request.user))
    if form.is_bound and not form.is_valid():
        # Every invoice is not what an invalid filter asks for: none, and the errors next to their fields.
        invoices = Invoice.objects.none()
    else:
        invoices = selectors.invoice_list(request.user, filters=form.cleaned_data if form.is_bound else {})
    page = Paginator(invoices, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "invoices/invoice_list.html",
        {"form": form, "page": page, "query": query.urlencode(), "can_import": request.user.has_perm(EDIT)},
    )


def _entry_context(invoice, lines=None) -> dict:
    try:
        return {"entry": entry_for_invoice(invoice, lines), "entry_problems": []}
    except EntryError as error:
        return {"entry": None, "entry_problems": error.problems}


def _attach_problems(form, formset, problems) -> None:
    """Validation problems of the entry, next to the fields they are about."""
    for problem in problems:
        if problem.field.startswith("lines-"):
            _, index, field = problem.field.split("-", 2)
            forms_ = [f for f in formset.forms if f.instance.pk or f.has_changed()]
            position = int(index) - 1
            if 0 <= position < len(forms_) and field in forms_[position].fields:
                forms_[position].add_error(field, problem.message)
                continue
        if problem.field in form.fields:
            form.add_error(problem.field, problem.message)
        else:
            form.add_error(None, problem.message)


def _forms_of_saved(invoice):
    """The forms bound to what is saved (the lines were written anew, with new ids): errors can then be attached."""
    unbound = [InvoiceForm(instance=invoice), LineFormSet(instance=invoice, prefix="lines")]
    data = {field.html_name: field.value() for field in unbound[0]}
    data |= {field.html_name: field.value() for field in unbound[1].management_form}
    for line_form in unbound[1].forms:
        data |= {field.html_name: field.value() for field in line_form}
    form, formset = InvoiceForm(data, instance=invoice), LineFormSet(data, instance=invoice, prefix="lines")
    form.full_clean()
    formset.full_clean()
    return form, formset


def _listed(sentence: str, items: list[str]) -> str:
    """A message for the top of the page: a sentence, then each item on its own line."""
    return format_html(
        '{}<ul class="mb-0">{}</ul>', sentence, format_html_join("", "<li>{}</li>", ((i,) for i in items))
    )


def _form_errors(form, formset) -> list[str]:
    """Every error of the forms, each with the name of its field (« Échéance : … », « Ligne 2 – Compte : … »)."""
    errors = [str(error) for error in form.non_field_errors()]
    errors += [
        f"{form.fields[name].label} : {error}" for name, field_errors in form.errors.items() if name in form.fields
        for error in field_errors
    ]  # fmt: skip
    errors += [str(error) for error in formset.non_form_errors()]
    for position, line_form in enumerate(formset.forms, start=1):
        for name, field_errors in line_form.errors.items():
            label = line_form.fields[name].label if name in line_form.fields else ""
            errors += [
                _("Ligne %(n)d – %(field)s : %(error)s") % {"n": position, "field": label, "error": error}
                for error in field_errors
            ]
    return errors


def _due_date_words(invoice, *, due_date_before) -> str:
    """When the supplier's terms moved the due date (the invoice date changed), say it and to when."""
    if invoice.due_date_source != invoice.DueDateSource.TERMS or not invoice.due_date:
        return ""
    if invoice.due_date == due_date_before:
        return ""
    return _("Échéance recalculée avec le délai de paiement du fournisseur : %(date)s.") % {
        "date": date_format(invoice.due_date, "d/m/Y")
    }


def _joined(*sentences: str) -> str:
    return " ".join(sentence for sentence in sentences if sentence)


@require_http_methods(["GET", "POST"])
@login_required
@permission_required(VIEW, raise_exception=True)
def invoice_detail(request, pk: int):
    """The invoice, where an accountant corrects it. Every POST ends with a message at the top that says what was
    saved (or that nothing was) and, for « Enregistrer et valider », whether it is validated or what prevents it."""
    invoice = selectors.invoice_for_user(request.user, pk)
    # As stored: a bound form writes what was posted onto the instance when it validates.
    version_before, due_date_before, status_before = invoice.accounting_version, invoice.due_date, invoice.status
    locked = services.invoice_locked_reason(invoice)
    can_edit = request.user.has_perm(EDIT) and not locked
    form = InvoiceForm(request.POST or None, instance=invoice)
    formset = LineFormSet(request.POST or None, instance=invoice, prefix="lines")
    if request.method == "POST":
        if not request.user.has_perm(EDIT):
            raise PermissionDenied
        if locked:
            messages.error(request, locked)
            return redirect("invoices:detail", pk=invoice.pk)
        if not (form.is_valid() and formset.is_valid()):
            nothing = _("Rien n'a été enregistré : corrigez les champs signalés.")
            messages.error(request, _listed(nothing, _form_errors(form, formset)))
        else:
            try:
                invoice = services.invoice_update(
                    invoice=invoice, fields=form.accounting_fields(), lines=formset.line_data(), actor=request.user
                )
            except services.InvoiceLocked as error:
                messages.error(request, str(error))
                return redirect("invoices:detail", pk=invoice.pk)
            except services.InvoiceDuplicate as duplicate:
                # Taken by another correction since the form's own check: said next to the field, the input kept.
                form.add_error("number", str(duplicate))
                nothing = _("Rien n'a été enregistré : corrigez les champs signalés.")
                messages.error(request, _listed(nothing, _form_errors(form, formset)))
            else:
                # What the accountant kept of a paper invoice's reading teaches the next one of this supplier.
                paper_learning.outcomes_record(invoice=invoice)
                changed = invoice.accounting_version != version_before
                due_date = _due_date_words(invoice, due_date_before=due_date_before)
                saved = (
                    _joined(_("Facture enregistrée."), due_date) if changed else _("Aucune modification à enregistrer.")
                )
                if "validate" not in request.POST:
                    problems = invoice_problems(invoice) if invoice.status == invoice.Status.TO_COMPLETE else []
                    if problems:
                        still = _joined(saved, _("Elle reste à compléter avant sa validation :"))
                        messages.warning(request, _listed(still, [problem.message for problem in problems]))
                    else:
                        (messages.success if changed else messages.info)(request, saved)
                    return redirect("invoices:detail", pk=invoice.pk)
                if not changed and status_before == invoice.Status.VALIDATED:
                    messages.info(request, _("Aucune modification à enregistrer : la facture est déjà validée."))
                    return redirect("invoices:detail", pk=invoice.pk)
                # The correction is saved whatever happens next: a failed validation loses nothing.
                try:
                    services.invoice_validate(invoice=invoice, actor=request.user)
                except services.InvoiceLocked as error:
                    messages.error(request, _joined(saved, str(error)))
                    return redirect("invoices:detail", pk=invoice.pk)
                except services.InvoiceInvalid as invalid:
                    invoice.refresh_from_db()
                    form, formset = _forms_of_saved(invoice)
                    _attach_problems(form, formset, invalid.problems)
                    not_validated = _joined(saved, _("Elle n'est pas validée :"))
                    messages.error(request, _listed(not_validated, [problem.message for problem in invalid.problems]))
                else:
                    validated = (
                        _("Facture enregistrée et validée : l'écriture est à exporter.")
                        if changed
                        else _("Facture validée : l'écriture est à exporter.")
                    )
                    messages.success(request, _joined(validated, due_date))
                    return redirect("invoices:detail", pk=invoice.pk)
    if not can_edit:
        for field in form.fields.values():
            field.disabled = True
        for line_form in formset.forms:
            for field in line_form.fields.values():
                field.disabled = True
    context = {
        "invoice": invoice,
        "form": form,
        "formset": formset,
        "locked": locked,
        "can_edit": can_edit,
        "can_bap": request.user.has_perm(BAP),
        "problems": invoice_problems(invoice) if invoice.status == invoice.Status.TO_COMPLETE else [],
        **_entry_context(invoice),
        **selectors.invoice_history(invoice),
        "viewer": _viewer(invoice),
    }
    return render(request, "invoices/invoice_detail.html", context)


def _viewer(invoice) -> dict | None:
    """The document beside the form, for an invoice from a scan: its pages (as read, else counted now)."""
    if not invoice.source_format.startswith("scan-"):
        return None
    pages = (invoice.scan or {}).get("pages")
    if not pages:
        try:
            pages = views_document.page_count(paper.document_bytes(invoice))
        except (ScanError, IntakeFileUnavailable):
            pages = 1
    return {
        "pages": min(pages, Limits.max_pages),
        "page_url": reverse("invoices:document_page", args=[invoice.pk, 0]),
        "first_url": reverse("invoices:document_page", args=[invoice.pk, 1]),
        "document_url": reverse("invoices:document", args=[invoice.pk]),
    }


@require_POST
@login_required
@permission_required(EDIT, raise_exception=True)
def invoice_validate(request, pk: int):
    invoice = selectors.invoice_for_user(request.user, pk)
    try:
        services.invoice_validate(invoice=invoice, actor=request.user)
    except services.InvoiceInvalid as invalid:
        messages.error(request, _("La facture ne peut pas être validée : %(why)s") % {"why": invalid})
    except services.InvoiceLocked as error:
        messages.error(request, str(error))
    else:
        messages.success(request, _("Facture validée : l'écriture est à exporter."))
    return redirect("invoices:detail", pk=invoice.pk)


@require_POST
@login_required
@permission_required(BAP, raise_exception=True)
def invoice_bap(request, pk: int):
    invoice = selectors.invoice_for_user(request.user, pk)
    give = request.POST.get("bap") == "1"
    invoice = services.invoice_set_bap(invoice=invoice, bap=give, actor=request.user)
    if invoice.is_integrated:
        messages.success(request, _("BAP enregistré : la mise à jour sera envoyée à Sage FRP 1000 au prochain export."))
    else:
        messages.success(request, _("Bon à payer donné.") if give else _("Bon à payer retiré."))
    return redirect("invoices:detail", pk=invoice.pk)


@require_POST
@login_required
@permission_required(EDIT, raise_exception=True)
def invoices_import(request):
    """« Importer »: read the new files of the scan folders of the user's companies, in the workers."""
    from .tasks import intake_company_task

    companies = list(companies_for_user(request.user).filter(active=True).exclude(scan_directory=""))
    for company in companies:
        intake_company_task.delay_on_commit(company.pk)
    if companies:
        messages.success(
            request,
            ngettext(
                "Import lancé pour %(count)d répertoire de scan : "
                "les factures apparaissent dans la liste au fil de l'eau.",
                "Import lancé pour %(count)d répertoires de scan : "
                "les factures apparaissent dans la liste au fil de l'eau.",
                len(companies),
            )
            % {"count": len(companies)},
        )
    else:
        messages.warning(request, _("Aucune de vos sociétés n'a de répertoire de scan."))
    return redirect("invoices:list")


# --- « Imports »: every file that reached a scan folder -----------------------------------------------------

IMPORTS_PAGE_SIZE = 50
# What the list's own links keep of its query: its filters (and its page), and nothing else.
IMPORTS_FILTERS = ("company", "outcome", "date_from", "date_to", "name", "unseen")


@dataclass
class ImportRow:
    """One file of the list as the user may see it and act on it."""

    file: IntakeFile
    name: str
    name_not_utf8: bool
    new: bool  # refused and seen by nobody before this page showed it
    company: Company  # the company it is shown under: the addressee when the user sees it, else the folder's
    routed_from: Company | None
    routed_to: Company | None
    invoice_visible: bool
    can_retry: bool


def _import_rows(files: list[IntakeFile], visible: list[int] | None, *, can_edit: bool) -> list[ImportRow]:
    seen_companies = None if visible is None else set(visible)

    def sees(company_id) -> bool:
        return seen_companies is None or company_id in seen_companies

    rows = []
    for record in files:
        routed = record.routed_to
        addressee_seen = routed is not None and sees(routed.pk)
        rows.append(
            ImportRow(
                file=record,
                name=imports.display_name(record),
                name_not_utf8=imports.name_is_not_utf8(record),
                new=record.outcome == IntakeFile.Outcome.REFUSED and record.seen_at is None,
                company=routed if addressee_seen else record.company,
                routed_from=record.company if addressee_seen else None,
                routed_to=routed if routed is not None and not addressee_seen else None,
                invoice_visible=record.invoice is not None and sees(record.invoice.company_id),
                # The file lies in the folder's company: acting on it is for that company's users.
                can_retry=can_edit
                and sees(record.company_id)
                and record.outcome in (IntakeFile.Outcome.REFUSED, IntakeFile.Outcome.DUPLICATE)
                and PurePosixPath(record.path).parent.name == intake.ERRORS_DIR,
            )
        )
    return rows


def _imports_query(data, *, page: bool = True) -> str:
    """The list's query, re-encoded from the keys it knows only (a POST carries it back to the list)."""
    query = QueryDict(mutable=True)
    for key in (*IMPORTS_FILTERS, "page") if page else IMPORTS_FILTERS:
        values = [value for value in data.getlist(key) if value][:1]
        if values:
            query.setlist(key, values)
    return query.urlencode()


def _imports_url(query: str = "", **extra) -> str:
    url = reverse("invoices:imports")
    parts = [part for part in (query, urlencode(extra) if extra else "") if part]
    return f"{url}?{'&'.join(parts)}" if parts else url


def _scan_batch(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


# How a scan's files are said, per outcome, in the order they are said.
SCAN_COUNT_WORDS = {
    IntakeFile.Outcome.CREATED: lambda n: ngettext("%(count)d facture créée", "%(count)d factures créées", n),
    IntakeFile.Outcome.DUPLICATE: lambda n: ngettext("%(count)d fichier déjà reçu", "%(count)d fichiers déjà reçus", n),
    IntakeFile.Outcome.REFUSED: lambda n: ngettext("%(count)d fichier refusé", "%(count)d fichiers refusés", n),
    IntakeFile.Outcome.IGNORED: lambda n: ngettext("%(count)d fichier ignoré", "%(count)d fichiers ignorés", n),
    IntakeFile.Outcome.PENDING: lambda n: ngettext("%(count)d fichier en attente", "%(count)d fichiers en attente", n),
}


def _scan_progress(scans: list[IntakeScan]) -> dict:
    """Each scan with its state as the screen says it (a running scan silent too long was interrupted)."""
    stale_before = timezone.now() - dt.timedelta(seconds=imports.SCAN_STALE_SECONDS)
    lines = []
    for scan in scans:
        state = scan.status
        if state == IntakeScan.Status.RUNNING and (scan.heartbeat_at or scan.requested_at) < stale_before:
            state = "interrupted"
        counts = scan.counts or {}
        parts = [words(n) % {"count": n} for outcome, words in SCAN_COUNT_WORDS.items() if (n := counts.get(outcome))]
        lines.append({"scan": scan, "state": state, "done": sum(counts.values()), "counts": parts})
    finished = all(line["state"] in ("done", "failed", "interrupted") for line in lines)
    return {"lines": lines, "finished": finished, "batch": scans[0].batch}


@require_GET
@login_required
@permission_required(VIEW, raise_exception=True)
def imports_list(request):
    """« Imports »: the files of the user's companies, newest first. The refused files a page shows are seen from
    then on (the menu's badge no longer counts them); the page still marks them as new."""
    visible = visible_company_ids(request.user)
    form = IntakeFileFilterForm(request.GET or None, companies=companies_for_user(request.user))
    if form.is_bound and not form.is_valid():
        files = IntakeFile.objects.none()
    else:
        files = selectors.intake_file_list(visible, filters=form.cleaned_data if form.is_bound else {})
    page = Paginator(files, IMPORTS_PAGE_SIZE).get_page(request.GET.get("page"))
    can_edit = request.user.has_perm(EDIT)
    rows = _import_rows(list(page.object_list), visible, can_edit=can_edit)
    imports.intake_files_mark_seen(intake_files=[row.file for row in rows])
    context = {
        "form": form,
        "page": page,
        "rows": rows,
        "query": _imports_query(request.GET),
        "filters": _imports_query(request.GET, page=False),
        "can_edit": can_edit,
    }
    if request.htmx and request.GET.get("rows"):
        return render(request, "invoices/_imports_rows.html", context | {"swap_badge": True})
    batch = _scan_batch(request.GET.get("analyse", ""))
    scans = selectors.intake_scans_for_user(request.user, batch) if batch else []
    if scans:
        context["progress"] = _scan_progress(scans)
    context["acceptance"] = paper_learning.acceptance_by_supplier(visible)
    return render(request, "invoices/imports.html", context)


@require_POST
@login_required
@permission_required(EDIT, raise_exception=True)
def imports_scan(request):
    """« Importer » from « Imports »: read the scan folders of the user's companies in the workers, and follow it."""
    companies = list(companies_for_user(request.user).filter(active=True).exclude(scan_directory="").order_by("name"))
    if not companies:
        messages.warning(request, _("Aucune de vos sociétés n'a de répertoire de scan."))
        return redirect("invoices:imports")
    with transaction.atomic():
        scans = imports.intake_scan_request(companies=companies, actor=request.user)
        for scan in scans:
            intake_scan_task.delay_on_commit(scan.pk)
    messages.success(
        request,
        ngettext(
            "Import lancé pour %(count)d répertoire de scan : suivez l'avancement ci-dessous.",
            "Import lancé pour %(count)d répertoires de scan : suivez l'avancement ci-dessous.",
            len(scans),
        )
        % {"count": len(scans)},
    )
    return redirect(_imports_url(analyse=scans[0].batch))


@require_GET
@login_required
@permission_required(VIEW, raise_exception=True)
def imports_progress(request, batch: uuid.UUID):
    scans = selectors.intake_scans_for_user(request.user, batch)
    if not scans:
        raise Http404
    progress = _scan_progress(scans)
    response = render(request, "invoices/_imports_progress.html", {"progress": progress})
    if progress["finished"]:
        # The list below refreshes itself once, when the scan is over.
        response["HX-Trigger"] = "imports-scanned"
    return response


DOWNLOAD_TYPES = {".pdf": "application/pdf", ".xml": "application/xml"}


@require_GET
@login_required
@permission_required(VIEW, raise_exception=True)
def intake_file_download(request, pk: int):
    """The file as it lies now under ``SCAN_ROOT`` (``traités/``, ``erreurs/``…), streamed as an attachment."""
    record = selectors.intake_file_for_user(request.user, pk)
    try:
        opened = imports.intake_file_open(intake_file=record)
    except imports.IntakeFileUnavailable as error:
        messages.error(request, str(error))
        return redirect("invoices:imports")
    content_type = DOWNLOAD_TYPES.get(PurePosixPath(opened.filename).suffix.lower(), "application/octet-stream")
    return FileResponse(opened.stream, as_attachment=True, filename=opened.filename, content_type=content_type)


@require_POST
@login_required
@permission_required(EDIT, raise_exception=True)
def intake_file_retry(request, pk: int):
    """« Réessayer »: a refused (or already received) file goes through the intake again; the outcome is said at the
    top of the list."""
    record = selectors.intake_file_for_user(request.user, pk)
    visible = visible_company_ids(request.user)
    if visible is not None and record.company_id not in visible:
        raise Http404
    back = _imports_url(_imports_query(QueryDict(request.POST.get("query", ""))))
    name = imports.display_name(record)
    try:
        item = intake.intake_file_retry(intake_file=record, actor=request.user)
    except intake.IntakeRetryError as error:
        messages.error(request, _("« %(name)s » : %(why)s") % {"name": name, "why": error})
        return redirect(back)
    except OSError as error:
        messages.error(request, _("« %(name)s » n'a pas pu être repris : %(why)s") % {"name": name, "why": error})
        return redirect(back)
    record.refresh_from_db()
    if item.outcome == IntakeFile.Outcome.CREATED:
        messages.success(
            request,
            _("« %(name)s » importé : facture N° %(number)s créée dans %(company)s (%(status)s).")
            % {
                "name": name,
                "number": record.invoice.number,
                "company": record.invoice.company.code,
                "status": record.invoice.get_status_display(),
            },
        )
    elif item.outcome == IntakeFile.Outcome.DUPLICATE:
        messages.warning(request, _("« %(name)s » : %(why)s") % {"name": name, "why": item.reason})
    elif item.outcome == IntakeFile.Outcome.REFUSED:
        messages.error(request, _("« %(name)s » refusé à nouveau : %(why)s") % {"name": name, "why": item.reason})
    else:
        messages.info(request, _("« %(name)s » : %(why)s") % {"name": name, "why": item.reason})
    return redirect(back)
