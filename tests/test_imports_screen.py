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
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from companies.models import Company
from companies.services import company_referential_pull
from invoices.intake import ERRORS_DIR, PROCESSED_DIR, Outcome, intake_company
from invoices.models import IntakeFile, Invoice
from invoices.samples.build_samples import cii_xml, facturx_pdf
from tests.conftest import give_companies, grant
from tests.support.intake import an_invoice, drop, drop_the_usual, folder_of, left_in

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
    home = client.get(reverse("home"))
    assert home.status_code == 200 and "Tableau de bord</h1>" in home.content.decode()
    assert 'href="/factures/imports/"' not in home.content.decode()
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


# --- a file the buyer routed: under the company it was addressed to, and under the folder's -----------------


def buyer_party(company: Company) -> dict:
    return {"name": company.name, "country_code": "FR", "legal_identifier": company.siren,
            "legal_identifier_schemeid": "0002"}  # fmt: skip


@pytest.fixture
def routed(jno_ready, multi_ready) -> IntakeFile:
    """MULTI's invoice, addressed to MULTI by its SIREN, dropped in JNO's folder."""
    data = an_invoice(multi_ready, buyer=buyer_party(multi_ready), lines=[("Divers", "10.00", "20.00")])
    drop(jno_ready, "pour-multi.xml", cii_xml(data))
    intake_company(company=jno_ready)
    record = IntakeFile.objects.get()
    assert (record.company, record.routed_to, record.invoice.company) == (jno_ready, multi_ready, multi_ready)
    return record


def test_a_routed_file_says_where_it_went_to_each_of_its_companies(client, bob, routed, jno_ready, multi_ready):
    grant(bob, VIEW, EDIT)
    give_companies(bob)
    client.force_login(bob)
    # Seeing both, or MULTI only: under MULTI, « routée depuis JNO », with the invoice.
    for companies in ((jno_ready, multi_ready), (multi_ready,)):
        bob.company_access.companies.set(companies)
        row = row_of(text_of(client.get(IMPORTS)), routed)
        assert "MULTI" in row and "routée depuis JNO" in row
        assert f'href="/factures/{routed.invoice.pk}/"' in row
    # Seeing JNO only: under JNO, « routée vers MULTI », the invoice named but not linked (it is MULTI's).
    bob.company_access.companies.set([jno_ready])
    row = row_of(text_of(client.get(IMPORTS)), routed)
    assert "routée vers MULTI" in row and f"Facture N° {routed.invoice.number}" in row
    assert f'href="/factures/{routed.invoice.pk}/"' not in row
    # Filtered on either company, it is there.
    for company in (jno_ready, multi_ready):
        bob.company_access.companies.set([jno_ready, multi_ready])
        assert listed(client.get(IMPORTS, {"company": company.pk})) == [routed.pk]


# --- scope --------------------------------------------------------------------------------------------------


@pytest.fixture
def two_companies(jno_ready, multi_ready) -> dict[str, IntakeFile]:
    """A refused file in each company's folder."""
    drop(jno_ready, "jno.txt", b"JNO")
    drop(multi_ready, "multi.txt", b"MULTI")
    intake_company(company=jno_ready)
    intake_company(company=multi_ready)
    return {record.company.code: record for record in IntakeFile.objects.select_related("company")}


def test_another_companys_file_is_never_shown_nor_served_nor_retried(client, accountant, two_companies):
    other = two_companies["MULTI"]
    client.force_login(accountant)
    response = client.get(IMPORTS)
    assert listed(response) == [two_companies["JNO"].pk]
    assert "multi.txt" not in response.content.decode()
    assert client.get(reverse("invoices:import_file", args=[other.pk])).status_code == 404
    assert client.post(reverse("invoices:import_retry", args=[other.pk])).status_code == 404
    other.refresh_from_db()
    assert (other.outcome, other.attempts, other.seen_at) == (Outcome.REFUSED, 1, None)
    # A forged company in the filter is an invalid filter: nothing listed, the error said.
    response = client.get(IMPORTS, {"company": other.company_id})
    assert listed(response) == [] and "Sélectionnez un choix valide" in response.content.decode()


def test_a_user_without_companies_sees_no_file(client, bob, two_companies):
    grant(bob, VIEW)
    client.force_login(bob)
    assert listed(client.get(IMPORTS)) == []
    assert client.get(reverse("invoices:import_file", args=[two_companies["JNO"].pk])).status_code == 404


