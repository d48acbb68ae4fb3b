"""Files of one company never reach another, and nothing is followed out of the scan root (issue 13 §2): each
company's folder is its own, links are refused, a name that is not UTF-8 does not stop the others, and every file a
person dropped ends somewhere with its reason."""

from __future__ import annotations

import os
import time

import pytest
from django.urls import reverse

from companies.models import Company
from companies.services import ScanDirectoryConflict, company_settings_update
from invoices.intake import (
    CLAIMED_DIR,
    ERRORS_DIR,
    HIDDEN_REASON,
    LINK_REASON,
    PROCESSED_DIR,
    IntakeRetryError,
    Outcome,
    _Claim,
    _intake_file,
    _process,
    intake_company,
    intake_file_retry,
    open_scan_folder,
)
from invoices.models import IntakeFile, Invoice
from invoices.samples.build_samples import cii_xml, facturx_pdf
from tests.conftest import grant
from tests.support.intake import an_invoice, drop, folder_of, left_in, note, outcomes

SECRET = b"SECRET-4f1e never to be read"


# --- each company's « Répertoire de scan » is its own -----------------------------------------------------


@pytest.mark.parametrize("directory", ["C0071000325_data_6", "c0071000325_DATA_6", " C0071000325_data_6 "])
def test_the_form_refuses_another_companys_folder(client, alice, jno, multi, directory):
    client.force_login(alice)
    response = client.post(
        reverse("companies:detail", args=[multi.pk]), {"scan_directory": directory, "purchase_journal_code": "ACH"}
    )
    assert response.status_code == 200
    assert (
        f"Le répertoire de scan « {directory.strip()} » est déjà celui de la société JNO (C0071000325_data_6)"
        in response.content.decode()
    )
    multi.refresh_from_db()
    assert multi.scan_directory == "C0071000325_data_8"


def test_a_company_keeps_its_own_folder_when_saved_again(client, alice, jno):
    client.force_login(alice)
    response = client.post(
        reverse("companies:detail", args=[jno.pk]),
        {"scan_directory": "C0071000325_data_6", "purchase_journal_code": "HA"},
    )
    assert response.status_code == 302
    jno.refresh_from_db()
    assert (jno.scan_directory, jno.purchase_journal_code) == ("C0071000325_data_6", "HA")


@pytest.mark.parametrize(
    ("old", "new"),
    [("groupe/filiale", "groupe"), ("groupe", "groupe/filiale"), ("Groupe/Filiale", "groupe/filiale")],
)
def test_the_service_refuses_a_folder_inside_or_above_another(jno, multi, bob, old, new):
    Company.objects.filter(pk=jno.pk).update(scan_directory=old)  # an old setting, from before the rule
    with pytest.raises(ScanDirectoryConflict, match="déjà celui de la société JNO"):
        company_settings_update(company=multi, scan_directory=new, purchase_journal_code="ACH", actor=bob)
    multi.refresh_from_db()
    assert multi.scan_directory == "C0071000325_data_8"


def test_folders_that_only_share_a_prefix_are_distinct(jno, multi, bob):
    company_settings_update(company=multi, scan_directory="C0071000325_data_66", purchase_journal_code="ACH", actor=bob)
    multi.refresh_from_db()
    assert multi.scan_directory == "C0071000325_data_66"


def test_the_intake_reads_no_folder_shared_by_two_companies(jno_ready, multi_ready):
    Company.objects.filter(pk=multi_ready.pk).update(scan_directory=jno_ready.scan_directory)
    multi_ready.refresh_from_db()
    path = drop(jno_ready, "jno.xml", cii_xml(an_invoice(jno_ready)))
    for company in (jno_ready, multi_ready):
        report = intake_company(company=company)
        assert report.files == []
        assert "est déjà celui de la société" in report.error and "Aucun fichier n'est lu" in report.error
    assert path.exists() and not Invoice.objects.exists()


def test_the_intake_reads_no_folder_inside_another(jno_ready, multi_ready):
    # MULTI's folder set, long ago, to JNO's processed files: it would import them all over again.
    Company.objects.filter(pk=multi_ready.pk).update(scan_directory=f"{jno_ready.scan_directory}/{PROCESSED_DIR}")
    multi_ready.refresh_from_db()
    drop(jno_ready, f"{PROCESSED_DIR}/ancienne.xml", cii_xml(an_invoice(jno_ready)))
    assert "déjà celui de la société JNO" in intake_company(company=multi_ready).error
    assert not Invoice.objects.exists()


# --- links: never followed out of SCAN_ROOT -------------------------------------------------------------------


