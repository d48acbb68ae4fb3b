"""Intake from the « Répertoire de scan »: real files in a real folder, a real database, the Sage stub."""

from __future__ import annotations

import datetime as dt
import io
import os
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connection

from companies.models import Account, Company, Supplier
from config.celery import app as celery_app
from invoices.intake import CLAIMED_DIR, ERRORS_DIR, PROCESSED_DIR, STALE_CLAIM_SECONDS, Outcome, intake_company
from invoices.models import Invoice, InvoiceEvent
from invoices.samples import samples_for_company
from invoices.samples.build_samples import cii_xml, facturx_pdf, minimal_pdf, seller, ubl_xml
from invoices.tasks import intake_all_companies, intake_company_task
from tests.conftest import make_company
from tests.support.intake import an_invoice, drop, folder_of, left_in, note, outcomes, supplier_party

FIXTURES = Path(__file__).parent / "fixtures" / "invoices"
PASSWD_MARKERS = ("root:x:", "/bin/bash", "nologin")


# --- the demo samples: every format, SIREN and VAT matching, unknown supplier, avoir, two rates, USD ----


def test_demo_samples_of_jno(jno_ready):
    for path in samples_for_company("JNO"):
        drop(jno_ready, path.name, path.read_bytes())

    report = intake_company(company=jno_ready)

    assert report.error == ""
    assert outcomes(report) == {
        "AV-2026-0031.pdf": Outcome.CREATED,
        "FA-2026-0501.pdf": Outcome.CREATED,
        "FA-2026-0502.pdf": Outcome.CREATED,
        "FA-2026-0610.pdf": Outcome.CREATED,
        "INV-2026-0077.xml": Outcome.CREATED,
        "INV-US-2026-118.xml": Outcome.CREATED,
    }
    invoices = {i.number: i for i in Invoice.objects.filter(company=jno_ready).select_related("supplier")}
    assert set(invoices) == {
        "AV-2026-0031", "FA-2026-0501", "FA-2026-0502", "FA-2026-0610", "INV-2026-0077", "INV-US-2026-118"
    }  # fmt: skip

    # Factur-X, supplier by SIREN, its expense account and the tax code of the rate.
    first = invoices["FA-2026-0501"]
    assert (first.supplier.code, first.kind, first.status) == ("F0001", "invoice", Invoice.Status.TO_VALIDATE)
    assert (first.invoice_date, first.due_date, first.currency) == (dt.date(2026, 11, 2), dt.date(2026, 12, 17), "EUR")
    assert (first.total_ht, first.total_tva, first.total_ttc) == (Decimal("250"), Decimal("50"), Decimal("300"))
    assert first.source_format == "facturx"
    assert first.source_file == "C0071000325_data_6/traités/FA-2026-0501.pdf"
    assert len(first.source_hash) == 64
    line = first.lines.select_related("account", "tax_code").get()
    assert (line.account.code, line.tax_code.code, line.amount_ht) == ("602200", "T20", Decimal("250.00"))
    assert InvoiceEvent.objects.get(invoice=first).message.startswith("Facture importée du répertoire de scan")

    # Two rates: 20 % and 10 %.
    two_rates = invoices["FA-2026-0502"]
    assert [(line.tax_code.code, line.amount_ht) for line in two_rates.lines.select_related("tax_code")] == [
        ("T20", Decimal("400.00")),
        ("T10", Decimal("120.00")),
    ]
    # The credit note.
    assert (invoices["AV-2026-0031"].kind, invoices["AV-2026-0031"].supplier.code) == ("credit_note", "F0005")
    # UBL, supplier found by its VAT number alone.
    ubl = invoices["INV-2026-0077"]
    assert (ubl.source_format, ubl.supplier.code, ubl.status) == ("ubl", "F0004", Invoice.Status.TO_VALIDATE)
    # Unknown SIREN: imported, à compléter, with the reason.
    unknown = invoices["FA-2026-0610"]
    assert unknown.supplier is None and unknown.status == Invoice.Status.TO_COMPLETE
    assert unknown.incomplete_reason.startswith("Fournisseur inconnu : SIREN 612345678 (Transports Martin SARL).")
    assert "Fournisseur manquant." in unknown.incomplete_reason

    # In dollars: imported « à compléter » until the accountant gives the rate.
    dollars = invoices["INV-US-2026-118"]
    assert (dollars.currency, dollars.exchange_rate, dollars.status) == ("USD", None, Invoice.Status.TO_COMPLETE)
    assert "Facture en USD : saisissez le cours (1 USD = … EUR)." in dollars.incomplete_reason

    assert left_in(jno_ready) == {
        "": [],
        PROCESSED_DIR: sorted(f"{name}{suffix}" for name in outcomes(report) for suffix in ("", ".txt")),
        ERRORS_DIR: [],
        CLAIMED_DIR: [],
    }
    assert f"(id {first.pk}), statut « à valider »" in note(jno_ready, PROCESSED_DIR, "FA-2026-0501.pdf")
    assert "Fournisseur inconnu : SIREN 612345678" in note(jno_ready, PROCESSED_DIR, "FA-2026-0610.pdf")


