"""« Mise à jour complète » in Chromium, with a real worker: next to « Mettre à jour les sociétés », the same progress
in the row, and what an ordinary update could not see (a change in Sage whose modification date did not move)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from companies.models import Supplier
from companies.services import company_referential_pull
from tests.conftest import give_companies, grant
from tests.support.browser import login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.slow]


def test_an_administrator_runs_a_full_update(page, worker, sage, bob, demo_companies):
    grant(bob, "companies.update_companies")
    give_companies(bob, all_companies=True)
    jno = next(c for c in demo_companies if c.code == "JNO")
    company_referential_pull(company=jno)
    items = sage.get("/companies/JNO/suppliers", params={"limit": 5000}).json()["items"]
    renamed = next(item for item in items if item["code"] == "F0001") | {"label": "Renommé sans date"}
    sage.mutate("JNO", "suppliers", raw=[renamed])
    sage.faults({"match": "GET /companies/*/suppliers", "fault": "latency", "delay": 0.8})

    login(page, "bob", "bob-password-2026")
    page.goto("/administration/societes/")
    ordinary = page.get_by_role("button", name="Mettre à jour les sociétés")
    full = page.get_by_role("button", name="Mise à jour complète")
    expect(full).to_be_visible()
    assert full.bounding_box()["x"] > ordinary.bounding_box()["x"]  # next to it, after it

    page.get_by_label("Cocher JNO", exact=True).check()
    full.click()
    status = page.locator("tr[data-company-code='JNO'] .pull-status")
    expect(page.locator("#messages")).to_contain_text("Mise à jour complète lancée pour 1 société : JNO.")
    expect(status).to_have_attribute("data-status", re.compile("queued|running"))
    screenshot(page, "societe-mise-a-jour-complete-en-cours")
    expect(status).to_have_attribute("data-status", "succeeded", timeout=60_000)
    expect(status).to_contain_text("À jour")
    expect(status).to_contain_text("Fournisseurs")
    screenshot(page, "societe-mise-a-jour-complete-a-jour")
    assert Supplier.objects.get(company=jno, code="F0001").label == "Renommé sans date"
    assert page.console_errors == []