@pytest.mark.parametrize("work_folder", [PROCESSED_DIR, ERRORS_DIR, CLAIMED_DIR])
def test_a_work_folder_that_is_a_link_is_refused(jno_ready, tmp_path, work_folder):
    outside = tmp_path / "ailleurs"
    outside.mkdir()
    folder_of(jno_ready).mkdir(parents=True)
    os.symlink(outside, folder_of(jno_ready) / work_folder)
    path = drop(jno_ready, "facture.xml", cii_xml(an_invoice(jno_ready)))
    report = intake_company(company=jno_ready)
    assert report.error == (
        f"Le dossier de travail « {work_folder} » n'est pas un dossier (lien symbolique ou fichier) : refusé, SFD ne"
        " suit jamais un lien hors du répertoire de scan."
    )
    assert list(outside.iterdir()) == [] and path.exists() and not Invoice.objects.exists()


def test_a_company_folder_that_is_a_link_is_refused(jno_ready, multi_ready, tmp_path):
    # JNO's folder made a link to MULTI's: JNO would read MULTI's files.
    drop(multi_ready, "multi.xml", cii_xml(an_invoice(multi_ready)))
    os.symlink(folder_of(multi_ready), folder_of(jno_ready))
    report = intake_company(company=jno_ready)
    assert report.error.startswith("Le répertoire de scan « C0071000325_data_6 » n'est pas un dossier")
    assert (folder_of(multi_ready) / "multi.xml").exists() and not Invoice.objects.exists()


def test_a_file_that_is_a_link_is_refused_and_never_read(jno_ready, tmp_path):
    secret = tmp_path / "secret.xml"
    secret.write_bytes(SECRET)
    drop(jno_ready, "bonne.xml", cii_xml(an_invoice(jno_ready, number="FA-BONNE")))
    os.symlink(secret, folder_of(jno_ready) / "lien.xml")
    os.symlink("/etc/passwd", folder_of(jno_ready) / "passwd.xml")
    report = intake_company(company=jno_ready)
    assert outcomes(report) == {
        "bonne.xml": Outcome.CREATED,
        "lien.xml": Outcome.REFUSED,
        "passwd.xml": Outcome.REFUSED,
    }
    errors = folder_of(jno_ready) / ERRORS_DIR
    # The links themselves were moved, their targets untouched and never read.
    assert os.readlink(errors / "lien.xml") == str(secret) and secret.read_bytes() == SECRET
    assert note(jno_ready, ERRORS_DIR, "lien.xml").splitlines()[1] == f"Refusée : {LINK_REASON}"
    record = IntakeFile.objects.get(name="lien.xml")
    assert (record.outcome, record.reason, record.sha256, record.path) == (
        Outcome.REFUSED,
        LINK_REASON,
        "",
        f"{jno_ready.scan_directory}/{ERRORS_DIR}/lien.xml",
    )
    everything = repr(list(IntakeFile.objects.values_list("reason", flat=True)))
    assert "SECRET" not in everything and "root:" not in everything


def test_a_file_swapped_for_a_link_after_the_listing_is_not_followed(jno_ready, tmp_path):
    secret = tmp_path / "secret.xml"
    secret.write_bytes(SECRET)
    path = drop(jno_ready, "facture.xml", cii_xml(an_invoice(jno_ready)))
    listed = path.stat()  # what the listing saw: a regular file, settled
    path.unlink()
    os.symlink(secret, path)  # swapped between the listing and the claim
    with open_scan_folder(jno_ready) as folder:
        item = _intake_file(jno_ready, folder, "facture.xml", listed, None)
    assert (item.outcome, item.reason) == (Outcome.REFUSED, LINK_REASON)
    assert os.path.islink(folder_of(jno_ready) / ERRORS_DIR / "facture.xml") and not Invoice.objects.exists()


def test_a_claimed_file_swapped_for_a_link_is_not_read(jno_ready, tmp_path):
    secret = tmp_path / "secret.xml"
    secret.write_bytes(cii_xml(an_invoice(jno_ready)))  # even a valid invoice behind a link is not read
    with open_scan_folder(jno_ready) as folder:
        os.symlink(secret, folder_of(jno_ready) / CLAIMED_DIR / "facture.xml")
        record = IntakeFile.objects.create(
            company=jno_ready, name="facture.xml", name_bytes=b"facture.xml", path="x", received_at="2026-11-02T10:00Z"
        )
        item = _process(jno_ready, folder, _Claim(CLAIMED_DIR, "facture.xml"), record, None)
    assert (item.outcome, item.reason) == (Outcome.REFUSED, LINK_REASON)
    assert not Invoice.objects.exists()