# --- filters, pages, queries --------------------------------------------------------------------------------


def test_filters_by_company_outcome_period_name_and_unseen(client, alice, jno_ready, multi_ready):
    with time_machine.travel(dt.datetime(2026, 11, 30, 23, 30, tzinfo=PARIS), tick=False):
        drop(jno_ready, "novembre.xml", cii_xml(an_invoice(jno_ready, number="FA-NOV")))
        intake_company(company=jno_ready)
    with time_machine.travel(dt.datetime(2026, 12, 1, 0, 30, tzinfo=PARIS), tick=False):
        drop(jno_ready, "Décembre.txt", b"rien")
        drop(multi_ready, "multi.txt", b"rien")
        intake_company(company=jno_ready)
        intake_company(company=multi_ready)
    files = {record.name: record.pk for record in IntakeFile.objects.all()}
    client.force_login(alice)

    def names(**query) -> set[str]:
        shown = listed(client.get(IMPORTS, query))
        return {name for name, pk in files.items() if pk in shown}

    # First, as a list shows the refused files it lists: seen from then on, no longer « non vus ».
    assert names(company=multi_ready.pk, unseen="on") == {"multi.txt"}
    assert names(unseen="on") == {"Décembre.txt"}
    assert names(unseen="on") == set()
    assert names() == {"novembre.xml", "Décembre.txt", "multi.txt"}
    assert names(company=jno_ready.pk) == {"novembre.xml", "Décembre.txt"}
    assert names(outcome="refused") == {"Décembre.txt", "multi.txt"}
    assert names(outcome="created") == {"novembre.xml"}
    # Days are Paris's: 23:30 on the 30th is November, 00:30 on the 1st is December.
    assert names(date_from="2026-12-01") == {"Décembre.txt", "multi.txt"}
    assert names(date_to="2026-11-30") == {"novembre.xml"}
    assert names(name="décembre") == {"Décembre.txt"}
    response = client.get(IMPORTS, {"date_from": "2026-12-02", "date_to": "2026-12-01"})
    assert listed(response) == [] and "La fin de la période précède son début." in response.content.decode()


def refused_files(company: Company, count: int) -> None:
    """``count`` refused files, written as the intake records them (an hour apart, the newest last)."""
    start = dt.datetime(2026, 12, 1, 8, tzinfo=PARIS)
    IntakeFile.objects.bulk_create(
        IntakeFile(
            company=company, name=f"f{index:03}.txt", name_bytes=f"f{index:03}.txt".encode(),
            path=f"{company.scan_directory}/{ERRORS_DIR}/f{index:03}.txt", size=4,
            received_at=start + dt.timedelta(hours=index), outcome=Outcome.REFUSED, reason="Format non reconnu.",
            attempts=1,
        )
        for index in range(count)
    )  # fmt: skip


def test_fifty_a_page_newest_first_and_the_page_keeps_the_filters(client, accountant, jno_ready):
    refused_files(jno_ready, 60)
    client.force_login(accountant)
    first = client.get(IMPORTS, {"outcome": "refused"})
    assert [row.file.name for row in first.context["rows"]][:2] == ["f059.txt", "f058.txt"]
    assert len(first.context["rows"]) == 50 and "60 fichiers" in text_of(first)
    assert 'href="?outcome=refused&page=2"' in first.content.decode()
    second = client.get(IMPORTS, {"outcome": "refused", "page": 2})
    assert [row.file.name for row in second.context["rows"]] == [f"f{index:03}.txt" for index in range(9, -1, -1)]


def test_a_page_costs_the_same_queries_whatever_the_number_of_files(
    client, accountant, jno_ready, multi_ready, django_assert_max_num_queries
):
    give_companies(accountant, multi_ready)
    refused_files(jno_ready, 3)
    client.force_login(accountant)
    client.get(IMPORTS)  # the session, the permissions: cached from here on, as on any page
    IntakeFile.objects.update(seen_at=None)
    with CaptureQueriesContext(connection) as few:
        client.get(IMPORTS)
    refused_files(jno_ready, 200)
    refused_files(multi_ready, 200)
    invoice = Invoice.objects.create(company=multi_ready, number="FA-R")
    IntakeFile.objects.filter(company=multi_ready).update(outcome=Outcome.CREATED, invoice=invoice, routed_to=jno_ready)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(IMPORTS)
    assert len(response.context["rows"]) == 50
    # session, user, rights, companies, count, page, « vu », badge, the filter's companies, the paper invoices' fields
    # accepted per supplier
    assert len(few.captured_queries) <= 13, [query["sql"][:150] for query in few.captured_queries]


