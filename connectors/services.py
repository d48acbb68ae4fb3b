"""Writes of « Paramétrage des connecteurs »: connection settings, the schedule. Each change is audited."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.services import audit_record

from .models import INTERACTIVE_TIMEOUT, Connector, SyncSchedule
from .sage_frp1000.client import SageAuthError, SageError, SageUnavailable
from .schedule import next_occurrence


def connector_seed_from_environment() -> Connector:
    """The first connector, from SAGE_FRP1000_URL and SAGE_FRP1000_API_KEY, when there is none yet.

    Two first visits at once make one: the unique name decides, and the second finds the first's.
    """
    existing = Connector.objects.order_by("pk").first()
    if existing is not None:
        return existing
    seed = Connector(url=settings.SAGE_FRP1000_URL, timeout_seconds=int(settings.SAGE_FRP1000_TIMEOUT))
    seed.set_api_key(settings.SAGE_FRP1000_API_KEY or "")
    connector, _created = Connector.objects.get_or_create(
        name="Sage FRP 1000",
        defaults={
            "url": seed.url,
            "timeout_seconds": seed.timeout_seconds,
            "api_key_encrypted": seed.api_key_encrypted,
        },
    )
    return connector


@transaction.atomic
def connector_save(
    *, connector: Connector, name: str, url: str, timeout_seconds: int, api_key: str, actor
) -> Connector:
    """Save a connector; an empty ``api_key`` keeps the stored one (the form never shows it back)."""
    # The stored values: a bound ModelForm has already copied the new ones onto the instance.
    stored = Connector.objects.filter(pk=connector.pk).values("name", "url", "timeout_seconds").first()
    before = stored or {"name": "", "url": "", "timeout_seconds": ""}
    connector.name, connector.url, connector.timeout_seconds = name, url, timeout_seconds
    key_changed = bool(api_key)
    if key_changed:
        connector.set_api_key(api_key)
    connector.save()
    after = {"name": name, "url": url, "timeout_seconds": timeout_seconds}
    labels = {"name": _("nom"), "url": _("URL"), "timeout_seconds": _("délai d'attente (s)")}
    changes = [f"{labels[f]} : {before[f]} → {after[f]}" for f in after if before[f] != after[f]]
    if key_changed:
        changes.append(_("clé API remplacée"))
    if changes:
        audit_record(
            actor=actor,
            action="connector.changed",
            summary=_("Connecteur %(name)s : %(changes)s")
            % {"name": name, "changes": " ; ".join(changes) or _("créé")},
        )
    return connector


def connector_test(*, connector: Connector) -> tuple[bool, str]:
    """« Tester la connexion »: (ok, the French sentence to show)."""
    try:
        with connector.client(interactive=True) as client:
            health = client.health()
    except SageAuthError:
        return False, _("Connexion refusée : clé API refusée par Sage FRP 1000.")
    except SageUnavailable as error:
        if "délai" in error.message:
            waited = min(connector.timeout_seconds, int(INTERACTIVE_TIMEOUT))
            return False, _("Délai dépassé : Sage FRP 1000 ne répond pas (%(s)s s).") % {"s": waited}
        return False, _("Serveur injoignable : %(error)s") % {"error": error.message}
    except SageError as error:
        return False, error.message
    return True, _("Connexion réussie : %(version)s.") % {"version": health.get("version", "Sage FRP 1000")}


def schedule_get() -> SyncSchedule:
    """The one schedule; made on first use, under a fixed key so that two first visits at once make one row."""
    schedule = SyncSchedule.objects.order_by("pk").first()
    return schedule or SyncSchedule.objects.get_or_create(pk=1)[0]


@transaction.atomic
def schedule_save(*, frequency: str, weekday: int | None, time: dt.time, enabled: bool, actor) -> SyncSchedule:
    """Save the schedule; the new next run counts from now, and the next tick of beat follows it."""
    schedule = SyncSchedule.objects.select_for_update().get(pk=schedule_get().pk)
    schedule.frequency = frequency
    schedule.weekday = weekday if frequency == SyncSchedule.Frequency.WEEKLY else None
    schedule.time = time
    schedule.enabled = enabled
    schedule.next_run_at = (
        next_occurrence(timezone.now(), frequency=frequency, time=time, weekday=schedule.weekday) if enabled else None
    )
    schedule.save()
    if enabled:
        day = f" ({schedule.get_weekday_display()})" if schedule.weekday is not None else ""
        summary = _("Synchronisation automatique : %(freq)s%(day)s à %(time)s") % {
            "freq": schedule.get_frequency_display(),
            "day": day,
            "time": time.strftime("%H:%M"),
        }
    else:
        summary = _("Synchronisation automatique désactivée")
    audit_record(actor=actor, action="schedule.changed", summary=summary)
    return schedule


def schedule_claim(*, now: dt.datetime) -> dt.datetime | None:
    """Claim the due slot with a conditional UPDATE: the slot (``next_run_at``) if this caller won it, else None.

    The next slot counts from ``now``: after a downtime across several slots there is one catch-up run.
    """
    schedule = SyncSchedule.objects.filter(enabled=True, next_run_at__lte=now).order_by("pk").first()
    if schedule is None:
        return None
    slot = schedule.next_run_at
    following = next_occurrence(now, frequency=schedule.frequency, time=schedule.time, weekday=schedule.weekday)
    won = SyncSchedule.objects.filter(pk=schedule.pk, enabled=True, next_run_at=slot).update(
        next_run_at=following, last_run_at=now
    )
    return slot if won else None
