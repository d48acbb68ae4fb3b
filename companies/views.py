"""« Administration → Société »: the companies, their scan directory, and « Mettre à jour les sociétés »."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from connectors.models import Connector
from connectors.sage_frp1000.client import SageError
from core.ids import keys_of

from . import selectors, services, tasks
from .forms import CompanySettingsForm
from .lease import lease_release_time

RIGHT = "companies.update_companies"


def _selected_companies(request) -> list:
    """The ticked companies; a forged id the user may not see answers 404."""
    try:
        ids = keys_of(request.POST.getlist("companies"))
    except ValueError:
        raise Http404 from None
    companies = list(selectors.companies_for_user(request.user).filter(pk__in=ids).select_related("connector"))
    if len(companies) != len(ids):
        raise Http404
    return companies


def _busy_sentence(company) -> str:
    """Why nothing was launched for a company, and when it frees at the latest if the sync holding it died."""
    if company.sync_lease_until and company.sync_lease_until > timezone.now():
        return _(
            "%(name)s : déjà en cours (%(what)s) ; si elle s'est interrompue, la société sera libérée au plus tard"
            " à %(time)s."
        ) % {
            "name": company.name,
            "what": company.sync_lease_label or _("synchronisation"),
            "time": lease_release_time(company.sync_lease_until),
        }
    return _("%(name)s : mise à jour déjà demandée, en attente d'un worker depuis %(time)s.") % {
        "name": company.name,
        "time": date_format(timezone.localtime(company.pull_requested_at), "H:i"),
    }


def _rows_context(request) -> dict:
    companies = selectors.companies_for_user(request.user).select_related("connector")
    return {"companies": companies}


@require_GET
@login_required
@permission_required(RIGHT, raise_exception=True)
def company_list(request):
    return render(request, "companies/company_list.html", _rows_context(request))


@require_POST
@login_required
@permission_required(RIGHT, raise_exception=True)
def company_pull(request):
    companies = _selected_companies(request)
    # « Mise à jour complète »: every kind read in full, not only what changed since the last pull.
    full = request.POST.get("full") == "1"
    if not companies:
        messages.warning(request, _("Cochez au moins une société à mettre à jour."))
    else:
        with transaction.atomic():
            queued, busy = services.company_pull_request(companies=companies, actor=request.user, full=full)
            for company in queued:
                tasks.company_pull.delay_on_commit(company.pk, full=full)
        if queued:
            if full:
                launched = ngettext(
                    "Mise à jour complète lancée pour %(count)d société : %(codes)s.",
                    "Mise à jour complète lancée pour %(count)d sociétés : %(codes)s.",
                    len(queued),
                )
            else:
                launched = ngettext(
                    "Mise à jour lancée pour %(count)d société : %(codes)s.",
                    "Mise à jour lancée pour %(count)d sociétés : %(codes)s.",
                    len(queued),
                )
            messages.success(request, launched % {"count": len(queued), "codes": ", ".join(c.name for c in queued)})
        for company in busy:
            messages.info(request, _busy_sentence(company))
    if request.htmx:
        return render(request, "companies/_company_table.html", _rows_context(request) | {"swap_messages": True})
    return redirect("companies:list")


@require_GET
@login_required
@permission_required(RIGHT, raise_exception=True)
def company_status(request, pk: int):
    company = selectors.company_for_user(request.user, pk)
    return render(request, "companies/_pull_status.html", {"company": company})


@require_http_methods(["GET", "POST"])
@login_required
@permission_required(RIGHT, raise_exception=True)
def company_detail(request, pk: int):
    company = selectors.company_for_user(request.user, pk)
    form = CompanySettingsForm(request.POST or None, instance=company)
    if request.method == "POST" and form.is_valid():
        try:
            services.company_settings_update(
                company=company,
                scan_directory=form.cleaned_data["scan_directory"],
                purchase_journal_code=form.cleaned_data["purchase_journal_code"],
                actor=request.user,
            )
        except services.ScanDirectoryConflict as conflict:
            form.add_error("scan_directory", str(conflict))
        else:
            messages.success(request, _("Paramètres de la société enregistrés."))
            return redirect("companies:detail", pk=company.pk)
    context = {
        "company": company,
        "form": form,
        "summary": selectors.company_referential_summary(company),
        "problems": (company.pull_result or {}).get("problems", []),
        "problem_count": (company.pull_result or {}).get("problem_count", 0),
    }
    return render(request, "companies/company_detail.html", context)


@require_POST
@login_required
@permission_required(RIGHT, raise_exception=True)
def companies_discover(request):
    if not request.user.has_perm("connectors.manage_connectors"):
        messages.error(
            request, _("La recherche de nouvelles sociétés demande le droit « Paramétrage des connecteurs ».")
        )
        return redirect("companies:list")
    created = []
    for connector in Connector.objects.all():
        try:
            created += services.companies_discover(connector=connector, actor=request.user)
        except SageError as error:
            messages.error(request, f"{connector.name} : {error.message}")
    if created:
        messages.success(
            request,
            _("Sociétés ajoutées depuis Sage FRP 1000 : %(names)s. Indiquez leur répertoire de scan.")
            % {"names": ", ".join(c.name for c in created)},
        )
    else:
        messages.info(request, _("Aucune nouvelle société dans Sage FRP 1000."))
    return redirect("companies:list")