def test_a_work_folder_swapped_for_a_link_after_the_check_is_not_followed(jno_ready, tmp_path):
    outside = tmp_path / "ailleurs"
    outside.mkdir()
    drop(jno_ready, "coupé.xml", cii_xml(an_invoice(jno_ready))[:-100])
    with open_scan_folder(jno_ready) as folder:
        errors = folder_of(jno_ready) / ERRORS_DIR
        errors.rename(folder_of(jno_ready) / "erreurs-d-origine")
        os.symlink(outside, errors)  # after the check, before the use
        listed = (folder_of(jno_ready) / "coupé.xml").stat()
        item = _intake_file(jno_ready, folder, "coupé.xml", listed, None)
    assert item.outcome == Outcome.REFUSED
    # The refused file went where the descriptor points: the folder that was checked, not the link's target.
    assert list(outside.iterdir()) == []
    assert sorted(p.name for p in (folder_of(jno_ready) / "erreurs-d-origine").iterdir()) == [
        "coupé.xml",
        "coupé.xml.txt",
    ]


# --- names ------------------------------------------------------------------------------------------------


def test_a_name_that_is_not_utf8_does_not_stop_the_others(jno_ready):
    folder = folder_of(jno_ready)
    drop(jno_ready, "bonne.xml", cii_xml(an_invoice(jno_ready, number="FA-BONNE")))
    raw = os.fsencode(folder) + b"/facture-\xe9t\xe9.xml"  # Latin-1 « été », as an old scanner writes it
    with open(raw, "wb") as stream:
        stream.write(cii_xml(an_invoice(jno_ready, number="FA-ETE")))
    stamp = time.time() - 60
    os.utime(raw, (stamp, stamp))

    report = intake_company(company=jno_ready)

    readable = "facture-\ufffdt\ufffd.xml"
    assert outcomes(report) == {"bonne.xml": Outcome.CREATED, readable: Outcome.CREATED}
    record = IntakeFile.objects.get(invoice__number="FA-ETE")
    assert (record.name, bytes(record.name_bytes)) == (readable, b"facture-\xe9t\xe9.xml")
    assert record.path == f"{jno_ready.scan_directory}/{PROCESSED_DIR}/{readable}"
    assert left_in(jno_ready)[PROCESSED_DIR] == sorted(["bonne.xml", "bonne.xml.txt", readable, readable + ".txt"])
    assert note(jno_ready, PROCESSED_DIR, readable).startswith(f"{readable} — ")
    assert Invoice.objects.get(number="FA-ETE").source_file == record.path


def test_hidden_files_are_recorded_as_ignored_once_and_left_in_place(jno_ready):
    drop(jno_ready, ".DS_Store", b"\x00\x00\x00\x01Bud1")
    drop(jno_ready, ".~lock.facture.xml#", b"verrou")
    report = intake_company(company=jno_ready)
    assert outcomes(report) == {".DS_Store": Outcome.IGNORED, ".~lock.facture.xml#": Outcome.IGNORED}
    assert {item.reason for item in report.files} == {HIDDEN_REASON}
    assert left_in(jno_ready)[""] == [".DS_Store", ".~lock.facture.xml#"]
    assert IntakeFile.objects.filter(outcome=Outcome.IGNORED).count() == 2
    # Seen again: not recorded again (the screen would fill with them); changed, it is recorded anew.
    assert intake_company(company=jno_ready).files == []
    drop(jno_ready, ".DS_Store", b"\x00\x00\x00\x01Bud1 plus long")
    assert outcomes(intake_company(company=jno_ready)) == {".DS_Store": Outcome.IGNORED}


def test_a_text_file_a_person_dropped_is_refused_with_its_reason(jno_ready):
    drop(jno_ready, "lisez-moi.txt", b"Les factures de novembre")
    drop(jno_ready, "facture.pdf.txt", b"facture.pdf \xe2\x80\x94 02/11/2026 10:00\nRefus\xc3\xa9e : ...")
    report = intake_company(company=jno_ready)
    assert outcomes(report) == {"facture.pdf.txt": Outcome.REFUSED, "lisez-moi.txt": Outcome.REFUSED}
    assert report.files[1].reason == ("Format non reconnu pour « lisez-moi.txt » : ni PDF Factur-X, ni XML UBL ou CII.")
    assert left_in(jno_ready)[""] == []
    assert "lisez-moi.txt.txt" in left_in(jno_ready)[ERRORS_DIR]


