"""« Administration → Visuel Synchronisations »: what waits for Sage, « Exporter », « Simuler », anomalies, history."""

from __future__ import annotations

import contextlib

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import SuspiciousOperation
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from companies.selectors import companies_for_user
from core.csv import csv_lines
from core.ids import key_of, keys_of
from invoices.models import ExportState, Invoice

from . import selectors
from .forms import VisuelFilterForm
from .models import Anomaly, SyncItem, SyncRun
from .runs import run_start, sync_now_start

RIGHT = "synchro.view_synchronisations"


def _filter_form(request, data) -> VisuelFilterForm:
    return VisuelFilterForm(data, companies=companies_for_user(request.user))


@require_GET
@login_required
@permission_required(RIGHT, raise_exception=True)
def visuel(request):
    form = _filter_form(request, request.GET)
    kind = form.kind
    if form.is_valid():
        page = selectors.visuel_page(
            request.user,
            kind=kind,
            filters=form.selection_filters(),
            after=request.GET.get("after", ""),
            before=request.GET.get("before", ""),
            last=request.GET.get("last") == "1",
        )
    else:
        # Every row is not what an invalid filter asks for: nothing, and the errors next to their fields.
        page = selectors.keyset_page(Invoice.objects.none(), count=0)
    query = request.GET.copy()
    for key in ("after", "before", "last", "run"):
        query.pop(key, None)
    run = None
    with contextlib.suppress(ValueError):  # no « run », or a forged one (« ² » passes isdigit, not int()): no run
        wanted = key_of(request.GET.get("run", ""))
        run = selectors.runs_for_user(request.user).filter(pk=wanted).first()
    context = {
        "form": form,
        "kind": kind,
        "kinds": SyncItem.Kind.choices,
        "page": page,
        "query": query.urlencode(),
        "run": run,
    }
    template = "synchro/_visuel_rows.html" if request.htmx and request.GET.get("rows") else "synchro/visuel.html"
    return render(request, template, context)


def _ticked_ids(request) -> set[int]:
    try:
        return keys_of(request.POST.getlist("invoices"))
    except ValueError:
        raise SuspiciousOperation("identifiant invalide") from None


@require_POST
@login_required
@permission_required(RIGHT, raise_exception=True)
def export(request):
    """« Exporter » (or « Simuler ») the ticked rows, or everything matching the filter (« Tout cocher »)."""
    form = _filter_form(request, request.POST)
    if not form.is_valid():
        messages.error(request, _("Filtre invalide : corrigez-le puis recommencez."))
        return redirect("synchro:list")
    kind = form.kind
    simulate = request.POST.get("action") == "simulate"
    if simulate and kind != SyncItem.Kind.CREATION:
        messages.error(request, _("La simulation porte sur les écritures à intégrer."))
        return redirect(f"{reverse('synchro:list')}?type={kind}")
    rows = selectors.visuel_rows(request.user, kind=kind, filters=form.selection_filters())
    if request.POST.get("select_all") == "1":
        selection = {"kind": kind, "filters": form.selection_filters()}
    else:
        ids = _ticked_ids(request)
        if not ids:
            messages.warning(request, _("Cochez au moins une écriture, ou « Tout cocher »."))
            return redirect(f"{reverse('synchro:list')}?{urlencode({'type': kind})}")
        if rows.filter(pk__in=ids).count() != len(ids):
            raise Http404
        rows = rows.filter(pk__in=ids)
        selection = {"kind": kind, "invoices": sorted(ids)}
    companies = selectors.companies_with_rows(request.user, rows)
    if not companies:
        messages.info(request, _("Rien à exporter pour cette sélection."))
        return redirect(f"{reverse('synchro:list')}?{urlencode({'type': kind})}")
    run = run_start(
        trigger=SyncRun.Trigger.SIMULATION if simulate else SyncRun.Trigger.EXPORT,
        user=request.user,
        companies=companies,
        selection=selection,
    )
    what = _("Simulation lancée") if simulate else _("Export lancé")
    messages.success(
        request,
        ngettext(
            "%(what)s pour %(count)d société : suivez l'avancement ci-dessous.",
            "%(what)s pour %(count)d sociétés : suivez l'avancement ci-dessous.",
            len(companies),
        )
        % {"what": what, "count": len(companies)},
    )
    return redirect(f"{reverse('synchro:list')}?{urlencode({'type': kind, 'run': run.pk})}")


@require_GET
@login_required
@permission_required(RIGHT, raise_exception=True)
def run_progress(request, pk: int):
    run, lines = selectors.run_for_user(request.user, pk)
    progress = selectors.run_progress(lines)
    response = render(request, "synchro/_run_progress.html", {"run": run, "lines": lines, "progress": progress})
    if progress["finished"]:
        # The rows below refresh themselves once, when the run is over.
        response["HX-Trigger"] = "run-finished"
    return response


