"""The manual's third journey in Chromium: Paramétrage des connecteurs → SYNCHRONISATION → Enregistrer."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from connectors.models import SyncSchedule
from tests.conftest import give_companies
from tests.support.browser import login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


# A day of December on purpose: « décembre » is what an ASCII-only pattern (JavaScript's \w) never matched. The clock
# ticks from there, so the browser's waits and the server's sessions behave as on any day.
TODAY = dt.datetime(2026, 12, 1, 10, 0, tzinfo=ZoneInfo("Europe/Paris"))


@time_machine.travel(TODAY, tick=True)
def test_an_administrator_schedules_the_synchronisation_and_tests_the_connection(page, bob, connector, sage):
    bob.groups.add(Group.objects.get(name="Administrateur"))
    give_companies(bob, all_companies=True)
    login(page, "bob", "bob-password-2026")
    page.locator("#menu-administration").click()
    page.locator(".dropdown-menu").get_by_role("link", name="Paramétrage des connecteurs", exact=True).click()
    page.wait_for_url("**/administration/connecteurs/")  # the open menu also holds « … Synchronisations » links

    page.get_by_role("link", name="SYNCHRONISATION", exact=True).click()
    page.get_by_label("Je souhaite synchroniser mes connecteurs").select_option(label="CHAQUE SEMAINE")
    expect(page.get_by_label("Jour")).to_be_visible()
    page.get_by_label("Jour").select_option(label="lundi")
    page.get_by_label("à", exact=True).fill("12:00")
    expect(page.locator("#schedule-state")).to_have_text("Synchronisation automatique désactivée")
    # The manual's « Enregistrer », and nothing else to tick: saving a frequency and a time is scheduling.
    page.get_by_role("button", name="Enregistrer").click()

    expect(page.locator("#messages")).to_contain_text("Synchronisation automatique enregistrée et activée")
    expect(page.locator("#schedule-state")).to_have_text("Synchronisation automatique activée")
    expect(page.locator("#next-run")).to_contain_text("Prochaine synchronisation : lundi 7 décembre 2026 à 12:00")
    expect(page.locator("#recent-runs")).to_be_visible()
    screenshot(page, "connecteurs-synchronisation")
    schedule = SyncSchedule.objects.get()
    assert (schedule.frequency, schedule.weekday, schedule.time.strftime("%H:%M"), schedule.enabled) == (
        "weekly", 0, "12:00", True,
    )  # fmt: skip

    page.get_by_role("button", name="Désactiver la synchronisation automatique").click()
    expect(page.locator("#messages")).to_contain_text("Synchronisation automatique désactivée : aucune")
    expect(page.locator("#schedule-state")).to_have_text("Synchronisation automatique désactivée")
    expect(page.locator("#next-run")).to_contain_text("Réglage enregistré : CHAQUE SEMAINE (lundi) à 12:00")
    screenshot(page, "connecteurs-synchronisation-desactivee")
    assert not SyncSchedule.objects.get().enabled
    page.get_by_role("button", name="Activer", exact=True).click()
    expect(page.locator("#schedule-state")).to_have_text("Synchronisation automatique activée")
    expect(page.locator("#next-run")).to_contain_text("Prochaine synchronisation : lundi 7 décembre 2026 à 12:00")

    page.get_by_role("link", name="CONNEXION", exact=True).click()
    expect(page.locator("body")).not_to_contain_text(sage.api_key)
    page.get_by_role("button", name="Tester la connexion").click()
    expect(page.locator("#messages")).to_contain_text("Connexion réussie : Sage FRP 1000 (simulateur SFD)")
    screenshot(page, "connecteurs-connexion")
    assert page.console_errors == []