def test_demo_samples_of_multi_wait_for_their_analytics(multi_ready):
    for path in samples_for_company("MULTI"):
        drop(multi_ready, path.name, path.read_bytes())
    report = intake_company(company=multi_ready)
    assert outcomes(report) == {"FA-2026-1201.xml": Outcome.CREATED, "FA-2026-1202.pdf": Outcome.CREATED}
    cii = Invoice.objects.get(company=multi_ready, number="FA-2026-1201")
    assert (cii.source_format, cii.supplier.code) == ("cii", "F0001")
    assert cii.incomplete_reason == "Ligne 1 : section analytique obligatoire pour cette société."


# --- matching --------------------------------------------------------------------------------------------


def test_supplier_matched_by_siren_first(jno_ready):
    party = supplier_party(jno_ready, "F0002") | {
        "vat_identifier": Supplier.objects.get(company=jno_ready, code="F0003").vat_number
    }
    drop(jno_ready, "siren.xml", cii_xml(an_invoice(jno_ready, seller=party)))
    intake_company(company=jno_ready)
    assert Invoice.objects.get(company=jno_ready).supplier.code == "F0002"


def test_supplier_matched_by_vat_number_without_siren(jno_ready):
    drop(jno_ready, "tva.xml", ubl_xml(an_invoice(jno_ready, seller=supplier_party(jno_ready, "F0007", siren=False))))
    intake_company(company=jno_ready)
    invoice = Invoice.objects.get(company=jno_ready)
    assert (invoice.supplier.code, invoice.status) == ("F0007", Invoice.Status.TO_VALIDATE)


def test_unknown_supplier_leaves_the_invoice_to_complete(jno_ready):
    party = seller("Transports Martin SARL", siren="612345678", vat="FR24612345678")
    drop(jno_ready, "inconnu.pdf", facturx_pdf(an_invoice(jno_ready, seller=party)))
    report = intake_company(company=jno_ready)
    [item] = report.files
    invoice = Invoice.objects.get(pk=item.invoice_id)
    assert item.outcome == Outcome.CREATED and item.reason == invoice.incomplete_reason
    assert invoice.incomplete_reason.splitlines()[:3] == [
        "Fournisseur inconnu : SIREN 612345678 (Transports Martin SARL). Créez-le dans Sage FRP 1000 et mettez à"
        " jour la société, ou choisissez-le sur la facture.",
        "Fournisseur manquant.",
        "Ligne 1 : compte de charge manquant.",
    ]
    assert invoice.lines.get().tax_code.code == "T20"
    assert "Importée, à compléter" in note(jno_ready, PROCESSED_DIR, "inconnu.pdf")


