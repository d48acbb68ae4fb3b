"""« Factures »: the supplier invoices, where accountants correct what Sage rejected (never in the ERP)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from companies.selectors import companies_for_user

from . import selectors, services
from .accounting import EntryError
from .forms import InvoiceFilterForm, InvoiceForm, LineFormSet
from .models import Invoice
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
    }
    return render(request, "invoices/invoice_detail.html", context)


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
