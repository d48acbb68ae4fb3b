"""« Imports » in Chromium (issue 15 §1): an accountant of JNO and MULTI finds what became of the files dropped in
JNO's scan folder, follows « Importer », sees the badge of a file refused while she was elsewhere, downloads a file,
and, once « Mettre à jour les sociétés » has brought what was missing, « Réessayer » turns a refused file into an
invoice. A real worker reads the folders and pulls the referential."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from companies.services import company_referential_pull
from invoices.models import IntakeFile
from invoices.samples import samples_for_company
from invoices.samples.build_samples import MULTI_F0001, _date, cii_xml, invoice_data
from invoices.tasks import intake_all_companies
from tests.conftest import give_companies, grant
from tests.support.browser import login, screenshot
from tests.support.intake import drop
from tests.support.polling import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.slow]


def jno_sample(name: str) -> bytes:
    return next(path for path in samples_for_company("JNO") if path.name == name).read_bytes()


def test_an_accountant_finds_her_files_imports_them_and_retries_a_refused_one(
    page, sage, bob, jno, multi, scan_root, start_worker
):
    company_referential_pull(company=jno)
    # MULTI exists in SFD but was never updated: SFD does not know its SIREN yet.
    assert multi.siren == ""
    bob.groups.add(Group.objects.get(name="Comptable"))
    grant(bob, "companies.update_companies")
    give_companies(bob, jno, multi)
    start_worker(extra_env={"SCAN_ROOT": str(scan_root)})

    usd = jno_sample("INV-US-2026-118.xml")  # a supplier of JNO, in dollars
    drop(jno, "INV-US-2026-118.xml", usd)
    drop(jno, "FA-2026-0610.pdf", jno_sample("FA-2026-0610.pdf"))  # Transports Martin: in no referential
    siren = next(item["siren"] for item in sage.get("/companies").json()["items"] if item["code"] == "MULTI")
    for_multi = invoice_data(
        number="FA-2026-1299", seller=MULTI_F0001, issue_date=_date(20), due_date=_date(20, 12),
        buyer={"name": "MULTI", "country_code": "FR", "legal_identifier": siren, "legal_identifier_schemeid": "0002"},
        lines=[("Déplacement à Bordeaux", "200.00", "20.00")],
    )  # fmt: skip
    drop(jno, "pour-multi.xml", cii_xml(for_multi))

    login(page, "bob", "bob-password-2026")
    imports_link = page.locator("#main-nav").get_by_role("link", name=re.compile("^Imports"))
    expect(imports_link).to_have_text("Imports")  # no badge: nothing refused yet
    imports_link.click()
    expect(page.get_by_role("heading", name="Imports", exact=True)).to_be_visible()
    expect(page.locator("#imports-rows")).to_contain_text("Aucun fichier ne correspond.")

    # « Importer »: the progress shows without reloading, then the list comes by itself.
    page.get_by_role("button", name="Importer").click()
    expect(page.locator("#messages")).to_contain_text("Import lancé pour 2 répertoires de scan")
    progress = page.locator("#imports-progress")
    expect(progress).to_be_visible()
    screenshot(page, "imports-importer")
    expect(progress).to_have_attribute("data-finished", "1", timeout=60_000)
    expect(progress.locator("li[data-company='JNO']")).to_contain_text(
        "terminé — 3 fichiers traités : 2 factures créées · 1 fichier refusé"
    )
    rows = page.locator("#imports-table tbody tr")
    expect(rows).to_have_count(3, timeout=15_000)
    refused = page.locator("tr[data-outcome='refused']", has_text="pour-multi.xml")
    expect(refused).to_contain_text("Refusée")
    expect(refused).to_contain_text(f"Adressée à SIREN {siren} (MULTI), qui n'est aucune société du groupe : refusée.")
    dollars = rows.filter(has_text="INV-US-2026-118.xml")
    expect(dollars).to_contain_text("Facture créée")
    expect(dollars).to_contain_text("Facture en USD : saisissez le cours (1 USD = … EUR).")
    expect(dollars.get_by_role("link", name="Facture N° INV-US-2026-118")).to_be_visible()
    unknown = rows.filter(has_text="FA-2026-0610.pdf")
    expect(unknown).to_contain_text("Facture créée")
    expect(unknown).to_contain_text("Fournisseur inconnu : SIREN 612345678 (Transports Martin SARL).")
    screenshot(page, "imports-liste")

    # The file as it was dropped.
    with page.expect_download() as download:
        dollars.get_by_role("link", name=re.compile("INV-US-2026-118.xml")).click()
    assert download.value.suggested_filename == "INV-US-2026-118.xml"
    assert download.value.path().read_bytes() == usd

    # The link leads to the invoice, à compléter with its currency.
    dollars.get_by_role("link", name="Facture N° INV-US-2026-118").click()
    expect(page.get_by_text("INV-US-2026-118").first).to_be_visible()

    # While she is on « Factures », the periodic intake refuses a file cut short: the menu counts it.
    drop(jno, "coupée.xml", cii_xml(for_multi)[:-60])
    intake_all_companies.delay()
    wait_for(lambda: IntakeFile.objects.filter(name="coupée.xml", outcome="refused").exists(), message="the intake")
    page.locator("#main-nav").get_by_role("link", name="Factures", exact=True).click()
    badge = page.locator("#imports-badge .badge")
    expect(badge).to_have_text(re.compile("^1"))
    expect(badge).to_have_attribute("title", re.compile("fichier refusé non vu"))
    screenshot(page, "imports-badge")
    imports_link.click()
    new = page.locator("tr[data-new]")
    expect(new).to_have_count(1)
    expect(new).to_contain_text("coupée.xml")
    expect(new).to_contain_text("nouveau")
    expect(page.locator("#imports-badge .badge")).to_have_count(0)

    # « Réessayer » before anything changed: refused again, and said so.
    refused.get_by_role("button", name="Réessayer").click()
    expect(page.locator("#messages")).to_contain_text("« pour-multi.xml » refusé à nouveau")

    # « Mettre à jour les sociétés » brings MULTI's SIREN…
    page.locator("#menu-administration").click()
    page.locator(".dropdown-menu").get_by_role("link", name="Société", exact=True).click()
    page.get_by_label("Cocher MULTI", exact=True).check()
    page.get_by_role("button", name="Mettre à jour les sociétés").click()
    expect(page.locator("tr[data-company-code='MULTI'] .pull-status")).to_have_attribute(
        "data-status", "succeeded", timeout=60_000
    )

    # … and « Réessayer » turns the refused file into MULTI's invoice.
    page.locator("#main-nav").get_by_role("link", name=re.compile("^Imports")).click()
    refused.get_by_role("button", name="Réessayer").click()
    expect(page.locator("#messages")).to_contain_text(
        "« pour-multi.xml » importé : facture N° FA-2026-1299 créée dans MULTI"
    )
    retried = page.locator("#imports-table tbody tr", has_text="pour-multi.xml")
    expect(retried).to_contain_text("Facture créée")
    expect(retried).to_contain_text("routée depuis JNO")
    expect(retried.get_by_role("link", name="Facture N° FA-2026-1299")).to_be_visible()
    expect(retried.get_by_role("button", name="Réessayer")).to_have_count(0)
    screenshot(page, "imports-reessayer")

    # The « Tableau de bord » counts, per company, the files its folder refused, and leads to them.
    page.get_by_role("link", name="SFD Synchro").click()
    refused_files = page.locator("#dashboard-companies tr[data-company='JNO'] [data-refused-files]")
    expect(refused_files).to_contain_text("aucun non vu")
    expect(refused_files).to_contain_text("1 sur 30 jours")
    screenshot(page, "imports-tableau-de-bord")
    refused_files.get_by_role("link", name="1 sur 30 jours").click()
    expect(page.locator("#imports-table tbody tr")).to_have_count(1)
    expect(page.locator("#imports-table tbody tr")).to_contain_text("coupée.xml")
    assert page.console_errors == []