def test_blocked_supplier_inactive_account_and_rate_without_tax_code(jno_ready):
    Supplier.objects.filter(company=jno_ready, code="F0001").update(local_expense_account="606800")
    drop(
        jno_ready,
        "pieges.xml",
        cii_xml(
            an_invoice(
                jno_ready,
                code="F0042",
                lines=[("Fournitures", "100.00", "20.00"), ("Octroi de mer", "50.00", "8.50")],
            )
        ),
    )
    drop(jno_ready, "compte.xml", cii_xml(an_invoice(jno_ready, number="FA-101", code="F0001")))
    report = intake_company(company=jno_ready)
    assert outcomes(report) == {"pieges.xml": Outcome.CREATED, "compte.xml": Outcome.CREATED}
    blocked = Invoice.objects.get(company=jno_ready, supplier__code="F0042")
    assert blocked.incomplete_reason.splitlines()[:2] == [
        f"Fournisseur F0042 {blocked.supplier.label} bloqué dans Sage FRP 1000.",
        "Aucun code TVA actif au taux de 8,5 % (ligne 2) : choisissez le code TVA.",
    ]
    assert {line.account.code for line in blocked.lines.select_related("account")} == {
        blocked.supplier.expense_account_code
    }
    # SFD's own mapping (local expense account) wins over Sage's default, and an inactive account is not used.
    inactive = Invoice.objects.get(company=jno_ready, number="FA-101")
    assert inactive.incomplete_reason.startswith(
        "Compte de charge 606800 du fournisseur F0001 inactif : choisissez un autre compte."
    )
    assert inactive.lines.get().account is None
    assert Account.objects.get(company=jno_ready, code="606800").active is False


# --- bad input: a clear reason, the file in erreurs/ with its note, and nothing else affected -------------


def refused_alone(company: Company, name: str, content: bytes | None = None) -> str:
    """Scan ``name`` (already dropped when ``content`` is None) beside a good invoice; return the reason."""
    if content is not None:
        drop(company, name, content)
    drop(company, "bonne.xml", cii_xml(an_invoice(company, number="FA-BONNE")))
    report = intake_company(company=company)
    assert outcomes(report) == {name: Outcome.REFUSED, "bonne.xml": Outcome.CREATED}
    assert Invoice.objects.filter(company=company).get().number == "FA-BONNE"
    assert left_in(company)[ERRORS_DIR] == [name, f"{name}.txt"]
    assert left_in(company)[""] == [] and left_in(company)[CLAIMED_DIR] == []
    reason = next(item.reason for item in report.files if item.name == name)
    assert note(company, ERRORS_DIR, name).splitlines()[1] == f"Refusée : {reason}"
    return reason


def test_pdf_without_xml_is_a_paper_invoice_read_later(jno_ready):
    drop(jno_ready, "scan.pdf", minimal_pdf(["Facture papier scannée"]))
    report = intake_company(company=jno_ready)
    assert outcomes(report) == {"scan.pdf": Outcome.CREATED}
    invoice = Invoice.objects.get(pk=report.files[0].invoice_id)
    assert (invoice.source_format, invoice.scan_state, invoice.status) == ("scan-pdf", "reading", "to_complete")
    assert left_in(jno_ready)[PROCESSED_DIR] == ["scan.pdf", "scan.pdf.txt"]


def test_truncated_xml(jno_ready):
    xml = cii_xml(an_invoice(jno_ready))
    assert refused_alone(jno_ready, "coupé.xml", xml[:-200]).startswith("XML illisible (tronqué ou mal formé)")


def test_billion_laughs(jno_ready):
    started = time.monotonic()
    reason = refused_alone(jno_ready, "rires.xml", (FIXTURES / "billion-laughs.xml").read_bytes())
    assert time.monotonic() - started < 10
    assert reason.startswith("XML refusé : il déclare un DOCTYPE")