def test_every_file_dropped_ends_somewhere_with_its_reason(jno_ready, tmp_path):
    content = facturx_pdf(an_invoice(jno_ready))
    dropped = {
        "facture.pdf": content,
        "copie.pdf": content,
        "photo.jpg": b"\xff\xd8\xff\xe0 JFIF",
        "notes.txt": b"rien",
        ".cache": b"x",
        "vide.xml": b"",
    }
    for name, data in dropped.items():
        drop(jno_ready, name, data)
    os.symlink(tmp_path, folder_of(jno_ready) / "dossier-lien")
    report = intake_company(company=jno_ready)
    assert sorted(outcomes(report)) == sorted([*dropped, "dossier-lien"])
    assert left_in(jno_ready)[""] == [".cache"]
    for record in IntakeFile.objects.all():
        assert record.outcome in (Outcome.CREATED, Outcome.DUPLICATE, Outcome.REFUSED, Outcome.IGNORED)
        assert record.outcome == Outcome.CREATED or record.reason
        assert (folder_of(jno_ready).parent / record.path).exists() or os.path.islink(
            folder_of(jno_ready).parent / record.path
        )


# --- the per-file record, and « Réessayer » ------------------------------------------------------------------


def test_each_file_has_its_record_with_where_it_is_now(jno_ready):
    content = cii_xml(an_invoice(jno_ready))
    drop(jno_ready, "facture.xml", content)
    drop(jno_ready, "zz-copie.xml", content)
    intake_company(company=jno_ready)
    invoice = Invoice.objects.get()
    created, duplicate = IntakeFile.objects.order_by("name")
    assert (created.outcome, created.invoice, created.reason, created.attempts) == (Outcome.CREATED, invoice, "", 1)
    assert created.path == invoice.source_file == f"{jno_ready.scan_directory}/{PROCESSED_DIR}/facture.xml"
    assert (created.size, created.sha256) == (len(content), invoice.source_hash)
    assert (created.company, created.routed_to, created.seen_at) == (jno_ready, None, None)
    assert (duplicate.outcome, duplicate.invoice) == (Outcome.DUPLICATE, invoice)
    assert duplicate.reason == f"Déjà reçue : facture N° FA-100 (/factures/{invoice.pk}/) — même fichier."
    assert duplicate.path == f"{jno_ready.scan_directory}/{ERRORS_DIR}/zz-copie.xml"


def test_a_refused_file_is_imported_again_on_retry(jno_ready, bob):
    grant(bob, "invoices.edit_invoices")
    drop(jno_ready, "facture.xml", cii_xml(an_invoice(jno_ready)))
    drop(jno_ready, "facture.pdf", facturx_pdf(an_invoice(jno_ready)))
    intake_company(company=jno_ready)
    duplicate = IntakeFile.objects.get(outcome=Outcome.DUPLICATE)
    # The first one was a mistake, deleted; the file refused as its twin can now come in.
    Invoice.objects.get().delete()

    item = intake_file_retry(intake_file=duplicate, actor=bob)

    duplicate.refresh_from_db()
    assert (item.outcome, duplicate.outcome, duplicate.attempts) == (Outcome.CREATED, Outcome.CREATED, 2)
    assert duplicate.invoice == Invoice.objects.get()
    assert duplicate.path == f"{jno_ready.scan_directory}/{PROCESSED_DIR}/{duplicate.name}"
    # Its old note went with it; the new one says what happened.
    assert left_in(jno_ready)[ERRORS_DIR] == [] and left_in(jno_ready)[CLAIMED_DIR] == []
    assert "Importée" in note(jno_ready, PROCESSED_DIR, duplicate.name)


def test_only_a_refused_file_still_in_errors_can_be_retried(jno_ready, bob):
    drop(jno_ready, "facture.xml", cii_xml(an_invoice(jno_ready)))
    drop(jno_ready, "coupé.xml", cii_xml(an_invoice(jno_ready))[:-50])
    intake_company(company=jno_ready)
    with pytest.raises(IntakeRetryError, match="Seul un fichier refusé ou déjà reçu peut être réessayé"):
        intake_file_retry(intake_file=IntakeFile.objects.get(outcome=Outcome.CREATED), actor=bob)
    refused = IntakeFile.objects.get(outcome=Outcome.REFUSED)
    (folder_of(jno_ready) / ERRORS_DIR / "coupé.xml").unlink()
    with pytest.raises(IntakeRetryError, match="Le fichier n'est plus dans erreurs/"):
        intake_file_retry(intake_file=refused, actor=bob)
