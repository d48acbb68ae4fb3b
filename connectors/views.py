"""« Administration → Paramétrage des connecteurs »: CONNEXION (URL, key, timeout) and SYNCHRONISATION."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from . import services
from .forms import ConnectorForm, ScheduleForm
from .models import Connector
from .schedule import describe

# A connector and the schedule serve every company: only a user who sees every company holds this right, whatever
# his groups give (accounts.backends).
RIGHT = "connectors.manage_connectors"
TABS = ("connexion", "synchronisation")


def _page(request, *, tab: str, connector_forms=None, new_form=None, schedule_form=None):
    services.connector_seed_from_environment()
    schedule = services.schedule_get()
    connectors = list(Connector.objects.order_by("name"))
    forms_by_pk = {form.instance.pk: form for form in connector_forms or []}
    context = {
        "tab": tab,
        "cards": [
            {"connector": c, "form": forms_by_pk.get(c.pk) or ConnectorForm(instance=c, prefix=f"c{c.pk}")}
            for c in connectors
        ],
        "new_form": new_form or ConnectorForm(prefix="new"),
        "schedule": schedule,
        "schedule_form": schedule_form or ScheduleForm(initial=ScheduleForm.initial_from(schedule)),
        "next_run": describe(schedule.next_run_at) if schedule.enabled else "",
    }
    return render(request, "connectors/settings.html", context)


@require_GET
@login_required
@permission_required(RIGHT, raise_exception=True)
def connector_settings(request):
    tab = request.GET.get("onglet", "connexion")
    return _page(request, tab=tab if tab in TABS else "connexion")


@require_POST
@login_required
@permission_required(RIGHT, raise_exception=True)
def connector_save(request, pk: int | None = None):
    connector = get_object_or_404(Connector, pk=pk) if pk else Connector()
    prefix = f"c{pk}" if pk else "new"
    form = ConnectorForm(request.POST, instance=connector, prefix=prefix)
    if not form.is_valid():
        if pk:
            return _page(request, tab="connexion", connector_forms=[form])
        return _page(request, tab="connexion", new_form=form)
    services.connector_save(
        connector=connector,
        name=form.cleaned_data["name"],
        url=form.cleaned_data["url"],
        timeout_seconds=form.cleaned_data["timeout_seconds"],
        api_key=form.cleaned_data["api_key"],
        actor=request.user,
    )
    messages.success(request, _("Connecteur « %(name)s » enregistré.") % {"name": connector.name})
    return redirect(f"{reverse('connectors:settings')}?onglet=connexion")


@require_POST
@login_required
@permission_required(RIGHT, raise_exception=True)
def connector_test(request, pk: int):
    connector = get_object_or_404(Connector, pk=pk)
    probe = services.connector_test(connector=connector)
    (messages.success if probe.ok else messages.error)(request, f"{connector.name} — {probe.message}")
    return redirect(f"{reverse('connectors:settings')}?onglet=connexion")


def _schedule_tab():
    return redirect(f"{reverse('connectors:settings')}?onglet=synchronisation")


@require_POST
@login_required
@permission_required(RIGHT, raise_exception=True)
def schedule_save(request):
    form = ScheduleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("La synchronisation n'a pas été enregistrée : corrigez les champs signalés."))
        return _page(request, tab="synchronisation", schedule_form=form)
    schedule = services.schedule_save(
        frequency=form.cleaned_data["frequency"],
        weekday=form.cleaned_data["weekday"],
        time=form.cleaned_data["time"],
        actor=request.user,
    )
    messages.success(
        request,
        _("Synchronisation automatique enregistrée et activée. Prochaine synchronisation : %(when)s.")
        % {"when": describe(schedule.next_run_at)},
    )
    return _schedule_tab()


@require_POST
@login_required
@permission_required(RIGHT, raise_exception=True)
def schedule_disable(request):
    _schedule, changed = services.schedule_disable(actor=request.user)
    if changed:
        messages.warning(
            request,
            _(
                "Synchronisation automatique désactivée : aucune synchronisation ne partira d'elle-même. "
                "« Activer » la remet aux jour et heure enregistrés."
            ),
        )
    else:
        messages.info(request, _("La synchronisation automatique était déjà désactivée."))
    return _schedule_tab()


@require_POST
@login_required
@permission_required(RIGHT, raise_exception=True)
def schedule_enable(request):
    schedule, changed = services.schedule_enable(actor=request.user)
    if changed:
        messages.success(
            request,
            _("Synchronisation automatique activée. Prochaine synchronisation : %(when)s.")
            % {"when": describe(schedule.next_run_at)},
        )
    else:
        messages.info(request, _("La synchronisation automatique était déjà activée."))
    return _schedule_tab()
