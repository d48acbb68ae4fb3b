"""Paper invoices through the « Répertoire de scan »: the intake creates the invoice at once, the worker's reading
(``paper_read``, what ``paper_read_task`` runs) pre-fills it. Real files, the real database, the Sage stub's
referential, the real Tesseract."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from PIL import Image

from config.celery import app as celery_app
from invoices import scan
from invoices.intake import ERRORS_DIR, PROCESSED_DIR, Outcome, intake_company
from invoices.models import IntakeFile, Invoice, ScanState
from invoices.paper import paper_read, paper_reap
from invoices.samples import samples_for_company
from invoices.samples.build_samples import minimal_pdf
from invoices.tasks import paper_read_task
from tests.support.intake import drop, folder_of, left_in, note, outcomes

SCANS = Path(__file__).parent / "fixtures" / "scans"
pytestmark = pytest.mark.django_db


@pytest.fixture
def no_tesseract(monkeypatch):
    """Tesseract uninstalled, as on a machine without the Debian package: its program is not found."""
    import pytesseract

    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    scan.tesseract_languages.cache_clear()
    yield
    scan.tesseract_languages.cache_clear()


def dropped_scan(company, name="fr-demo-fa-2026-0501.jpg", as_name=None) -> tuple[Invoice, bytes]:
    data = (SCANS / name).read_bytes()
    drop(company, as_name or name, data)
    report = intake_company(company=company)
    assert outcomes(report) == {as_name or name: Outcome.CREATED}
    return Invoice.objects.get(pk=report.files[0].invoice_id), data


def test_a_scanned_image_becomes_one_invoice_being_read_its_document_kept(jno_ready):
    invoice, data = dropped_scan(jno_ready)

    assert (invoice.company, invoice.status, invoice.scan_state) == (
        jno_ready,
        Invoice.Status.TO_COMPLETE,
        ScanState.READING,
    )
    assert invoice.get_scan_state_display() == "lecture en cours"
    assert invoice.incomplete_reason.startswith("Lecture du document en cours (OCR)")
    assert (invoice.supplier, invoice.number, invoice.source_format) == (None, "", "scan-jpeg")
    # Kept unchanged where e-invoices' sources are, accounted for on « Imports ».
    assert left_in(jno_ready)[PROCESSED_DIR] == ["fr-demo-fa-2026-0501.jpg", "fr-demo-fa-2026-0501.jpg.txt"]
    assert (folder_of(jno_ready) / PROCESSED_DIR / "fr-demo-fa-2026-0501.jpg").read_bytes() == data
    assert invoice.source_file == f"{jno_ready.scan_directory}/{PROCESSED_DIR}/fr-demo-fa-2026-0501.jpg"
    record = IntakeFile.objects.get(invoice=invoice)
    assert (record.outcome, record.path) == (Outcome.CREATED, invoice.source_file)


def test_a_pdf_without_einvoice_and_a_tiff_and_a_png_are_scans_too(jno_ready):
    drop(jno_ready, "papier.pdf", minimal_pdf(["Facture papier scannée"]))
    drop(jno_ready, "page.tif", (SCANS / "fr-demo-fa-2026-0610.tif").read_bytes())
    drop(jno_ready, "avoir.png", (SCANS / "fr-demo-av-2026-0031.png").read_bytes())
    drop(jno_ready, "texte.txt", b"pas une facture")

    report = intake_company(company=jno_ready)

    assert outcomes(report) == {
        "papier.pdf": Outcome.CREATED,
        "page.tif": Outcome.CREATED,
        "avoir.png": Outcome.CREATED,
        "texte.txt": Outcome.REFUSED,
    }
    formats = set(Invoice.objects.filter(company=jno_ready).values_list("source_format", flat=True))
    assert formats == {"scan-pdf", "scan-tiff", "scan-png"}


@pytest.mark.tesseract
def test_the_reading_prefills_supplier_number_dates_totals_and_the_account(jno_ready):
    invoice, _data = dropped_scan(jno_ready)

    assert paper_read(invoice_id=invoice.pk) == ScanState.READ

    invoice.refresh_from_db()
    assert invoice.scan_state == ScanState.READ
    assert invoice.status == Invoice.Status.TO_COMPLETE  # checked against the document before validating
    assert (invoice.supplier.code, invoice.number, invoice.invoice_date) == (
        "F0001",
        "FA-2026-0501",
        dt.date(2026, 11, 2),
    )
    assert (invoice.total_ht, invoice.total_tva, invoice.total_ttc) == (Decimal("250"), Decimal("50"), Decimal("300"))
    line = invoice.lines.get()
    assert (line.amount_ht, line.account.code, line.tax_code.rate) == (
        Decimal("250.00"),
        invoice.supplier.expense_account_code,
        Decimal("20.00"),
    )
    fields = invoice.scan["fields"]
    assert fields["supplier"]["prefilled"] and fields["supplier"]["level"] == "high"
    assert fields["number"]["value"] == "FA-2026-0501" and fields["number"]["page"] == 1
    assert 0 < fields["total_ttc"]["confidence"] <= 1
    assert invoice.scan["totals_agree"] is True
    assert invoice.scan["pages"] == 1 and invoice.scan["words"]
    assert IntakeFile.objects.get(invoice=invoice).reason.startswith("Facture papier lue : champs pré-remplis")
    # A second delivery of the same task finds nothing to do.
    assert paper_read(invoice_id=invoice.pk) == "taken"


def test_without_tesseract_the_invoice_stays_unfilled_with_the_reason(jno_ready, no_tesseract):
    invoice, _data = dropped_scan(jno_ready)

    assert paper_read(invoice_id=invoice.pk) == ScanState.UNAVAILABLE

    invoice.refresh_from_db()
    assert (invoice.status, invoice.supplier, invoice.number) == (Invoice.Status.TO_COMPLETE, None, "")
    assert invoice.incomplete_reason.startswith("OCR indisponible : installez tesseract-ocr et tesseract-ocr-fra")
    assert invoice.get_scan_state_display() == "OCR indisponible"
    assert IntakeFile.objects.get(invoice=invoice).reason.startswith("OCR indisponible")


def test_a_document_that_cannot_be_read_leaves_the_invoice_to_complete_with_the_reason(jno_ready):
    image = io.BytesIO()
    Image.new("L", (800, 1100), 255).save(image, "PNG")
    broken = image.getvalue()[:60] + b"\x00" * 400
    drop(jno_ready, "abîmée.png", broken)
    report = intake_company(company=jno_ready)
    invoice = Invoice.objects.get(pk=report.files[0].invoice_id)

    assert paper_read(invoice_id=invoice.pk) == ScanState.UNREADABLE

    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.TO_COMPLETE
    assert invoice.incomplete_reason.startswith("Document illisible : ")
    assert invoice.incomplete_reason.endswith("Saisissez la facture en la lisant.")


@pytest.mark.tesseract
def test_a_scan_of_an_einvoice_already_received_is_flagged_and_not_imported_twice(jno_ready):
    einvoice = next(path for path in samples_for_company("JNO") if path.name == "FA-2026-0501.pdf")
    drop(jno_ready, einvoice.name, einvoice.read_bytes())
    intake_company(company=jno_ready)
    first = Invoice.objects.get(company=jno_ready, number="FA-2026-0501")
    invoice, _data = dropped_scan(jno_ready, as_name="scan-0501.jpg")

    assert paper_read(invoice_id=invoice.pk) == "duplicate"

    assert not Invoice.objects.filter(pk=invoice.pk).exists()
    assert list(Invoice.objects.filter(company=jno_ready)) == [first]
    record = IntakeFile.objects.get(name="scan-0501.jpg")
    assert (record.outcome, record.invoice) == (Outcome.DUPLICATE, first)
    assert record.reason.startswith(f"Déjà reçue : facture N° FA-2026-0501 (/factures/{first.pk}/)")
    assert "scan-0501.jpg" in left_in(jno_ready)[ERRORS_DIR]
    assert note(jno_ready, ERRORS_DIR, "scan-0501.jpg").splitlines()[1] == record.reason
    assert record.path.endswith(f"{ERRORS_DIR}/scan-0501.jpg")


@pytest.mark.tesseract
def test_a_second_scan_of_a_scan_already_read_is_flagged_too(jno_ready):
    first, _data = dropped_scan(jno_ready)
    paper_read(invoice_id=first.pk)
    other = (SCANS / "fr-demo-fa-2026-0501.jpg").read_bytes() + b"\x00"  # another file of the same page
    drop(jno_ready, "encore.jpg", other)
    second = Invoice.objects.get(pk=intake_company(company=jno_ready).files[0].invoice_id)

    assert paper_read(invoice_id=second.pk) == "duplicate"
    assert IntakeFile.objects.get(name="encore.jpg").invoice_id == first.pk


@pytest.mark.tesseract
def test_a_reading_lost_with_its_worker_is_read_again(jno_ready, settings):
    settings.PAPER_READ_SECONDS = 120
    with time_machine.travel(dt.datetime(2026, 11, 3, 9, 0, tzinfo=dt.UTC), tick=False) as clock:
        invoice, _data = dropped_scan(jno_ready)
        # A worker took it, then died (its claim is written, nothing else).
        Invoice.objects.filter(pk=invoice.pk).update(scan_claimed_at=dt.datetime(2026, 11, 3, 9, 0, tzinfo=dt.UTC))
        assert paper_reap() == 0
        assert paper_read(invoice_id=invoice.pk) == "taken"
        clock.shift(121)
        celery_app.conf.task_always_eager = True
        try:
            assert paper_reap() == 1
        finally:
            celery_app.conf.task_always_eager = False
    invoice.refresh_from_db()
    assert (invoice.scan_state, invoice.number) == (ScanState.READ, "FA-2026-0501")


def test_the_task_has_a_time_limit():
    from django.conf import settings

    assert paper_read_task.time_limit == settings.PAPER_READ_SECONDS
    assert paper_read_task.soft_time_limit == settings.PAPER_READ_SECONDS - 30
    assert "invoices-paper-reap" in celery_app.conf.beat_schedule


def test_a_scan_addressed_to_another_company_of_the_group_goes_there(jno_ready, multi_ready):
    from invoices.paper import _addressee
    from invoices.scan_fields import Found, Party, Reading, Source

    drop(jno_ready, "pour-multi.pdf", minimal_pdf(["Facture papier"]))
    invoice = Invoice.objects.get(pk=intake_company(company=jno_ready).files[0].invoice_id)

    def read(confidence: float) -> Reading:
        siren = Found(multi_ready.siren, confidence, Source(1, f"SIREN {multi_ready.siren}", "label"))
        return Reading(supplier=Party(), buyer=Party(siren=siren))

    assert _addressee(invoice, read(0.95)) == multi_ready
    # A buyer read without a high confidence, or that is no company of the group, leaves it where it was dropped.
    assert _addressee(invoice, read(0.6)) == jno_ready
    assert _addressee(invoice, Reading(supplier=Party(), buyer=Party())) == jno_ready
    unknown = Found("999999998", 0.95, Source(1, "SIREN 999999998", "label"))
    assert _addressee(invoice, Reading(supplier=Party(), buyer=Party(siren=unknown))) == jno_ready


def test_a_broker_that_does_not_answer_loses_no_scan(jno_ready, monkeypatch, django_capture_on_commit_callbacks):
    """The reading cannot be sent (Redis down): the invoice, its file in traités/ and its Imports row stand as
    created; the reaper sends the reading later."""

    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("[Errno 111] Connection refused")

    monkeypatch.setattr(paper_read_task, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        invoice, _data = dropped_scan(jno_ready)
    assert callbacks, "the reading is sent after the commit"
    invoice.refresh_from_db()
    assert (invoice.scan_state, invoice.status) == (ScanState.READING, Invoice.Status.TO_COMPLETE)
    record = IntakeFile.objects.get(invoice=invoice)
    assert record.outcome == Outcome.CREATED and f"/{PROCESSED_DIR}/" in f"/{record.path}"


def test_a_reading_stopped_by_its_time_limit_or_a_defect_is_never_left_in_progress(jno_ready, monkeypatch):
    from celery.exceptions import SoftTimeLimitExceeded

    from invoices import paper

    invoice, _data = dropped_scan(jno_ready)

    def too_long(*args, **kwargs):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(paper, "read_document", too_long)
    assert paper_read(invoice_id=invoice.pk) == ScanState.UNREADABLE
    invoice.refresh_from_db()
    assert invoice.scan_state == ScanState.UNREADABLE and invoice.status == Invoice.Status.TO_COMPLETE
    assert "la lecture s'est interrompue (SoftTimeLimitExceeded)" in invoice.incomplete_reason
    # No longer « lecture en cours »: the accountant may type it in.
    from invoices.services import invoice_locked_reason

    assert invoice_locked_reason(invoice) is None


def test_a_reading_lost_three_times_is_given_up_not_sent_forever(jno_ready, settings):
    settings.PAPER_READ_SECONDS = 120
    with time_machine.travel(dt.datetime(2026, 11, 3, 9, 0, tzinfo=dt.UTC), tick=False) as clock:
        invoice, _data = dropped_scan(jno_ready)
        Invoice.objects.filter(pk=invoice.pk).update(scan={"attempts": 3})  # three workers died reading it
        assert paper_read(invoice_id=invoice.pk) == ScanState.UNREADABLE
        clock.shift(10_000)
        assert paper_reap() == 0
    invoice.refresh_from_db()
    assert invoice.scan_state == ScanState.UNREADABLE
    assert "la lecture s'est interrompue 3 fois" in invoice.incomplete_reason


def test_a_worker_whose_reading_was_taken_over_writes_nothing(jno_ready):
    from invoices import paper

    invoice, _data = dropped_scan(jno_ready)
    claimed_at, attempt = paper._claim(invoice.pk)
    assert attempt == 1
    # It outlived its limit: another worker took the reading over (a later claim).
    Invoice.objects.filter(pk=invoice.pk).update(scan_claimed_at=claimed_at + dt.timedelta(minutes=11))

    assert paper._finish(invoice, ScanState.UNREADABLE, "trop tard", claimed_at) == "taken"
    invoice.refresh_from_db()
    assert invoice.scan_state == ScanState.READING and "trop tard" not in invoice.incomplete_reason