def test_external_entity_is_never_read(jno_ready, tmp_path, caplog):
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-42-never-shown")
    hostile = (FIXTURES / "xxe-etc-passwd.xml").read_bytes()
    reason = refused_alone(jno_ready, "xxe.xml", hostile)
    assert reason.startswith("XML refusé : il déclare un DOCTYPE")
    drop(jno_ready, "xxe-local.xml", hostile.replace(b"file:///etc/passwd", f"file://{secret}".encode()))
    everything = [
        reason,
        caplog.text,
        *(item.reason for item in intake_company(company=jno_ready).files),
        *(p.read_text(errors="replace") for p in folder_of(jno_ready).rglob("*.txt")),
        *Invoice.objects.values_list("number", "incomplete_reason", "label"),
        *InvoiceEvent.objects.values_list("message", flat=True),
    ]
    text = repr(everything)
    assert "SECRET-42" not in text
    assert not any(marker in text for marker in PASSWD_MARKERS)
    assert (folder_of(jno_ready) / ERRORS_DIR / "xxe-local.xml.txt").exists()


def test_fifty_megabyte_file(jno_ready):
    path = folder_of(jno_ready) / "énorme.pdf"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as stream:
        stream.write(b"%PDF-1.7\n")
        stream.truncate(50 * 1024 * 1024)  # sparse: instant, and nothing reads it
    stamp = time.time() - 60
    os.utime(path, (stamp, stamp))
    reason = refused_alone(jno_ready, "énorme.pdf")
    assert reason == "Fichier trop volumineux (50,0 Mo) : la limite est de 20 Mo."


def test_another_currency_is_imported_to_complete_with_its_currency(jno_ready):
    drop(jno_ready, "dollars.xml", cii_xml(an_invoice(jno_ready, currency="USD")))
    assert outcomes(intake_company(company=jno_ready)) == {"dollars.xml": Outcome.CREATED}
    invoice = Invoice.objects.get(company=jno_ready)
    assert (invoice.currency, invoice.exchange_rate, invoice.status) == ("USD", None, Invoice.Status.TO_COMPLETE)
    assert invoice.incomplete_reason == "Facture en USD : saisissez le cours (1 USD = … EUR)."


def test_amounts_that_do_not_add_up(jno_ready):
    wrong = an_invoice(jno_ready) | {"BT-112": "150.00", "BT-115": "150.00"}
    reason = refused_alone(jno_ready, "faux.pdf", facturx_pdf(wrong))
    assert reason == (
        "Facture incohérente selon la norme EN 16931 — BR-CO-15 : le total TTC (BT-112 = 150,00) n'est pas le total"
        " HT plus la TVA (120,00)."
    )


def test_unknown_supplier_does_not_stop_the_others(jno_ready):
    drop(jno_ready, "inconnu.xml", cii_xml(an_invoice(jno_ready, seller=seller("Inconnue SA", siren="612345678"))))
    drop(jno_ready, "bonne.xml", cii_xml(an_invoice(jno_ready, number="FA-BONNE")))
    report = intake_company(company=jno_ready)
    assert outcomes(report) == {"inconnu.xml": Outcome.CREATED, "bonne.xml": Outcome.CREATED}
    assert report.files[1].reason.startswith("Fournisseur inconnu : SIREN 612345678 (Inconnue SA).")


def test_file_still_being_written_waits_for_a_later_scan(jno_ready):
    content = facturx_pdf(an_invoice(jno_ready))
    path = drop(jno_ready, "arrive.pdf", content[:1000], age=0)
    drop(jno_ready, "bonne.xml", cii_xml(an_invoice(jno_ready, number="FA-BONNE")))

    report = intake_company(company=jno_ready)
    assert outcomes(report) == {"arrive.pdf": Outcome.PENDING, "bonne.xml": Outcome.CREATED}
    assert report.files[0].reason == "Fichier en cours d'écriture : il sera lu au prochain passage."
    assert left_in(jno_ready)[""] == ["arrive.pdf"] and left_in(jno_ready)[ERRORS_DIR] == []

    with path.open("ab") as stream:  # the scanner finishes writing, then the file settles
        stream.write(content[1000:])
    stamp = time.time() - 60
    os.utime(path, (stamp, stamp))
    report = intake_company(company=jno_ready)
    assert outcomes(report) == {"arrive.pdf": Outcome.CREATED}
    assert Invoice.objects.filter(company=jno_ready).count() == 2


