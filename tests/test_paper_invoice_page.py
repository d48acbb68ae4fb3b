"""A paper invoice's page: the document beside the form (pages rendered on demand, cached, scoped to the user's
companies), the badge of each field read, what the accountant's corrections teach the next invoice of the supplier,
the share accepted per supplier on « Imports ». Real files, the real database, the stub's referential, Tesseract."""

from __future__ import annotations

import os
from html import unescape
from pathlib import Path

import pytest

from companies.models import Account, Supplier
from invoices.forms import InvoiceForm, LineFormSet
from invoices.intake import intake_company
from invoices.models import Invoice, ScanFieldOutcome
from invoices.paper import paper_read
from invoices.paper_learning import learned_number
from invoices.samples.build_samples import minimal_pdf
from invoices.scan import read_document
from tests.conftest import give_companies, grant
from tests.support.intake import drop

SCANS = Path(__file__).parent / "fixtures" / "scans"
VIEW, EDIT = "invoices.view_invoices", "invoices.edit_invoices"
pytestmark = [pytest.mark.django_db, pytest.mark.tesseract]


@pytest.fixture(autouse=True)
def var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"
    return settings.VAR_DIR


@pytest.fixture
def accountant(bob, jno_ready):
    grant(bob, VIEW, EDIT)
    give_companies(bob, jno_ready)
    return bob


def read_scan(company, name="fr-demo-fa-2026-0501.jpg", data: bytes | None = None) -> Invoice:
    drop(company, name, data if data is not None else (SCANS / "fr-demo-fa-2026-0501.jpg").read_bytes())
    invoice_id = intake_company(company=company).files[0].invoice_id
    paper_read(invoice_id=invoice_id)
    return Invoice.objects.select_related("supplier", "company").get(pk=invoice_id)


def form_data(invoice: Invoice, **changes) -> dict:
    """What the page's form posts when the accountant changes nothing but ``changes``."""
    form, formset = InvoiceForm(instance=invoice), LineFormSet(instance=invoice, prefix="lines")
    data = {}
    for bound in [*form, *formset.management_form, *(field for line in formset.forms for field in line)]:
        value = bound.value()
        data[bound.html_name] = "" if value is None else str(value)
    return data | changes


def text_of(response) -> str:
    return " ".join(unescape(response.content.decode()).split())


def test_the_page_shows_the_document_beside_the_form_and_a_badge_per_field_read(client, accountant, jno_ready):
    invoice = read_scan(jno_ready)
    client.force_login(accountant)

    page = client.get(f"/factures/{invoice.pk}/")

    html = page.content.decode()
    assert 'id="document-viewer"' in html and 'data-pages="1"' in html
    assert f'src="/factures/{invoice.pk}/document/pages/1/"' in html
    assert 'data-scan-field="number"' in html and 'data-scan-field="total_ttc"' in html
    assert 'data-scan-field="supplier" data-scan-level="sure"' in html
    image = client.get(f"/factures/{invoice.pk}/document/pages/1/")
    assert image.status_code == 200 and image["Content-Type"] == "image/png"
    assert image.content.startswith(b"\x89PNG")
    assert client.get(f"/factures/{invoice.pk}/document/pages/2/").status_code == 404
    original = client.get(f"/factures/{invoice.pk}/document/")
    assert original.status_code == 200 and original["Content-Type"] == "image/jpeg"
    assert b"".join(original.streaming_content) == (SCANS / "fr-demo-fa-2026-0501.jpg").read_bytes()


def test_pages_are_rendered_once_then_served_from_the_cache(client, accountant, jno_ready, var_dir):
    drop(jno_ready, "deux.pdf", minimal_pdf(["Facture papier"]))
    invoice = Invoice.objects.get(pk=intake_company(company=jno_ready).files[0].invoice_id)
    client.force_login(accountant)

    assert 'data-pages="1"' in client.get(f"/factures/{invoice.pk}/").content.decode()  # counted before reading
    first = client.get(f"/factures/{invoice.pk}/document/pages/1/")

    cached = var_dir / "scan-pages" / f"{invoice.source_hash}-1.png"
    assert first.status_code == 200 and cached.read_bytes() == first.content
    cached.write_bytes(first.content + b"cache")
    assert client.get(f"/factures/{invoice.pk}/document/pages/1/").content.endswith(b"cache")


def test_a_user_of_another_company_gets_404_on_the_pages_and_the_document(client, charlie, jno_ready, multi):
    invoice = read_scan(jno_ready)
    grant(charlie, VIEW, EDIT)
    give_companies(charlie, multi)
    client.force_login(charlie)

    for url in (
        f"/factures/{invoice.pk}/",
        f"/factures/{invoice.pk}/document/",
        f"/factures/{invoice.pk}/document/pages/1/",
    ):
        assert client.get(url).status_code == 404


def test_an_einvoice_has_no_document_view(client, accountant, jno_ready):
    invoice = Invoice.objects.create(company=jno_ready, number="SAISIE-1")
    client.force_login(accountant)
    assert client.get(f"/factures/{invoice.pk}/document/pages/1/").status_code == 404
    assert 'id="document-viewer"' not in client.get(f"/factures/{invoice.pk}/").content.decode()


def test_a_forged_post_cannot_set_another_companys_supplier(client, accountant, jno_ready, multi_ready):
    invoice = read_scan(jno_ready)
    foreign = Supplier.objects.filter(company=multi_ready).first()
    client.force_login(accountant)

    response = client.post(f"/factures/{invoice.pk}/", form_data(invoice, supplier=str(foreign.pk)))

    # Refused as a choice the form does not offer (not a 403 or a lock: the same post with her own supplier saves).
    assert response.status_code == 200
    assert "Rien n'a été enregistré" in text_of(response)
    invoice.refresh_from_db()
    assert invoice.supplier.company_id == jno_ready.pk
    assert not ScanFieldOutcome.objects.exists()


