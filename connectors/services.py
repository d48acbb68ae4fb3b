"""Writes of « Paramétrage des connecteurs »: connection settings, the schedule, the probes of each server. Each
change of settings is audited."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.services import audit_record

from .crypto import SecretUnreadable
from .models import INTERACTIVE_TIMEOUT, Connector, SyncSchedule
from .sage_frp1000.client import (
    SageAuthError,
    SageClient,
    SageError,
    SageProtocolError,
    SageRejected,
    SageUnreachable,
)
from .schedule import next_occurrence

logger = logging.getLogger(__name__)

# The probe behind /healthz: each server's /health, given up after this many seconds (README « Surveillance »).
HEALTH_PROBE_SECONDS = 2.0
HEALTH_PROBE_THREADS = 8


class ConnectorKeyRequired(Exception):
    """The URL changed without the key being typed again: the stored key never leaves for another server."""


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
    """Save a connector; an empty ``api_key`` keeps the stored one (the form never shows it back), unless the URL
    changes: the key was given for one server and is sent to no other (``ConnectorKeyRequired``)."""
    # The stored values: a bound ModelForm has already copied the new ones onto the instance.
    stored = Connector.objects.filter(pk=connector.pk).values("name", "url", "timeout_seconds").first()
    if stored is not None and stored["url"] != url and not api_key:
        raise ConnectorKeyRequired(_("L'URL a changé : saisissez de nouveau la clé API."))
    before = stored or {"name": "", "url": "", "timeout_seconds": ""}
    connector.name, connector.url, connector.timeout_seconds = name, url, timeout_seconds
    key_changed = bool(api_key)
    if key_changed:
        connector.set_api_key(api_key)
    if key_changed or before["url"] != url:
        # The last probe was of another server, or with another key: unknown until the next one.
        connector.health_ok, connector.health_message, connector.health_checked_at = None, "", None
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


@dataclass(frozen=True)
class Probe:
    ok: bool
    message: str  # French, without the URL or the key


def _health_within(url: str, api_key: str, *, timeout: float, budget: float) -> dict:
    """The server's /health, given up after ``budget`` seconds in all.

    The client bounds each connection and each read, but neither the name lookup nor their sum: the call runs in a
    daemon thread, left to end on its own timeouts when the caller stops waiting for it.
    """
    outcome: dict = {}
    done = threading.Event()

    def call() -> None:
        try:
            with SageClient(url, api_key, timeout=timeout, retries=0, max_response_bytes=64 * 1024) as client:
                outcome["health"] = client.health()
        except Exception as exc:  # handed over to the caller below
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=call, name="sage-health", daemon=True).start()
    if not done.wait(budget):
        raise SageUnreachable("Sage FRP 1000 ne répond pas (délai dépassé).", outcome_unknown=False)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["health"]


def connector_probe(*, connector: Connector, budget: float) -> Probe:
    """Ask the connector's server for /health, within ``budget`` seconds whatever it does; the French verdict."""
    try:
        api_key = connector.decrypted_api_key()
        timeout = min(float(connector.timeout_seconds), budget)
        health = _health_within(connector.url, api_key, timeout=timeout, budget=budget)
    except SecretUnreadable as error:
        return Probe(False, str(error))
    except SageAuthError:
        return Probe(False, _("Connexion refusée : clé API refusée par Sage FRP 1000."))
    except SageUnreachable:
        # One sentence for a refused connection, a timeout, an unknown name, a TLS failure, a broken answer: the
        # button must not tell which ports of a host are open.
        return Probe(
            False,
            _(
                "Serveur injoignable : aucun serveur Sage FRP 1000 n'a répondu à cette adresse. "
                "Vérifiez l'URL, le réseau et le pare-feu."
            ),
        )
    except (SageProtocolError, SageRejected):
        return Probe(False, _("Cette adresse ne répond pas comme un serveur Sage FRP 1000 : vérifiez l'URL."))
    except SageError as error:  # 5xx, 429: a server that said it is in trouble
        return Probe(False, error.message)
    return Probe(True, _("Connexion réussie : %(version)s.") % {"version": health["version"].strip()})


def connector_test(*, connector: Connector) -> Probe:
    """« Tester la connexion »: an answer within INTERACTIVE_TIMEOUT seconds, a person waits for it."""
    return connector_probe(connector=connector, budget=INTERACTIVE_TIMEOUT)


def _probe_guarded(connector: Connector, budget: float) -> Probe:
    try:
        return connector_probe(connector=connector, budget=budget)
    except Exception:
        logger.exception("the probe of connector %s failed", connector.pk)
        return Probe(False, _("Vérification impossible (erreur interne, voir les journaux)."))


def connectors_health_refresh(*, budget: float = HEALTH_PROBE_SECONDS) -> dict[int, Probe]:
    """Probe every connector side by side and store each verdict for /healthz (a beat entry runs it every minute)."""
    connectors = list(Connector.objects.all())
    if not connectors:
        return {}
    with ThreadPoolExecutor(max_workers=min(HEALTH_PROBE_THREADS, len(connectors))) as pool:
        verdicts = pool.map(lambda connector: _probe_guarded(connector, budget), connectors)
        probes = dict(zip([c.pk for c in connectors], verdicts, strict=True))
    now = timezone.now()
    for connector in connectors:
        probe = probes[connector.pk]
        # Only for the URL and the key probed: a change meanwhile waits for the next probe.
        Connector.objects.filter(
            pk=connector.pk, url=connector.url, api_key_encrypted=connector.api_key_encrypted
        ).update(health_ok=probe.ok, health_message=probe.message[:200], health_checked_at=now)
    return probes


def schedule_get() -> SyncSchedule:
    """The one schedule; made on first use, under a fixed key so that two first visits at once make one row."""
    schedule = SyncSchedule.objects.order_by("pk").first()
    if schedule is None:
        schedule = SyncSchedule.objects.get_or_create(pk=1)[0]
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


def schedule_slot_take(*, now: dt.datetime) -> dt.datetime | None:
    """Take the due slot with a conditional UPDATE: the slot (``next_run_at``) if this caller won it, else None.

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