def test_a_file_dated_in_the_future_is_imported(jno_ready):
    # A scanner whose clock is an hour ahead: its file has no age to wait for, nothing changed since the listing.
    drop(jno_ready, "en-avance.xml", cii_xml(an_invoice(jno_ready)), age=-3600)
    assert outcomes(intake_company(company=jno_ready)) == {"en-avance.xml": Outcome.CREATED}


def test_a_claim_is_dated_on_the_clock_that_judges_it_stale(jno_ready):
    # The claim's date is what a concurrent scan compares with its own clock: both must be the same clock (here the
    # process's, a year ahead of the kernel's), or a scan at work looks dead and its file is taken from it.
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(days=365), tick=True):
        drop(jno_ready, "illisible.xml", b"<pas une facture")
        intake_company(company=jno_ready)
        refused = folder_of(jno_ready) / ERRORS_DIR / "illisible.xml"
        assert abs(refused.stat().st_mtime - time.time()) < 60


# --- once, and only once ---------------------------------------------------------------------------------


def test_same_file_dropped_twice_is_imported_once(jno_ready):
    content = facturx_pdf(an_invoice(jno_ready))
    drop(jno_ready, "facture.pdf", content)
    drop(jno_ready, "copie.pdf", content)
    first = intake_company(company=jno_ready)
    assert outcomes(first) == {"copie.pdf": Outcome.CREATED, "facture.pdf": Outcome.DUPLICATE}
    invoice = Invoice.objects.get(company=jno_ready)
    assert first.files[1].reason == f"Déjà reçue : facture N° FA-100 (/factures/{invoice.pk}/) — même fichier."

    # Dropped again later, under its first name: refused again, kept apart from the first refusal.
    drop(jno_ready, "facture.pdf", content)
    again = intake_company(company=jno_ready)
    assert outcomes(again) == {"facture.pdf": Outcome.DUPLICATE}
    assert Invoice.objects.filter(company=jno_ready).count() == 1
    errors = left_in(jno_ready)[ERRORS_DIR]
    assert len(errors) == 4 and "facture.pdf" in errors and "facture.pdf.txt" in errors


def test_file_already_in_processed_is_not_imported_again(jno_ready):
    content = cii_xml(an_invoice(jno_ready))
    drop(jno_ready, f"{PROCESSED_DIR}/ancienne.xml", content)
    drop(jno_ready, "nouvelle.xml", content)
    report = intake_company(company=jno_ready)
    assert report.files[0].reason == "Déjà reçue : le même fichier est déjà dans traités/ (ancienne.xml)."
    assert not Invoice.objects.exists()


