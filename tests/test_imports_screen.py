"""« Imports » (issue 15 §1): every file that reached a scan folder, its outcome, the file itself, « Réessayer ».

Real files in a real scan root, the real intake, the Sage stub over HTTP for the referential.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from html import unescape
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

from companies.models import Company
from invoices.intake import Outcome, intake_company
from invoices.models import IntakeFile, Invoice
from invoices.samples.build_samples import cii_xml
from tests.conftest import give_companies, grant
from tests.support.intake import an_invoice, drop, folder_of

IMPORTS = reverse("invoices:imports")
PARIS = ZoneInfo("Europe/Paris")
VIEW, EDIT = "invoices.view_invoices", "invoices.edit_invoices"


@pytest.fixture
def accountant(bob, jno_ready):
    grant(bob, VIEW, EDIT)
    give_companies(bob, jno_ready)
    return bob


def text_of(response) -> str:
    return " ".join(unescape(response.content.decode()).split())


def row_of(html: str, record: IntakeFile) -> str:
    start = html.index(f'<tr data-file="{record.pk}"')
    return html[start : html.index("</tr>", start)]


def listed(response) -> list[int]:
    return [row.file.pk for row in response.context["rows"]]


def drop_the_usual(company: Company) -> None:
    """A good invoice, the same file again, a text file a person dropped, a hidden file of a scanner."""
    content = cii_xml(an_invoice(company, number="FA-100"))
    drop(company, "facture.xml", content)
    drop(company, "zz-copie.xml", content)
    drop(company, "lisez-moi.txt", b"Les factures de novembre")
    drop(company, ".DS_Store", b"\x00\x00\x00\x01Bud1")


# --- the list -----------------------------------------------------------------------------------------------


def test_it_shows_every_file_with_its_outcome_and_its_invoice(client, accountant, jno_ready):
    drop_the_usual(jno_ready)
    intake_company(company=jno_ready)
    invoice = Invoice.objects.get()
    files = {record.name: record for record in IntakeFile.objects.all()}
    client.force_login(accountant)
    html = text_of(client.get(IMPORTS))

    created = row_of(html, files["facture.xml"])
    assert "Facture créée" in created and "Facture N° FA-100" in created
    assert f'href="/factures/{invoice.pk}/"' in created
    duplicate = row_of(html, files["zz-copie.xml"])
    assert "Déjà reçue" in duplicate and f'href="/factures/{invoice.pk}/"' in duplicate
    assert "de la facture" in duplicate and "même fichier" in duplicate
    refused = row_of(html, files["lisez-moi.txt"])
    assert "Refusée" in refused
    assert "Format non reconnu pour « lisez-moi.txt » : ni PDF Factur-X, ni XML UBL ou CII." in refused
    ignored = row_of(html, files[".DS_Store"])
    assert "Ignorée" in ignored and "Fichier caché (nom commençant par « . »)" in ignored
    # Each outcome says itself in words, with an icon: never by its colour alone.
    for row, words in ((created, "Facture créée"), (refused, "Refusée"), (ignored, "Ignorée")):
        assert re.search(r'<span class="badge [^"]+"><i class="bi [^"]+" aria-hidden="true"></i> ' + words, row)
    for record in files.values():
        assert f'href="/factures/imports/{record.pk}/fichier/"' in row_of(html, record)
    assert "4 fichiers" in html


def test_a_pending_file_says_why_it_waits(client, accountant, jno_ready):
    record = IntakeFile.objects.create(
        company=jno_ready, name="scan.pdf", name_bytes=b"scan.pdf", path=f"{jno_ready.scan_directory}/scan.pdf",
        received_at=dt.datetime(2026, 12, 1, 9, tzinfo=PARIS), outcome=Outcome.PENDING,
        reason="Import interrompu (disque plein) : le fichier sera relu au prochain passage.",
    )  # fmt: skip
    client.force_login(accountant)
    row = row_of(text_of(client.get(IMPORTS)), record)
    assert "En attente" in row and "le fichier sera relu au prochain passage" in row
    assert "Réessayer" not in row


def test_the_newest_first_with_the_time_in_paris(client, accountant, jno_ready):
    # 23:30 in Paris on the 1st of December is 22:30 UTC: the day and the hour are Paris's.
    with time_machine.travel(dt.datetime(2026, 12, 1, 22, 30, tzinfo=dt.UTC), tick=False):
        drop(jno_ready, "premier.xml", cii_xml(an_invoice(jno_ready, number="FA-1")))
        intake_company(company=jno_ready)
    with time_machine.travel(dt.datetime(2026, 12, 2, 8, 15, tzinfo=dt.UTC), tick=False):
        drop(jno_ready, "second.xml", cii_xml(an_invoice(jno_ready, number="FA-2")))
        intake_company(company=jno_ready)
    client.force_login(accountant)
    response = client.get(IMPORTS)
    first, second = IntakeFile.objects.get(name="premier.xml"), IntakeFile.objects.get(name="second.xml")
    assert listed(response) == [second.pk, first.pk]
    html = text_of(response)
    assert "01/12/2026 23:30" in row_of(html, first) and "02/12/2026 09:15" in row_of(html, second)


def test_a_name_that_is_not_utf8_is_shown_readably(client, accountant, jno_ready):
    raw = os.fsencode(folder_of(jno_ready)) + b"/facture-\xe9t\xe9.xml"  # Latin-1 « été », as an old scanner writes
    folder_of(jno_ready).mkdir(parents=True, exist_ok=True)
    with open(raw, "wb") as stream:
        stream.write(cii_xml(an_invoice(jno_ready, number="FA-ETE")))
    stamp = time.time() - 60
    os.utime(raw, (stamp, stamp))
    intake_company(company=jno_ready)
    record = IntakeFile.objects.get()
    client.force_login(accountant)
    row = row_of(text_of(client.get(IMPORTS)), record)
    assert "facture-été.xml" in row and "\ufffd" not in row
    assert "nom de fichier non UTF-8, lu en Windows-1252" in row


def test_without_the_right_it_is_refused_and_not_in_the_menu(client, charlie, accountant, jno_ready):
    client.force_login(charlie)
    assert client.get(IMPORTS).status_code == 403
    assert 'href="/factures/imports/"' not in client.get(reverse("home")).content.decode()
    client.force_login(accountant)
    menu = client.get(reverse("home")).content.decode()
    assert '<a class="nav-link" href="/factures/imports/">Imports' in menu
    page = client.get(IMPORTS).content.decode()
    assert '<a class="nav-link active" href="/factures/imports/">Imports' in page


def test_a_reader_sees_the_files_but_neither_importer_nor_reessayer(client, bob, jno_ready):
    grant(bob, VIEW)
    give_companies(bob, jno_ready)
    drop(jno_ready, "lisez-moi.txt", b"rien")
    intake_company(company=jno_ready)
    client.force_login(bob)
    html = client.get(IMPORTS).content.decode()
    assert "lisez-moi.txt" in html
    assert "Réessayer" not in html and reverse("invoices:imports_scan") not in html
