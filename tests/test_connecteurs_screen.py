"""« Administration → Paramétrage des connecteurs »: CONNEXION (write-only key, test) and SYNCHRONISATION."""

from __future__ import annotations

from html import unescape

import pytest
import time_machine
from django.urls import reverse

from connectors.models import Connector, SyncSchedule
from core.models import AuditEvent
from synchro.models import SyncRun
from tests.conftest import give_companies, grant
from tests.support.connectors import connector_form
from tests.support.stub import free_port

URL = reverse("connectors:settings")


@pytest.fixture
def admin(bob, connector):
    grant(bob, "connectors.manage_connectors")
    give_companies(bob, all_companies=True)
    return bob


def test_it_requires_the_right(client, charlie, connector):
    client.force_login(charlie)
    assert client.get(URL).status_code == 403


def test_the_api_key_is_encrypted_at_rest_and_never_rendered(client, admin, connector, sage):
    client.force_login(admin)
    stored = Connector.objects.get(pk=connector.pk).api_key_encrypted
    assert sage.api_key not in stored and stored.startswith("gAAAA")
    html = client.get(URL).content.decode()
    assert sage.api_key not in html
    assert "Une clé est enregistrée" in html
    client.post(
        reverse("connectors:save", args=[connector.pk]), connector_form(connector, api_key="nouvelle-cle-secrete")
    )
    connector.refresh_from_db()
    assert connector.decrypted_api_key() == "nouvelle-cle-secrete"
    response = client.get(URL)
    assert response.status_code == 200 and "Une clé est enregistrée" in response.content.decode()
    assert "nouvelle-cle-secrete" not in response.content.decode()
    assert "nouvelle-cle-secrete" not in str(list(AuditEvent.objects.values_list("summary", "details")))


def test_an_empty_key_keeps_the_stored_one(client, admin, connector, sage):
    client.force_login(admin)
    client.post(reverse("connectors:save", args=[connector.pk]), connector_form(connector, timeout_seconds=12))
    connector.refresh_from_db()
    assert connector.timeout_seconds == 12 and connector.decrypted_api_key() == sage.api_key
    assert AuditEvent.objects.filter(
        action="connector.changed", summary__contains="délai d'attente (s) : 5 → 12"
    ).exists()


def test_bad_values_are_refused_next_to_their_field(client, admin, connector):
    client.force_login(admin)
    response = client.post(
        reverse("connectors:save", args=[connector.pk]),
        connector_form(connector, url="pas une url", timeout_seconds=0),
    )
    html = unescape(response.content.decode())
    assert "Adresse invalide : saisissez une URL http:// ou https://" in html and "Entre 1 et 300 secondes." in html
    connector.refresh_from_db()
    assert connector.url.startswith("http://127.0.0.1")


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("ok", "Connexion réussie : Sage FRP 1000 (simulateur SFD) 7.0-stub."),
        ("wrong-key", "Connexion refusée : clé API refusée par Sage FRP 1000."),
        # The same sentence for every host that does not answer (tests/test_connector_key.py).
        ("unreachable", "Serveur injoignable : aucun serveur Sage FRP 1000 n'a répondu à cette adresse."),
        ("slow", "Serveur injoignable : aucun serveur Sage FRP 1000 n'a répondu à cette adresse."),
    ],
)
def test_tester_la_connexion_answers_in_french(client, admin, connector, sage, setup, expected):
    if setup == "wrong-key":
        connector.set_api_key("mauvaise")
    elif setup == "unreachable":
        connector.url = f"http://127.0.0.1:{free_port()}"
    elif setup == "slow":
        connector.timeout_seconds = 1
        sage.faults({"match": "GET /health", "fault": "latency", "delay": 2})
    connector.save()
    client.force_login(admin)
    response = client.post(reverse("connectors:test", args=[connector.pk]), follow=True)
    assert expected in unescape(response.content.decode())


def test_enregistrer_schedules_the_synchronisation_and_shows_the_next_run_in_words(client, admin):
    """The manual's steps — CHAQUE SEMAINE, a day, 12:00, « Enregistrer » — and nothing else: the schedule is on."""
    client.force_login(admin)
    with time_machine.travel("2026-11-28 10:00:00+01:00", tick=False):
        response = client.post(
            reverse("connectors:schedule"), {"frequency": "weekly", "weekday": "0", "time": "12:00"}, follow=True
        )
    html = unescape(response.content.decode())
    assert "Synchronisation automatique enregistrée et activée." in html
    assert "Prochaine synchronisation : lundi 30 novembre 2026 à 12:00" in html
    assert 'id="schedule-state" data-enabled="1"' in html and "Désactiver la synchronisation automatique" in html
    schedule = SyncSchedule.objects.get()
    assert (schedule.frequency, schedule.weekday, schedule.time.strftime("%H:%M")) == ("weekly", 0, "12:00")
    assert schedule.enabled and schedule.next_run_at is not None
    assert AuditEvent.objects.filter(action="schedule.changed", summary__contains="CHAQUE SEMAINE").exists()