# --- the file itself ----------------------------------------------------------------------------------------


def download(client, record: IntakeFile):
    return client.get(reverse("invoices:import_file", args=[record.pk]))


def said(client, response) -> str:
    """Where a refused download leads, and what it says at the top."""
    assert response.status_code == 302 and response["Location"] == IMPORTS
    return text_of(client.get(IMPORTS)).split('<div id="messages">')[1].split("</div>")[0]


def test_it_serves_the_very_bytes_with_the_name_as_dropped(client, accountant, jno_ready):
    content = facturx_pdf(an_invoice(jno_ready))
    drop(jno_ready, "facture.pdf", content)
    drop(jno_ready, "Relevé d'été.txt", "Relevé".encode())
    intake_company(company=jno_ready)
    client.force_login(accountant)
    created = IntakeFile.objects.get(name="facture.pdf")
    assert created.path == f"{jno_ready.scan_directory}/{PROCESSED_DIR}/facture.pdf"
    response = download(client, created)
    assert response.status_code == 200 and b"".join(response.streaming_content) == content
    assert response["Content-Disposition"] == 'attachment; filename="facture.pdf"'
    assert response["Content-Type"] == "application/pdf" and response["Content-Length"] == str(len(content))
    refused = IntakeFile.objects.get(outcome=Outcome.REFUSED)
    response = download(client, refused)
    assert b"".join(response.streaming_content) == "Relevé".encode()
    assert response["Content-Disposition"] == "attachment; filename*=utf-8''Relev%C3%A9%20d%27%C3%A9t%C3%A9.txt"
    assert response["Content-Type"] == "application/octet-stream"


def test_a_name_with_a_quote_or_a_line_break_makes_a_safe_header(client, accountant, jno_ready):
    drop(jno_ready, 'a"b\nc.txt', b"rien")
    intake_company(company=jno_ready)
    client.force_login(accountant)
    response = download(client, IntakeFile.objects.get())
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="a\\"b_c.txt"'


def test_a_hidden_file_left_in_place_under_a_name_that_is_not_utf8_is_served(client, accountant, jno_ready):
    folder_of(jno_ready).mkdir(parents=True, exist_ok=True)
    with open(os.fsencode(folder_of(jno_ready)) + b"/.r\xe9sum\xe9", "wb") as stream:
        stream.write(b"cache")
    intake_company(company=jno_ready)
    record = IntakeFile.objects.get()
    assert record.outcome == Outcome.IGNORED
    client.force_login(accountant)
    response = download(client, record)
    assert b"".join(response.streaming_content) == b"cache"
    assert response["Content-Disposition"] == "attachment; filename*=utf-8''.r%C3%A9sum%C3%A9"


def test_a_file_gone_from_disk_says_so_in_french(client, accountant, jno_ready):
    drop(jno_ready, "facture.xml", cii_xml(an_invoice(jno_ready)))
    intake_company(company=jno_ready)
    (folder_of(jno_ready) / PROCESSED_DIR / "facture.xml").unlink()
    client.force_login(accountant)
    assert (
        "Le fichier « facture.xml » n'est plus dans le répertoire de scan (C0071000325_data_6/traités/facture.xml) :"
        " il a été déplacé ou supprimé." in said(client, download(client, IntakeFile.objects.get()))
    )


def test_a_file_that_became_a_link_is_not_followed(client, accountant, jno_ready, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"SECRET never to be served")
    drop(jno_ready, "facture.xml", cii_xml(an_invoice(jno_ready)))
    intake_company(company=jno_ready)
    processed = folder_of(jno_ready) / PROCESSED_DIR / "facture.xml"
    processed.unlink()
    processed.symlink_to(secret)
    client.force_login(accountant)
    response = download(client, IntakeFile.objects.get())
    assert b"SECRET" not in response.content
    assert "« facture.xml » est un lien symbolique ou n'est pas un fichier ordinaire" in said(client, response)


