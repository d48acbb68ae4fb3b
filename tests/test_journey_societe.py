"""The manual's first journey in Chromium: Administration → Société, tick JNO and MULTI, update, watch."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from companies.models import Company
from tests.conftest import give_companies, grant
from tests.support.browser import login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.slow]


def test_an_administrator_updates_two_companies(page, worker, sage, bob, demo_companies):
    grant(bob, "companies.update_companies")
    give_companies(bob, all_companies=True)
    # Slow Sage down a little so that the progress is there to be seen.
    sage.faults({"match": "GET /companies/*/suppliers", "fault": "latency", "delay": 0.8})

    login(page, "bob", "bob-password-2026")
    page.locator("#menu-administration").click()
    page.locator(".dropdown-menu").get_by_role("link", name="Société", exact=True).click()
    expect(page.get_by_role("heading", name="Société")).to_be_visible()
    rows = page.locator("#company-table tbody tr")
    expect(rows).to_have_count(10)
    for header in ("Société", "Code de la société", "Répertoire de scan", "Actions"):
        expect(page.get_by_role("columnheader", name=header, exact=True)).to_be_visible()

    page.get_by_label("Cocher JNO", exact=True).check()
    page.get_by_label("Cocher MULTI", exact=True).check()
    page.get_by_role("button", name="Mettre à jour les sociétés").click()

    jno_status = page.locator("tr[data-company-code='JNO'] .pull-status")
    multi_status = page.locator("tr[data-company-code='MULTI'] .pull-status")
    expect(page.locator("#messages")).to_contain_text("Mise à jour lancée pour 2 sociétés")
    expect(jno_status).to_have_attribute("data-status", re.compile("queued|running"))
    screenshot(page, "societe-en-cours")

    for status in (jno_status, multi_status):
        expect(status).to_have_attribute("data-status", "succeeded", timeout=60_000)
        expect(status).to_contain_text("À jour")
        expect(status).to_contain_text("Fournisseurs")
        expect(status).to_contain_text("créés")
    expect(page.locator("tr[data-company-code='AKAO'] .pull-status")).to_contain_text("Jamais mise à jour")
    screenshot(page, "societe-a-jour")
    assert set(Company.objects.filter(code__in=["JNO", "MULTI"]).values_list("pull_status", flat=True)) == {"succeeded"}
    assert page.console_errors == []