def test_duplicate_invoice_of_the_same_supplier_is_refused(jno_ready):
    drop(jno_ready, "original.xml", cii_xml(an_invoice(jno_ready)))
    intake_company(company=jno_ready)
    original = Invoice.objects.get(company=jno_ready)
    # Same supplier and number, another file (the PDF of the same invoice).
    drop(jno_ready, "doublon.pdf", facturx_pdf(an_invoice(jno_ready)))
    report = intake_company(company=jno_ready)
    assert outcomes(report) == {"doublon.pdf": Outcome.DUPLICATE}
    supplier = original.supplier
    assert report.files[0].reason == (
        f"Déjà reçue : facture N° FA-100 (/factures/{original.pk}/) — même facture (fournisseur, numéro, date et"
        " montant)."
    )
    # The same number again, another date: the supplier cannot have two invoices of one number.
    drop(jno_ready, "autre-date.xml", cii_xml(an_invoice(jno_ready, issue_date=dt.date(2026, 11, 3))))
    report = intake_company(company=jno_ready)
    assert report.files[0].reason == (
        f"Déjà reçue : facture N° FA-100 (/factures/{original.pk}/) — F0001 {supplier.label} a déjà une facture"
        " de ce numéro."
    )
    assert Invoice.objects.filter(company=jno_ready).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_scans_at_once_import_each_file_exactly_once(jno_ready):
    names = []
    for index in range(12):
        name = f"facture-{index:02d}.{'xml' if index % 2 else 'pdf'}"
        data = an_invoice(jno_ready, number=f"FA-{index:03d}", code=f"F{index + 1:04d}")
        drop(jno_ready, name, cii_xml(data) if index % 2 else facturx_pdf(data))
        names.append(name)
    # The same file under another name, read by the other scan at the same moment: imported once all the same.
    drop(jno_ready, "zz-copie.xml", (folder_of(jno_ready) / "facture-01.xml").read_bytes())
    start = threading.Barrier(2)
    reports, errors = [], []

    def scan():
        try:
            start.wait()
            reports.append(intake_company(company=Company.objects.get(pk=jno_ready.pk)))
        except Exception as error:  # surfaced below: a thread's exception would be lost
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=scan) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == [] and len(reports) == 2
    handled = {item.name: item for report in reports for item in report.files}
    assert sorted(handled) == sorted([*names, "zz-copie.xml"])
    imported = sorted(name for name, item in handled.items() if item.outcome == Outcome.CREATED)
    [twin] = set(handled) - set(imported)
    assert twin in ("facture-01.xml", "zz-copie.xml")
    assert handled[twin].outcome == Outcome.DUPLICATE and handled[twin].reason.startswith("Déjà reçue : ")
    assert Invoice.objects.filter(company=jno_ready).count() == 12
    assert left_in(jno_ready)[PROCESSED_DIR] == sorted(n + s for n in imported for s in ("", ".txt"))
    assert left_in(jno_ready)[ERRORS_DIR] == [twin, f"{twin}.txt"] and left_in(jno_ready)[CLAIMED_DIR] == []


def test_long_names_keep_room_for_their_note(jno_ready):
    name = "a" + "é" * 120 + ".xml"  # 245 bytes: the name fits, a unique variant of it is cut (between characters)
    drop(jno_ready, name, cii_xml(an_invoice(jno_ready, number="FA-1")))
    intake_company(company=jno_ready)
    drop(jno_ready, name, cii_xml(an_invoice(jno_ready, number="FA-2")))
    report = intake_company(company=jno_ready)
    assert outcomes(report) == {name: Outcome.CREATED}
    processed = left_in(jno_ready)[PROCESSED_DIR]
    assert len(processed) == 4 and all(len(os.fsencode(n)) <= 255 for n in processed)
    second = Invoice.objects.get(number="FA-2")
    assert second.source_file.endswith(".xml") and second.source_file != f"C0071000325_data_6/traités/{name}"
    assert Path(second.source_file).name in processed


def test_file_left_in_progress_by_a_dead_scan_is_taken_back(jno_ready):
    claimed = folder_of(jno_ready) / CLAIMED_DIR
    drop(jno_ready, f"{CLAIMED_DIR}/orpheline.xml", cii_xml(an_invoice(jno_ready)), age=STALE_CLAIM_SECONDS + 60)
    drop(jno_ready, f"{CLAIMED_DIR}/en-main.xml", cii_xml(an_invoice(jno_ready, number="FA-2")), age=30)
    report = intake_company(company=jno_ready)
    assert outcomes(report) == {"orpheline.xml": Outcome.CREATED}
    # A claim younger than the limit belongs to a scan still at work.
    assert sorted(p.name for p in claimed.iterdir()) == ["en-main.xml"]


def test_subfolders_of_the_scan_folder_are_not_read(jno_ready):
    drop(jno_ready, "archives/vieille.xml", b"<old/>")
    report = intake_company(company=jno_ready)
    assert report.files == []
    assert (folder_of(jno_ready) / "archives" / "vieille.xml").read_bytes() == b"<old/>"


def test_scan_directory_must_stay_under_the_scan_root(connector, scan_root):
    outside = make_company(connector, "EVIL", scan_directory="../../etc")
    report = intake_company(company=outside)
    assert report.error == "La société EVIL est inactive ou n'a pas de répertoire de scan utilisable."
    assert report.files == []
    none = make_company(connector, "NONE")
    assert intake_company(company=none).error