@require_GET
@login_required
@permission_required(RIGHT, raise_exception=True)
def run_detail(request, pk: int):
    run, lines = selectors.run_for_user(request.user, pk)
    if run.is_simulation:
        items_page = Paginator(selectors.run_simulated_anomalies(run, lines), 100).get_page(request.GET.get("page"))
    else:
        items_page = Paginator(selectors.run_items(run, lines), 100).get_page(request.GET.get("page"))
    context = {
        "run": run,
        "status_label": selectors.RunRow(run, lines, selectors.shown_run_status(run, lines)).status_label,
        "lines": lines,
        "progress": selectors.run_progress(lines),
        "items_page": items_page,
    }
    return render(request, "synchro/run_detail.html", context)


@require_GET
@login_required
@permission_required(RIGHT, raise_exception=True)
def anomaly_detail(request, invoice_pk: int):
    invoice, anomalies = selectors.open_anomalies_for(request.user, invoice_pk)
    template = "synchro/_anomaly_modal.html" if request.htmx else "synchro/anomaly_detail.html"
    return render(request, template, {"invoice": invoice, "anomalies": anomalies})


@require_GET
@login_required
@permission_required(RIGHT, raise_exception=True)
def history(request):
    page = Paginator(selectors.runs_for_user(request.user), 25).get_page(request.GET.get("page"))
    rows = selectors.run_rows_for_user(request.user, list(page.object_list))
    return render(request, "synchro/history.html", {"page": page, "rows": rows})


@require_POST
@login_required
@permission_required("connectors.manage_connectors", raise_exception=True)
def synchronise_now(request):
    run = sync_now_start(user=request.user)
    count = run.companies.count()
    if not count:
        messages.warning(request, _("Aucune société active ne vous est accessible : rien à synchroniser."))
    else:
        messages.success(
            request,
            ngettext(
                "Synchronisation lancée : référentiel puis écritures, pour %(count)d société. Suivez-la ci-dessous.",
                "Synchronisation lancée : référentiel puis écritures, pour %(count)d sociétés. Suivez-la ci-dessous.",
                count,
            )
            % {"count": count},
        )
    return redirect(f"{reverse('connectors:settings')}?onglet=synchronisation")


@require_GET
@login_required
@permission_required("connectors.manage_connectors", raise_exception=True)
def recent_runs(request):
    runs = list(selectors.runs_for_user(request.user).filter(trigger__in=SyncRun.AUTOMATIC_TRIGGERS)[:5])
    return render(request, "synchro/_recent_runs.html", {"rows": selectors.run_rows_for_user(request.user, runs)})


@require_GET
@login_required
@permission_required(RIGHT, raise_exception=True)
def visuel_csv(request):
    """The rows of the current tab and filter, with their open anomalies, as CSV (streamed, any size).

    An invalid filter produces no file: back to the screen with the same filter, its errors next to their fields.
    """
    form = _filter_form(request, request.GET)
    if not form.is_valid():
        messages.error(
            request, _("Filtre invalide : aucun fichier n'a été produit. Corrigez le filtre puis téléchargez.")
        )
        return redirect(f"{reverse('synchro:list')}?{request.GET.urlencode()}")
    filters = form.selection_filters()
    kind = form.kind
    field = selectors.state_field(kind)
    open_anomalies = Prefetch(
        "anomalies", queryset=Anomaly.objects.filter(cleared_at__isnull=True, simulated=False), to_attr="open_anomalies"
    )
    rows = (
        selectors.visuel_rows(request.user, kind=kind, filters=filters)
        .select_related("company", "supplier")
        .prefetch_related(open_anomalies)
        .order_by("-invoice_date", "-id")
    )
    labels = dict(ExportState.choices)

    def lines():
        # Chunks of 2 000 rows, each with one query for its anomalies: any size, bounded memory.
        for invoice in rows.iterator(chunk_size=2000):
            anomalies = " | ".join(f"{a.code} : {a.message}" for a in invoice.open_anomalies)
            yield [
                invoice.company.name,
                _("Mise à jour (BAP)") if kind == SyncItem.Kind.UPDATE else invoice.get_kind_display(),
                invoice.supplier.label if invoice.supplier else "",
                invoice.number,
                invoice.invoice_date.strftime("%d/%m/%Y") if invoice.invoice_date else "",
                f"{invoice.total_ttc:.2f}".replace(".", ","),
                labels.get(getattr(invoice, field), ""),
                timezone.localtime(invoice.last_attempt_at).strftime("%d/%m/%Y %H:%M")
                if invoice.last_attempt_at
                else "",
                invoice.sage_piece_number,
                anomalies,
            ]

    header = [
        _("Société"), _("Type"), _("Fournisseur"), _("N° de facture"), _("Date"), _("Montant TTC"), _("Statut"),
        _("Dernière tentative"), _("N° de pièce Sage"), _("Anomalies"),
    ]  # fmt: skip
    response = StreamingHttpResponse(csv_lines(header, lines()), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="visuel-synchronisations.csv"'
    return response
