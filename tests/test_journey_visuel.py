"""The manual's second journey and the anomaly journey, in Chromium, with a real worker and the stub.

An accountant opens Visuel Synchronisations, « Tout cocher », « Exporter », sees integrated rows with their
Sage piece numbers and a red triangle, opens it, follows « Corriger », fixes the invoice in SFD, comes back,
exports it again and sees it integrated.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from companies.services import company_referential_pull
from invoices.models import Invoice
from tests.conftest import give_companies
from tests.support.browser import login, screenshot
from tests.support.invoices import make_invoice

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.slow]


def test_an_accountant_exports_fixes_an_anomaly_and_exports_again(page, worker, sage, bob, jno):
    bob.groups.add(Group.objects.get(name="Comptable"))
    give_companies(bob, all_companies=True)
    company_referential_pull(company=jno)
    make_invoice(jno, number="FA-1001", validate=True)
    make_invoice(jno, number="FA-1002", supplier="F0002", validate=True)
    broken = make_invoice(jno, number="FA-1003", lines=[("Divers", "80.00", "606800", "T20")], validate=True)

    login(page, "bob", "bob-password-2026")
    page.locator("#menu-administration").click()
    page.locator(".dropdown-menu").get_by_role("link", name="Visuel Synchronisations", exact=True).click()
    expect(page.get_by_role("heading", name="Visuel Synchronisations")).to_be_visible()
    expect(page.locator("#visuel-rows tbody tr")).to_have_count(3)

    page.get_by_label(re.compile("Tout cocher")).check()
    page.get_by_role("button", name="Exporter").click()
    expect(page.locator("#run-progress")).to_have_attribute("data-finished", "1", timeout=60_000)
    expect(page.locator("#run-progress")).to_contain_text("2 écritures intégrées")
    rows = page.locator("#visuel-rows")
    expect(rows.locator("tr[data-number='FA-1001']")).to_contain_text(re.compile(r"ACH2026\d{6}"))
    expect(rows.locator("tr[data-number='FA-1002']")).to_contain_text("Intégrée")
    broken_row = rows.locator("tr[data-number='FA-1003']")
    expect(broken_row).to_have_attribute("data-state", "rejected")
    screenshot(page, "visuel-apres-export")

    broken_row.get_by_label("Anomalie sur FA-1003").click()
    modal = page.locator("#anomaly-modal")
    expect(modal).to_be_visible()
    expect(modal).to_contain_text("ACCOUNT_INACTIVE")
    expect(modal).to_contain_text("choisissez un compte actif sur la ligne de la facture")
    screenshot(page, "visuel-anomalie")
    modal.get_by_role("link", name="Corriger").click()

    expect(page.get_by_role("heading", name=re.compile("FA-1003"))).to_be_visible()
    expect(page.locator("#open-anomalies")).to_contain_text("ACCOUNT_INACTIVE")
    page.locator("select[name='lines-0-account']").select_option(label="606400 – Fournitures administratives")
    page.get_by_role("button", name="Enregistrer et valider").click()
    expect(page.locator("#messages")).to_contain_text("Facture enregistrée et validée")
    expect(page.locator("#open-anomalies")).to_have_count(0)
    screenshot(page, "facture-corrigee")

    page.goto("/administration/synchronisations/")
    fixed_row = page.locator("#visuel-rows tr[data-number='FA-1003']")
    expect(fixed_row).to_have_attribute("data-state", "to_export")
    fixed_row.get_by_label("Cocher FA-1003").check()
    page.get_by_role("button", name="Exporter").click()
    expect(page.locator("#run-progress")).to_have_attribute("data-finished", "1", timeout=60_000)
    expect(page.locator("#visuel-rows tr[data-number='FA-1003']")).to_have_attribute("data-state", "done")
    screenshot(page, "visuel-corrigee-integree")

    broken.refresh_from_db()
    assert broken.status == Invoice.Status.INTEGRATED and broken.accounting_version == 2
    assert [e["external_id"] for e in sage.entries("JNO") if e["piece_reference"] == "FA-1003"] == [
        f"SFD-{broken.pk}-V2"
    ]
    assert page.console_errors == []
