"""Paper invoices from the « Répertoire de scan »: created at once by the intake, read by OCR in the worker.

Rule: neither a web request nor the intake ever runs OCR. The intake (``intake._import_paper``) creates one invoice
*à compléter*, « lecture en cours », its document kept unchanged in ``traités/`` (as an e-invoice's source), and
enqueues ``tasks.paper_read_task`` after the commit. The task claims the reading with a conditional UPDATE (two
workers never read one invoice; a reading older than ``PAPER_READ_SECONDS`` was lost with its worker and is
claimed again — ``paper_reap``, a beat entry, sends it again), reads the document (``scan.read_document``) and
pre-fills what it read (``paper_fill``):
- Tesseract missing (``OcrUnavailable``): the invoice stays, without pre-filled fields, with the French reason;
- a document or a page that cannot be read: *à compléter* with the reason;
- a buyer that is another company of the group (read with a high confidence): the invoice moves there, as an
  e-invoice is routed (``intake._addressee``);
- the same invoice already received (same supplier and number, or same supplier, number, date and total TTC,
  as a scan or an e-invoice): « déjà reçue » — the new invoice is removed, its file goes to ``erreurs/`` with its
  note and the Imports row links to the first one, as the intake does with an e-invoice's twin.
"""

from __future__ import annotations

import contextlib
import logging
import os
from datetime import timedelta
from pathlib import PurePosixPath
from types import SimpleNamespace

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from companies.models import Company

from . import intake, paper_learning
from .imports import IntakeFileUnavailable, intake_file_open
from .models import IntakeFile, Invoice, InvoiceEvent, ScanState
from .paper_fill import Prefill, prefill
from .paper_intake import enqueue_reading
from .scan import Limits, OcrUnavailable, ScanError, read_document
from .scan_fields import HIGH, read_fields
from .services import LineData, invoice_event, invoice_prefill

logger = logging.getLogger(__name__)

Outcome = IntakeFile.Outcome


def read_seconds() -> int:
    """How long one reading may take before it is taken for lost: the task's own hard limit."""
    return int(getattr(settings, "PAPER_READ_SECONDS", 600))


MAX_ATTEMPTS = 3


def _claimable(invoice_id: int):
    stale = timezone.now() - timedelta(seconds=read_seconds())
    return Invoice.objects.filter(pk=invoice_id, scan_state=ScanState.READING).filter(
        Q(scan_claimed_at__isnull=True) | Q(scan_claimed_at__lt=stale)
    )


def _claim(invoice_id: int) -> tuple[object, int] | None:
    """Take the reading (a conditional UPDATE: one worker at a time) and count the attempt; the claim's time, which
    every write of the reading's outcome checks, and the attempt's number. None when another worker holds it."""
    row = _claimable(invoice_id).values("scan").first()
    if row is None:
        return None
    attempts = int((row["scan"] or {}).get("attempts", 0)) + 1
    now = timezone.now()
    taken = _claimable(invoice_id).update(scan_claimed_at=now, scan={**(row["scan"] or {}), "attempts": attempts})
    return (now, attempts) if taken == 1 else None


def _still_ours(invoice: Invoice, claimed_at) -> bool:
    """Whether the reading is still this worker's (locks the invoice's row until the commit): a worker that outlived
    its limit while another read the invoice, or whose invoice was typed in since, writes nothing."""
    return (
        Invoice.objects.select_for_update()
        .filter(pk=invoice.pk, scan_state=ScanState.READING, scan_claimed_at=claimed_at)
        .exists()
    )


def _intake_file(invoice: Invoice) -> IntakeFile | None:
    return IntakeFile.objects.filter(invoice=invoice, outcome=Outcome.CREATED).select_related("company").first()


def document_bytes(invoice: Invoice) -> bytes:
    """The stored document, read where the intake put it (no link followed); ``IntakeFileUnavailable`` otherwise."""
    shim = IntakeFile(path=invoice.source_file, name=PurePosixPath(invoice.source_file).name, name_bytes=b"")
    opened = intake_file_open(intake_file=shim)
    with opened.stream as stream:
        return stream.read(intake.MAX_BYTES + 1)