def test_a_corrected_account_is_learned_for_the_suppliers_next_invoice(client, accountant, jno_ready):
    first = read_scan(jno_ready)
    suggested = first.lines.get().account
    chosen = Account.objects.filter(company=jno_ready, code__startswith="6", active=True).exclude(pk=suggested.pk)[0]
    client.force_login(accountant)

    client.post(
        f"/factures/{first.pk}/", form_data(first, **{"number": "FA-2026-0501B", "lines-0-account": str(chosen.pk)})
    )

    outcomes = {row.field: row for row in ScanFieldOutcome.objects.filter(invoice=first)}
    assert (outcomes["account"].ocr_value, outcomes["account"].final_value) == (suggested.code, chosen.code)
    assert outcomes["account"].corrected and outcomes["number"].corrected
    assert not outcomes["total_ttc"].corrected and not outcomes["invoice_date"].corrected
    imports = client.get("/factures/imports/").content.decode()
    accepted = sum(not row.corrected for row in outcomes.values())
    assert f'<tr data-supplier="{first.supplier.code}">' in imports
    assert f"{round(100 * accepted / len(outcomes))} % ({accepted}/{len(outcomes)})" in imports

    second = read_scan(jno_ready, "le-suivant.jpg", (SCANS / "fr-demo-fa-2026-0501.jpg").read_bytes() + b"\x00")
    assert second.number == "FA-2026-0501"
    assert second.lines.get().account == chosen
    assert second.scan["fields"]["account"]["how"] == "learned"


def test_the_numbers_place_is_learned_from_a_correction(client, accountant, jno_ready):
    invoice = read_scan(jno_ready)
    word = next(w for w in invoice.scan["words"] if w[1].isdigit() and len(w[1]) == 9)  # the SIREN, say
    client.force_login(accountant)

    client.post(f"/factures/{invoice.pk}/", form_data(invoice, number=word[1]))

    outcome = ScanFieldOutcome.objects.get(invoice=invoice, field="number")
    assert outcome.corrected and outcome.page == 1 and outcome.box == word[2:6]
    document = read_document((SCANS / "fr-demo-fa-2026-0501.jpg").read_bytes())
    found = learned_number(invoice.supplier, document)
    assert (found.value, found.confidence, found.source.how) == (word[1], 0.9, "layout")


def test_an_invoice_being_read_cannot_be_edited_until_its_reading_ends(client, accountant, jno_ready):
    """The reading pre-fills every field when it ends: a save in between would be overwritten, so it is refused
    (nothing saved, the reason at the top), and the form opens once the reading is done."""
    drop(jno_ready, "fr-demo-fa-2026-0501.jpg", (SCANS / "fr-demo-fa-2026-0501.jpg").read_bytes())
    invoice_id = intake_company(company=jno_ready).files[0].invoice_id
    invoice = Invoice.objects.get(pk=invoice_id)
    assert invoice.scan_state == "reading"
    client.force_login(accountant)

    response = client.post(f"/factures/{invoice.pk}/", form_data(invoice, number="TAPE-PENDANT-LECTURE"), follow=True)

    assert response.status_code == 200
    assert "Lecture du document en cours" in text_of(response)
    invoice.refresh_from_db()
    assert invoice.number != "TAPE-PENDANT-LECTURE"
    paper_read(invoice_id=invoice.pk)
    invoice.refresh_from_db()
    assert invoice.scan_state == "read" and invoice.number == "FA-2026-0501"
    client.post(f"/factures/{invoice.pk}/", form_data(invoice, number="FA-2026-0501-B"))
    invoice.refresh_from_db()
    assert invoice.number == "FA-2026-0501-B"


def test_the_page_cache_prunes_pages_unused_for_a_month_and_keeps_what_is_shown(client, accountant, jno_ready, var_dir):
    drop(jno_ready, "deux.pdf", minimal_pdf(["Facture papier"]))
    invoice = Invoice.objects.get(pk=intake_company(company=jno_ready).files[0].invoice_id)
    client.force_login(accountant)
    folder = var_dir / "scan-pages"
    folder.mkdir(parents=True)
    # The file system's clock, which dates the pages (the suite may run under a frozen Python clock).
    (probe := var_dir / "probe").write_bytes(b"")
    month_ago = probe.stat().st_mtime - 31 * 86400
    forgotten, shown = folder / "forgotten-1.png", folder / f"{invoice.source_hash}-1.png"
    for page in (forgotten, shown):
        page.write_bytes(b"old page")
        os.utime(page, (month_ago, month_ago))

    # A hit serves the cached page and renews it; nothing was drawn, so nothing is pruned yet.
    assert client.get(f"/factures/{invoice.pk}/document/pages/1/").content == b"old page"
    assert shown.stat().st_mtime > month_ago + 86400 and forgotten.exists()

    # Drawing a new page prunes what nobody asked for in a month, and only that.
    shown.unlink()
    assert client.get(f"/factures/{invoice.pk}/document/pages/1/").content.startswith(b"\x89PNG")
    assert not forgotten.exists() and shown.exists()

    # At most once an hour: a page forgotten since is left for the next pass.
    forgotten.write_bytes(b"old page")
    os.utime(forgotten, (month_ago, month_ago))
    shown.unlink()
    assert client.get(f"/factures/{invoice.pk}/document/pages/1/").status_code == 200
    assert forgotten.exists()