def test_a_folder_that_became_a_link_is_not_followed(client, accountant, jno_ready, tmp_path):
    drop(jno_ready, "facture.xml", cii_xml(an_invoice(jno_ready)))
    intake_company(company=jno_ready)
    elsewhere = tmp_path / "ailleurs"
    elsewhere.mkdir()
    (elsewhere / "facture.xml").write_bytes(b"SECRET never to be served")
    processed = folder_of(jno_ready) / PROCESSED_DIR
    processed.rename(tmp_path / "vrai-traites")
    processed.symlink_to(elsewhere)
    client.force_login(accountant)
    response = download(client, IntakeFile.objects.get())
    assert b"SECRET" not in response.content
    assert "est un lien symbolique" in said(client, response)


@pytest.mark.parametrize("path", ["../secret.txt", "C0071000325_data_6/../../secret.txt", "/etc/passwd", ""])
def test_a_path_out_of_the_scan_root_is_never_opened(client, accountant, jno_ready, tmp_path, path):
    (tmp_path / "secret.txt").write_bytes(b"SECRET never to be served")
    drop(jno_ready, "facture.xml", cii_xml(an_invoice(jno_ready)))
    intake_company(company=jno_ready)
    record = IntakeFile.objects.get()
    IntakeFile.objects.filter(pk=record.pk).update(path=path)
    client.force_login(accountant)
    # The path is the database's: whatever the request carries is not read.
    response = client.get(reverse("invoices:import_file", args=[record.pk]), {"path": "../secret.txt"})
    assert b"SECRET" not in response.content and b"root:" not in response.content
    assert "Emplacement du fichier invalide : il ne peut pas être téléchargé." in said(client, response)


# --- « Réessayer » ------------------------------------------------------------------------------------------


def retry(client, record: IntakeFile, query: str = ""):
    return client.post(reverse("invoices:import_retry", args=[record.pk]), {"query": query})


def top_message(client, response) -> str:
    return text_of(client.get(response["Location"])).split('<div id="messages">')[1].split("</div>")[0]


def test_after_the_referential_update_that_brings_the_addressee_the_file_becomes_an_invoice(
    client, bob, jno_ready, multi, sage
):
    # MULTI's invoice, addressed to it by the SIREN Sage knows, dropped in JNO's folder before MULTI was ever updated.
    siren = next(item["siren"] for item in sage.get("/companies").json()["items"] if item["code"] == "MULTI")
    assert multi.siren == ""
    buyer = {"name": "MULTI", "country_code": "FR", "legal_identifier": siren, "legal_identifier_schemeid": "0002"}
    drop(jno_ready, "pour-multi.xml", cii_xml(an_invoice(jno_ready, buyer=buyer)))
    intake_company(company=jno_ready)
    record = IntakeFile.objects.get()
    assert record.outcome == Outcome.REFUSED
    assert record.reason.startswith(f"Adressée à SIREN {siren} (MULTI), qui n'est aucune société du groupe : refusée.")
    grant(bob, VIEW, EDIT)
    give_companies(bob, jno_ready, multi)
    client.force_login(bob)
    assert "Réessayer" in row_of(text_of(client.get(IMPORTS)), record)

    # Nothing changed yet: refused again, and said so.
    response = retry(client, record, "outcome=refused")
    assert response["Location"] == f"{IMPORTS}?outcome=refused"
    assert f"« pour-multi.xml » refusé à nouveau : Adressée à SIREN {siren} (MULTI)" in top_message(client, response)

    company_referential_pull(company=multi)  # « Mettre à jour les sociétés » brings MULTI's SIREN
    response = retry(client, record)
    invoice = Invoice.objects.get()
    assert f"« pour-multi.xml » importé : facture N° FA-100 créée dans MULTI ({invoice.get_status_display()})." in (
        top_message(client, response)
    )
    record.refresh_from_db()
    assert (record.outcome, record.invoice, record.routed_to, record.attempts) == (Outcome.CREATED, invoice, multi, 3)
    assert invoice.company == multi
    assert left_in(jno_ready)[ERRORS_DIR] == [] and "pour-multi.xml" in left_in(jno_ready)[PROCESSED_DIR]
    row = row_of(text_of(client.get(IMPORTS)), record)
    assert "Facture créée" in row and "routée depuis JNO" in row and f'href="/factures/{invoice.pk}/"' in row
    assert "Réessayer" not in row