def test_unreadable_scan_folder_is_reported(jno_ready):
    drop(jno_ready, PROCESSED_DIR, b"un fichier, pas un dossier")
    report = intake_company(company=jno_ready)
    assert report.error == (
        "Le dossier de travail « traités » n'est pas un dossier (lien symbolique ou fichier) : refusé, SFD ne suit"
        " jamais un lien hors du répertoire de scan."
    )


# --- tasks and command ------------------------------------------------------------------------------------


def test_tasks_read_every_company_with_a_scan_directory(jno_ready, multi_ready, connector):
    make_company(connector, "SANS")  # no scan directory: not read
    drop(jno_ready, "jno.xml", cii_xml(an_invoice(jno_ready)))
    drop(multi_ready, "multi.xml", cii_xml(an_invoice(multi_ready)))
    assert intake_company_task(jno_ready.pk)["created"] == 1
    assert intake_company_task(999_999) == {"company_id": 999_999, "error": "missing"}
    celery_app.conf.task_always_eager = True
    try:
        assert intake_all_companies() == 2
    finally:
        celery_app.conf.task_always_eager = False
    assert Invoice.objects.filter(company=multi_ready, supplier__code="F0001").exists()


def test_import_invoices_command_prints_the_report_in_french(jno_ready):
    drop(jno_ready, "coupé.xml", cii_xml(an_invoice(jno_ready))[:-100])
    drop(jno_ready, "bonne.xml", cii_xml(an_invoice(jno_ready)))
    out = io.StringIO()
    call_command("import_invoices", "--company", "JNO", stdout=out)
    invoice = Invoice.objects.get(company=jno_ready)
    lines = out.getvalue().splitlines()
    assert lines[:2] == [
        "JNO (C0071000325_data_6) : 2 fichiers — 1 facture créée, 0 déjà reçue, 1 refusée, 0 ignorée, 0 en attente",
        f"  bonne.xml : facture créée — facture id {invoice.pk}",
    ]
    assert lines[2].startswith("  coupé.xml : refusée — XML illisible (tronqué ou mal formé)")
    assert lines[3:] == ["1 fichier non importé : voyez le .txt à côté de lui dans erreurs/."]
    with pytest.raises(CommandError, match="Société inconnue, inactive ou sans répertoire de scan : NOPE"):
        call_command("import_invoices", "--company", "NOPE", stdout=io.StringIO())


def test_a_pass_reads_the_referential_once_and_each_file_costs_a_few_statements(jno_ready):
    """The supplier, its account and the tax codes are read once per pass, not once per file; each file is its
    claim row, the duplicate checks, the invoice, its lines and event, and its row again (issue 17: 19 statements a
    file, the twin check twice, the lines read back, the status written twice)."""
    from django.test.utils import CaptureQueriesContext

    for index in range(4):
        drop(jno_ready, f"facture-{index}.xml", cii_xml(an_invoice(jno_ready, number=f"FA-{200 + index}")))

    with CaptureQueriesContext(connection) as captured:
        report = intake_company(company=jno_ready)

    assert set(outcomes(report).values()) == {Outcome.CREATED}
    assert Invoice.objects.filter(company=jno_ready).count() == 4
    statements = [query["sql"] for query in captured.captured_queries]
    for table in ('"companies_supplier"', '"companies_taxcode"', '"companies_account"'):
        assert sum(f"FROM {table}" in sql for sql in statements) <= 1, table
    assert not any(sql.startswith('UPDATE "invoices_invoice"') for sql in statements)
    assert not any('FROM "invoices_invoiceline"' in sql for sql in statements)
    # Per file: the pending row looked up, the claim row, the file's twin, the lock, the duplicate checks, the
    # invoice, its event, the row's outcome (the lines are one COPY, not counted here), and here the savepoint of
    # its transaction and its release (the test runs in a transaction of its own); per pass: the folder's
    # conflicts, the supplier, the tax codes, the account. (On SQLite the lines are one INSERT, left out too.)
    counted = [sql for sql in statements if 'INSERT INTO "invoices_invoiceline"' not in sql]
    assert len(counted) <= 10 * 4 + 4