def test_the_tab_says_plainly_that_the_schedule_is_off(client, admin):
    client.force_login(admin)
    html = unescape(client.get(URL, {"onglet": "synchronisation"}).content.decode())
    assert 'id="schedule-state" data-enabled="0"' in html
    assert "Synchronisation automatique désactivée" in html and "Aucune synchronisation ne partira d'elle-même." in html
    assert "Réglage enregistré : CHAQUE JOUR à 12:00" in html and "Activer</button>" in html


def test_desactiver_switches_it_off_with_its_own_message_and_audit_line(client, admin):
    client.force_login(admin)
    with time_machine.travel("2026-11-28 10:00:00+01:00", tick=False):
        client.post(reverse("connectors:schedule"), {"frequency": "daily", "time": "07:30"}, follow=True)
        response = client.post(reverse("connectors:schedule_disable"), follow=True)
    html = unescape(response.content.decode())
    assert "Synchronisation automatique désactivée : aucune synchronisation ne partira d'elle-même." in html
    assert 'id="schedule-state" data-enabled="0"' in html and "Prochaine synchronisation" not in html
    schedule = SyncSchedule.objects.get()
    assert (schedule.enabled, schedule.next_run_at, schedule.time.strftime("%H:%M")) == (False, None, "07:30")
    [event] = AuditEvent.objects.filter(action="schedule.disabled")
    assert event.actor == admin and "CHAQUE JOUR à 07:30" in event.summary
    again = unescape(client.post(reverse("connectors:schedule_disable"), follow=True).content.decode())
    assert "La synchronisation automatique était déjà désactivée." in again
    assert AuditEvent.objects.filter(action="schedule.disabled").count() == 1


def test_activer_switches_it_back_on_at_the_saved_day_and_time(client, admin):
    client.force_login(admin)
    with time_machine.travel("2026-11-28 10:00:00+01:00", tick=False):
        client.post(reverse("connectors:schedule"), {"frequency": "weekly", "weekday": "4", "time": "18:00"})
        client.post(reverse("connectors:schedule_disable"))
        response = client.post(reverse("connectors:schedule_enable"), follow=True)
    html = unescape(response.content.decode())
    assert "Synchronisation automatique activée. Prochaine synchronisation : vendredi 4 décembre 2026 à 18:00." in html
    assert SyncSchedule.objects.get().enabled
    assert AuditEvent.objects.filter(action="schedule.enabled", actor=admin).count() == 1


@pytest.mark.parametrize("name", ["connectors:schedule_disable", "connectors:schedule_enable"])
def test_switching_the_schedule_needs_the_right_and_a_post(client, admin, charlie, name):
    client.force_login(charlie)
    assert client.post(reverse(name)).status_code == 403
    client.force_login(admin)
    assert client.get(reverse(name)).status_code == 405
    assert not AuditEvent.objects.filter(action__startswith="schedule.").exists()


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"frequency": "daily", "time": "25:99"}, "Heure invalide : saisissez HH:MM, par exemple 12:00."),
        ({"frequency": "daily", "time": ""}, "Ce champ est obligatoire."),
        ({"frequency": "weekly", "weekday": "", "time": "12:00"}, "Choisissez le jour de la semaine."),
        ({"frequency": "monthly", "time": "12:00"}, "Sélectionnez un choix valide."),
    ],
)
def test_a_bad_schedule_is_refused_next_to_its_field_and_nothing_is_saved(client, admin, data, error):
    client.force_login(admin)
    response = client.post(reverse("connectors:schedule"), data)
    html = unescape(response.content.decode())
    assert error in html and "n'a pas été enregistrée" in html
    assert not SyncSchedule.objects.filter(enabled=True).exists()


def test_synchroniser_maintenant_starts_the_automatic_run(client, admin, jno):
    client.force_login(admin)
    response = client.post(reverse("synchro:sync_now"), follow=True)
    run = SyncRun.objects.get()
    assert (run.trigger, run.include_pull, run.user) == (SyncRun.Trigger.SYNC_NOW, True, admin)
    assert "Synchronisation lancée" in unescape(response.content.decode())
    recent = client.get(reverse("synchro:recent_runs")).content.decode()
    assert "Synchronisation manuelle" in recent and "JNO" in recent


def test_environment_seeds_the_first_connector(client, bob, db, settings):
    grant(bob, "connectors.manage_connectors")
    give_companies(bob, all_companies=True)
    settings.SAGE_FRP1000_URL = "http://sage.example:8080"
    settings.SAGE_FRP1000_API_KEY = "cle-de-l-environnement"
    client.force_login(bob)
    response = client.get(URL)
    connector = Connector.objects.get()
    assert connector.url == "http://sage.example:8080" and connector.decrypted_api_key() == "cle-de-l-environnement"
    html = response.content.decode()
    assert response.status_code == 200 and "http://sage.example:8080" in html and "Une clé est enregistrée" in html
    assert "cle-de-l-environnement" not in html
