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
    """The first connector, from SAGE_FRP1000_URL and SAGE_FRP1000_API_KEY, when there is none yet."""
    existing = Connector.objects.order_by("pk").first()
    if existing is not None:
        return existing
    connector = Connector(
        name="Sage FRP 1000", url=settings.SAGE_FRP1000_URL, timeout_seconds=int(settings.SAGE_FRP1000_TIMEOUT)
    )
    connector.set_api_key(settings.SAGE_FRP1000_API_KEY or "")
    connector.save()
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
    schedule = SyncSchedule.objects.order_by("pk").first()
    if schedule is None:
        schedule = SyncSchedule.objects.create()
        # The default time as the database gives it back (a time, not the string of the field's default).
        schedule.refresh_from_db()
    return schedule


def _schedule_words(schedule: SyncSchedule) -> str:
    """« CHAQUE SEMAINE (lundi) à 12:00 »."""
    day = f" ({schedule.get_weekday_display()})" if schedule.weekday is not None else ""
    return _("%(freq)s%(day)s à %(time)s") % {
        "freq": schedule.get_frequency_display(),
        "day": day,
        "time": schedule.time.strftime("%H:%M"),
    }


def _schedule_locked() -> SyncSchedule:
    return SyncSchedule.objects.select_for_update().get(pk=schedule_get().pk)


@transaction.atomic
def schedule_save(*, frequency: str, weekday: int | None, time: dt.time, actor) -> SyncSchedule:
    """« Enregistrer »: choosing a frequency and a time is the act of scheduling, so the saved schedule is on. The next
    run counts from now, and the next tick of beat follows it. Turning it off is its own act (``schedule_disable``)."""
    schedule = _schedule_locked()
    schedule.frequency = frequency
    schedule.weekday = weekday if frequency == SyncSchedule.Frequency.WEEKLY else None
    schedule.time = time
    schedule.enabled = True
    schedule.next_run_at = next_occurrence(timezone.now(), frequency=frequency, time=time, weekday=schedule.weekday)
    schedule.save()
    audit_record(
        actor=actor,
        action="schedule.changed",
        summary=_("Synchronisation automatique : %(when)s") % {"when": _schedule_words(schedule)},
    )
    return schedule


@transaction.atomic
def schedule_disable(*, actor) -> tuple[SyncSchedule, bool]:
    """« Désactiver la synchronisation automatique »: no run starts by itself any more; the frequency and the time
    stay, for « Activer ». Returns the schedule and whether it changed (it may have been off already)."""
    schedule = _schedule_locked()
    if not schedule.enabled:
        return schedule, False
    schedule.enabled = False
    schedule.next_run_at = None
    schedule.save(update_fields=["enabled", "next_run_at", "updated_at"])
    audit_record(
        actor=actor,
        action="schedule.disabled",
        summary=_("Synchronisation automatique désactivée (elle était %(when)s)") % {"when": _schedule_words(schedule)},
    )
    return schedule, True


@transaction.atomic
def schedule_enable(*, actor) -> tuple[SyncSchedule, bool]:
    """« Activer »: the saved frequency and time again, the next run counted from now. Returns the schedule and
    whether it changed (it may have been on already)."""
    schedule = _schedule_locked()
    if schedule.enabled:
        return schedule, False
    schedule.enabled = True
    schedule.next_run_at = next_occurrence(
        timezone.now(), frequency=schedule.frequency, time=schedule.time, weekday=schedule.weekday
    )
    schedule.save(update_fields=["enabled", "next_run_at", "updated_at"])
    audit_record(
        actor=actor,
        action="schedule.enabled",
        summary=_("Synchronisation automatique activée : %(when)s") % {"when": _schedule_words(schedule)},
    )
    return schedule, True


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