def paper_read(*, invoice_id: int, limits: Limits | None = None) -> str:
    """Read a paper invoice and pre-fill it; what became of it (``ScanState``, « taken » or « missing »)."""
    claim = _claim(invoice_id)
    if claim is None:
        return "taken" if Invoice.objects.filter(pk=invoice_id).exists() else "missing"
    claimed_at, attempt = claim
    invoice = Invoice.objects.select_related("company").get(pk=invoice_id)
    if attempt > MAX_ATTEMPTS:
        # Lost with its worker (or stopped by its time limit) that many times: typed by hand, never read forever.
        why = _("la lecture s'est interrompue %(n)d fois (document trop long ou trop lourd).") % {"n": MAX_ATTEMPTS}
        return _finish(invoice, ScanState.UNREADABLE, _("Document illisible : %(why)s") % {"why": why}, claimed_at)
    try:
        return _read(invoice, claimed_at, limits)
    except Exception as error:  # the time limit (SoftTimeLimitExceeded) or a defect: never left « en cours »
        logger.exception("paper: reading of invoice %s stopped", invoice.pk)
        why = _("la lecture s'est interrompue (%(error)s).") % {"error": type(error).__name__}
        return _finish(invoice, ScanState.UNREADABLE, _("Document illisible : %(why)s") % {"why": why}, claimed_at)


def _read(invoice: Invoice, claimed_at, limits: Limits | None) -> str:
    try:
        data = document_bytes(invoice)
        document = read_document(data, limits=limits)
    except OcrUnavailable as error:
        return _finish(invoice, ScanState.UNAVAILABLE, str(error), claimed_at)
    except (ScanError, IntakeFileUnavailable) as error:
        return _finish(invoice, ScanState.UNREADABLE, _("Document illisible : %(why)s") % {"why": error}, claimed_at)
    if not document.read_pages:
        why = " ".join(document.reasons) or _("aucune page n'a pu être lue.")
        return _finish(invoice, ScanState.UNREADABLE, _("Document illisible : %(why)s") % {"why": why}, claimed_at)
    reading = read_fields(document.pages)
    target = _addressee(invoice, reading)
    filled = prefill(company=target, document=document, reading=reading, learned_account=paper_learning.learned_account)
    learned_number = paper_learning.learned_number(filled.supplier, document) if filled.supplier else None
    if learned_number is not None:
        filled = prefill(
            company=target,
            document=document,
            reading=reading,
            learned_account=paper_learning.learned_account,
            learned_number=learned_number,
        )
    return _apply(invoice, target, filled, claimed_at)


def _finish(invoice: Invoice, state: str, reason: str, claimed_at) -> str:
    """The reading ends without pre-filled fields: the invoice stays *à compléter*, the reason on it."""
    with transaction.atomic():
        if not _still_ours(invoice, claimed_at):
            return "taken"
        Invoice.objects.filter(pk=invoice.pk).update(
            scan_state=state,
            status=Invoice.Status.TO_COMPLETE,
            incomplete_reason=_("%(why)s Saisissez la facture en la lisant.") % {"why": reason},
            scan={"reason": reason, "fields": {}},
            updated_at=timezone.now(),
        )
        invoice_event(invoice=invoice, actor=None, kind=InvoiceEvent.Kind.SCAN, message=reason)
        IntakeFile.objects.filter(invoice=invoice, outcome=Outcome.CREATED).update(reason=reason)
    logger.info("paper: invoice %s %s: %s", invoice.pk, state, reason)
    return state


def _addressee(invoice: Invoice, reading) -> Company:
    """The company of the group the scan is addressed to, when its buyer was read surely; else the folder's."""
    buyer = reading.buyer
    siren = buyer.siren.value if buyer.siren and buyer.siren.confidence >= HIGH else ""
    vat = buyer.vat.value if buyer.vat and buyer.vat.confidence >= HIGH else ""
    if not siren and not vat:
        return invoice.company
    label = " ".join(part for part in (buyer.name.value if buyer.name else "", siren or vat) if part)
    parsed = SimpleNamespace(buyer=SimpleNamespace(identified=True, siren=siren, vat=vat, label=label))
    try:
        target, _routing = intake._addressee(invoice.company, parsed)
    except intake._Refused:
        # A misread identifier must not refuse a paper invoice: it stays where it was dropped.
        return invoice.company
    return target