def test_a_file_already_received_comes_in_once_its_first_invoice_is_gone(client, accountant, jno_ready):
    # The XML and its Factur-X PDF: the same invoice, imported once.
    drop(jno_ready, "facture.xml", cii_xml(an_invoice(jno_ready)))
    drop(jno_ready, "facture.pdf", facturx_pdf(an_invoice(jno_ready)))
    intake_company(company=jno_ready)
    duplicate = IntakeFile.objects.get(outcome=Outcome.DUPLICATE)
    client.force_login(accountant)
    response = retry(client, duplicate)
    assert f"« {duplicate.name} » : Déjà reçue : facture N° FA-100" in top_message(client, response)
    # The first one was a mistake, deleted: its twin comes in.
    Invoice.objects.get().delete()
    response = retry(client, duplicate)
    assert f"« {duplicate.name} » importé : facture N° FA-100 créée dans JNO" in top_message(client, response)


def test_only_a_refused_file_still_in_errors_can_be_retried(client, accountant, jno_ready):
    drop(jno_ready, "facture.xml", cii_xml(an_invoice(jno_ready)))
    drop(jno_ready, "coupé.xml", cii_xml(an_invoice(jno_ready, number="FA-2"))[:-50])
    intake_company(company=jno_ready)
    created, refused = IntakeFile.objects.get(outcome=Outcome.CREATED), IntakeFile.objects.get(outcome=Outcome.REFUSED)
    client.force_login(accountant)
    assert "Réessayer" not in row_of(text_of(client.get(IMPORTS)), created)
    message = top_message(client, retry(client, created))
    assert "« facture.xml » : Seul un fichier refusé ou déjà reçu peut être réessayé." in message
    (folder_of(jno_ready) / ERRORS_DIR / "coupé.xml").unlink()
    message = top_message(client, retry(client, refused))
    assert "« coupé.xml » : Le fichier n'est plus dans erreurs/ : il ne peut pas être réessayé." in message
    assert client.get(reverse("invoices:import_retry", args=[refused.pk])).status_code == 405


def test_retrying_is_for_the_users_of_the_folders_company(client, bob, jno_ready, multi_ready):
    record = IntakeFile.objects.create(
        company=jno_ready, routed_to=multi_ready, name="twin.xml", name_bytes=b"twin.xml",
        path=f"{jno_ready.scan_directory}/{ERRORS_DIR}/twin.xml", received_at=dt.datetime(2026, 12, 1, tzinfo=PARIS),
        outcome=Outcome.DUPLICATE, reason="Déjà reçue.",
    )  # fmt: skip
    grant(bob, VIEW, EDIT)
    give_companies(bob, multi_ready)
    client.force_login(bob)
    row = row_of(text_of(client.get(IMPORTS)), record)
    assert "routée depuis JNO" in row and "Réessayer" not in row
    assert retry(client, record).status_code == 404
    assert client.post(reverse("invoices:import_retry", args=[record.pk])).status_code == 404


def test_forged_input_is_refused_in_french_never_a_500(client, accountant, jno_ready):
    refused_files(jno_ready, 3)
    client.force_login(accountant)
    for query in (
        {"page": "9999"}, {"page": "abc"}, {"company": "abc"}, {"outcome": "perdu"}, {"date_from": "31/02/2026"},
        {"name": "x" * 500}, {"analyse": "../../etc"}, {"rows": "1"},
    ):  # fmt: skip
        assert client.get(IMPORTS, query).status_code == 200, query
    assert listed(client.get(IMPORTS, {"page": "9999"})) != []  # the last page
    assert "Sélectionnez un choix valide" in client.get(IMPORTS, {"outcome": "perdu"}).content.decode()
    assert client.get("/factures/imports/analyses/pas-un-uuid/").status_code == 404
    assert (
        client.get(reverse("invoices:imports_progress", args=["00000000-0000-0000-0000-000000000000"])).status_code
        == 404
    )
    assert client.get(reverse("invoices:import_file", args=[999999])).status_code == 404
    assert client.post(reverse("invoices:import_retry", args=[999999])).status_code == 404
    record = IntakeFile.objects.first()
    response = client.post(reverse("invoices:import_retry", args=[record.pk]), {"query": "page=2&evil=<script>"})
    assert response.status_code == 302 and response["Location"] == f"{IMPORTS}?page=2"
