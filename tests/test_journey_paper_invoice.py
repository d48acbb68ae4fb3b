"""A paper invoice, in Chromium (issue 18): a scanned invoice dropped in JNO's scan folder is imported by a real
worker (« Importer »), read by OCR in the worker, and appears in « Factures » *à compléter* with its fields
pre-filled and its page beside the form; the accountant corrects the account, validates, exports from « Visuel
Synchronisations », and the entry is integrated in the Sage FRP 1000 stub (asserted through its HTTP API)."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from companies.services import company_referential_pull
from invoices.models import Invoice, ScanFieldOutcome
from tests.conftest import give_companies
from tests.support.browser import login, screenshot
from tests.support.intake import drop
from tests.support.polling import wait_for

SCANS = Path(__file__).parent / "fixtures" / "scans"
pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.slow, pytest.mark.tesseract]


def test_a_scanned_invoice_is_read_prefilled_corrected_validated_and_integrated(
    page, sage, bob, jno, scan_root, start_worker, settings, tmp_path
):
    company_referential_pull(company=jno)
    bob.groups.add(Group.objects.get(name="Comptable"))
    give_companies(bob, jno)
    settings.VAR_DIR = tmp_path / "var"
    start_worker(extra_env={"SCAN_ROOT": str(scan_root)})
    drop(jno, "scan-fournitures.jpg", (SCANS / "fr-demo-fa-2026-0501.jpg").read_bytes())

    login(page, "bob", "bob-password-2026")
    page.locator("#main-nav").get_by_role("link", name="Factures", exact=True).click()
    page.get_by_role("button", name="Importer").click()
    expect(page.locator("#messages")).to_contain_text("Import lancé pour 1 répertoire de scan")
    wait_for(
        lambda: Invoice.objects.filter(company=jno, scan_state="read").exists(), timeout=120, message="the reading"
    )
    page.reload()
    row = page.locator("tbody tr", has_text="FA-2026-0501")
    expect(row).to_contain_text("F0001 – Fournitures Petit SAS")
    expect(row).to_contain_text("À compléter")
    expect(row).to_contain_text("300,00")
    row.get_by_role("link", name="FA-2026-0501").click()

    # The page beside the form, its fields pre-filled, each with its badge.
    viewer = page.locator("#document-viewer")
    expect(viewer).to_be_visible()
    expect(viewer.locator("[data-viewer-position]")).to_have_text("Page 1 / 1")
    image = viewer.locator("img[data-viewer-image]")
    expect(image).to_have_attribute("src", re.compile("/document/pages/1/$"))
    wait_for(lambda: image.evaluate("(img) => img.complete && img.naturalWidth") > 500, message="the page's image")
    expect(page.locator("#id_number")).to_have_value("FA-2026-0501")
    expect(page.locator("#id_invoice_date")).to_have_value("2026-11-02")
    expect(page.locator("#id_total_ttc")).to_have_value("300.00")
    expect(page.locator("#id_supplier option:checked")).to_have_text("F0001 – Fournitures Petit SAS")
    expect(page.locator("[data-scan-field='number']")).to_be_visible()
    expect(page.locator("#scan-reasons")).to_contain_text("Champs lus à vérifier")
    expect(page.locator("[data-scan-field='supplier']")).to_have_attribute("data-scan-level", "sure")
    viewer.get_by_role("button", name="Agrandir").click()
    expect(viewer.locator("[data-viewer-zoom-level]")).to_have_text("125 %")
    screenshot(page, "facture-papier-lue")

    # She corrects the account the referential suggested, and validates.
    account = page.locator("select[name='lines-0-account']")
    expect(account.locator("option:checked")).to_have_text("602200 – Fournitures consommables")
    account.select_option(label="606300 – Fournitures d'entretien et de petit équipement")
    page.get_by_role("button", name="Enregistrer et valider").click()
    expect(page.locator("#messages")).to_contain_text("Facture enregistrée et validée")
    screenshot(page, "facture-papier-validee")
    invoice = Invoice.objects.get(company=jno, number="FA-2026-0501")
    assert ScanFieldOutcome.objects.get(invoice=invoice, field="account").final_value == "606300"

    # « Exporter » from Visuel Synchronisations: integrated in Sage.
    page.goto("/administration/synchronisations/")
    visuel_row = page.locator("#visuel-rows tr[data-number='FA-2026-0501']")
    visuel_row.get_by_label("Cocher FA-2026-0501").check()
    page.get_by_role("button", name="Exporter").click()
    expect(page.locator("#run-progress")).to_have_attribute("data-finished", "1", timeout=60_000)
    expect(visuel_row).to_have_attribute("data-state", "done")
    screenshot(page, "facture-papier-integree")

    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.INTEGRATED
    entries = [entry for entry in sage.entries("JNO") if entry["piece_reference"] == "FA-2026-0501"]
    assert [entry["external_id"] for entry in entries] == [invoice.external_id]
    booked = entries[0]
    assert booked["supplier"] == "F0001"
    lines = booked["entry"]["lines"]
    assert "606300" in {line["account"] for line in lines}
    assert sum(Decimal(line["debit"]) for line in lines) == Decimal("300.00")
    assert page.console_errors == []