def _twin(target: Company, invoice: Invoice, filled: Prefill) -> Invoice | None:
    supplier, number = filled.supplier, filled.fields.get("number")
    if supplier is None or not number:
        return None
    same = Invoice.objects.exclude(pk=invoice.pk)
    twin = same.filter(company=target, supplier=supplier, number=number).order_by("pk").first()
    if twin is None and filled.fields.get("invoice_date") and filled.fields.get("total_ttc") is not None:
        twin = (
            same.filter(
                company__connector_id=target.connector_id,
                supplier__code=supplier.code,
                number=number,
                invoice_date=filled.fields["invoice_date"],
                total_ttc=filled.fields["total_ttc"],
            )
            .order_by("pk")
            .first()
        )
    return twin


def _apply(invoice: Invoice, target: Company, filled: Prefill, claimed_at) -> str:
    with transaction.atomic():
        # Serialised with the intake's imports of the company: the twin check holds until the commit.
        Company.objects.select_for_update().only("pk").get(pk=target.pk)
        if not _still_ours(invoice, claimed_at):
            return "taken"
        twin = _twin(target, invoice, filled)
        if twin is not None:
            return _duplicate(invoice, twin)
        record = _intake_file(invoice)
        routed = target.pk != invoice.company_id
        if routed:
            Invoice.objects.filter(pk=invoice.pk).update(company=target)
            invoice.company = target
            if record is not None:
                IntakeFile.objects.filter(pk=record.pk).update(routed_to=target)
        reasons = list(filled.reasons)
        if routed:
            reasons.insert(
                0, _("Adressée à la société %(code)s : facture créée dans %(code)s.") % {"code": target.code}
            )
        invoice_prefill(
            invoice=invoice,
            supplier=filled.supplier,
            fields=filled.fields,
            lines=[LineData(**vars(line)) for line in filled.lines],
            scan=filled.scan,
            reasons=reasons,
            message=_("Document lu (%(pages)s) : champs pré-remplis, à vérifier sur le document.")
            % {"pages": _pages_words(filled.scan.get("pages") or 0)},
        )
        Invoice.objects.filter(pk=invoice.pk).update(scan_state=ScanState.READ)
        said = _("Facture papier lue : champs pré-remplis, à vérifier sur le document.")
        IntakeFile.objects.filter(invoice=invoice, outcome=Outcome.CREATED).update(reason="\n".join([said, *reasons]))
    return ScanState.READ


def _pages_words(count: int) -> str:
    return ngettext("%(n)d page", "%(n)d pages", count) % {"n": count}


def _duplicate(invoice: Invoice, twin: Invoice) -> str:
    """The scan is an invoice already received: its invoice goes, its file goes to ``erreurs/``, its row says so."""
    reason = intake.already_received(twin, _("même facture (fournisseur, numéro, date et montant)"))
    record = _intake_file(invoice)
    if record is not None:
        path = record.path
        with contextlib.suppress(intake.FolderError, OSError), intake.open_scan_folder(record.company) as folder:
            name = PurePosixPath(record.path).name
            target = intake._free_name(folder, intake.ERRORS_DIR, name)
            os.rename(name, target, src_dir_fd=folder.fd(intake.PROCESSED_DIR), dst_dir_fd=folder.fd(intake.ERRORS_DIR))
            path = folder.path(intake.ERRORS_DIR, target)  # where the file is now, whatever follows
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name + intake.NOTE_SUFFIX, dir_fd=folder.fd(intake.PROCESSED_DIR))
            intake._write_note(folder, intake.ERRORS_DIR, target, reason)
        IntakeFile.objects.filter(pk=record.pk).update(
            outcome=Outcome.DUPLICATE, reason=reason, invoice=twin, path=path, updated_at=timezone.now()
        )
    invoice.delete()
    logger.info("paper: invoice %s is %s received before; removed", invoice.pk, twin.pk)
    return "duplicate"


def paper_reap() -> int:
    """Send again the readings lost with their worker (claimed longer ago than a reading may take), and those never
    claimed (the message lost before a worker took it)."""
    stale = timezone.now() - timedelta(seconds=read_seconds())
    lost = list(
        Invoice.objects.filter(scan_state=ScanState.READING)
        .filter(Q(scan_claimed_at__lt=stale) | Q(scan_claimed_at__isnull=True, created_at__lt=stale))
        .values_list("pk", flat=True)[:500]
    )
    for invoice_id in lost:
        enqueue_reading(invoice_id)
    return len(lost)
