"""« Administration → Droits » in Chromium: a right granted shows in the user's menu; removed, the page is 403; a
manager limited to some companies sees only them and cannot tick what acts on every company."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from tests.conftest import give_companies, grant, make_company
from tests.support.browser import login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RIGHT_LABEL = "Visuel Synchronisations — charlie"


def test_an_administrator_grants_then_removes_visuel_synchronisations(chromium, live_server, bob, charlie, connector):
    bob.groups.add(Group.objects.get(name="Administrateur"))
    give_companies(bob, all_companies=True)
    give_companies(charlie, all_companies=True)

    def new_page():
        context = chromium.new_context(
            base_url=live_server.url, locale="fr-FR", viewport={"width": 1400, "height": 900}
        )
        context.set_default_timeout(15_000)
        return context.new_page()

    admin = new_page()
    login(admin, "bob", "bob-password-2026")
    admin.goto("/administration/droits/")
    admin.get_by_label(RIGHT_LABEL).check()
    admin.get_by_role("button", name="Enregistrer").click()
    expect(admin.locator("#messages")).to_contain_text("Droits enregistrés")
    expect(admin.get_by_text("charlie — droits ajoutés : Visuel Synchronisations")).to_be_visible()
    screenshot(admin, "droits-accorde")

    user = new_page()
    login(user, "charlie", "charlie-password-2026")
    user.locator("#menu-administration").click()
    menu_entry = user.locator(".dropdown-menu").get_by_role("link", name="Visuel Synchronisations", exact=True)
    expect(menu_entry).to_be_visible()
    expect(user.locator(".dropdown-menu").get_by_role("link", name="Droits", exact=True)).to_have_count(0)
    menu_entry.click()
    expect(user.get_by_role("heading", name="Visuel Synchronisations")).to_be_visible()

    admin.goto("/administration/droits/?q=charlie")
    admin.get_by_label(RIGHT_LABEL).uncheck()
    admin.get_by_role("button", name="Enregistrer").click()
    expect(admin.locator("#messages")).to_contain_text("Droits enregistrés")

    response = user.goto("/administration/synchronisations/")
    assert response.status == 403
    expect(user.get_by_role("heading", name="Accès refusé")).to_be_visible()
    expect(user.locator("#menu-administration")).to_have_count(0)
    screenshot(user, "droits-retire-403")


def test_a_manager_limited_to_jno_sees_and_changes_only_jno(page, bob, charlie, connector):
    jno, multi = make_company(connector, "JNO", "Société JNO"), make_company(connector, "MULTI", "Multi")
    grant(bob, "accounts.manage_rights", "synchro.view_synchronisations")
    give_companies(bob, jno)
    give_companies(charlie, jno)
    dave = get_user_model().objects.create_user("dave", "dave@example.com", "dave-password-2026")
    give_companies(dave, jno, multi)

    login(page, "bob", "bob-password-2026")
    page.locator("#menu-administration").click()
    page.locator(".dropdown-menu").get_by_role("link", name="Droits", exact=True).click()
    expect(page.locator("#limited-manager")).to_contain_text("Vous voyez une partie des sociétés")
    expect(page.locator("main")).not_to_contain_text("Multi")

    charlie_row = page.locator('tr[data-username="charlie"]')
    expect(charlie_row.get_by_label("Toutes les sociétés")).to_be_disabled()
    expect(charlie_row.get_by_label("Donner le bon à payer — charlie")).to_be_disabled()
    expect(charlie_row.get_by_label("Comptable")).to_be_disabled()
    dave_row = page.locator('tr[data-username="dave"]')
    expect(dave_row).to_contain_text("Voit des sociétés que vous ne voyez pas")
    expect(dave_row.get_by_label("Visuel Synchronisations — dave")).to_be_disabled()
    expect(page.locator("#groups-locked")).to_be_visible()

    charlie_row.get_by_label("Visuel Synchronisations — charlie").check()
    screenshot(page, "droits-gestionnaire-limite")
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.locator("#messages")).to_contain_text("Droits enregistrés : 1 modification.")
    expect(page.get_by_text("charlie — droits ajoutés : Visuel Synchronisations")).to_be_visible()
    assert get_user_model().objects.get(pk=charlie.pk).has_perm("synchro.view_synchronisations")
    assert not page.console_errors
