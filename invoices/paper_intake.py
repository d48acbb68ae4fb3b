"""The intake's side of a paper invoice: recognise a scan by its bytes, create its invoice, enqueue its reading.

Rule: nothing here reads the document beyond its first bytes; the reading is the worker's (``invoices.paper``).
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils.translation import gettext as _

from companies.models import Company

from .models import Invoice, ScanState
from .scan import KIND_LABELS, ScanError, document_kind
from .services import invoice_create

IMAGE_KINDS = ("tiff", "jpeg", "png")
SOURCE_PREFIX = "scan-"

logger = logging.getLogger(__name__)


def image_kind(data: bytes) -> str | None:
    """The kind of an image file (TIFF, JPEG, PNG), recognised by its bytes; None for anything else."""
    try:
        kind = document_kind(data)
    except ScanError:
        return None
    return kind if kind in IMAGE_KINDS else None


def reading_message() -> str:
    return _("Lecture du document en cours (OCR) : les champs seront pré-remplis dans quelques instants.")


def paper_invoice_create(*, company: Company, source_file: str, digest: str, kind: str, actor) -> Invoice:
    """The invoice of a scan, *à compléter* « lecture en cours »; its reading is enqueued after the commit."""
    label = KIND_LABELS.get(kind, kind.upper())
    invoice = invoice_create(
        company=company,
        supplier=None,
        number="",
        lines=[],
        actor=actor,
        event_message=_("Facture papier (%(kind)s) reçue du répertoire de scan : %(path)s.")
        % {"kind": label, "path": source_file},
        source_file=source_file,
        source_hash=digest,
        source_format=f"{SOURCE_PREFIX}{kind}",
    )
    invoice.status = Invoice.Status.TO_COMPLETE
    invoice.incomplete_reason = reading_message()
    invoice.scan_state = ScanState.READING
    invoice.save(update_fields=["status", "incomplete_reason", "scan_state"])
    invoice_id = invoice.pk
    transaction.on_commit(lambda: enqueue_reading(invoice_id))
    return invoice


def enqueue_reading(invoice_id: int) -> None:
    """Send the reading to a worker. A broker that does not answer loses nothing: the invoice stays « lecture en
    cours » and ``paper.paper_reap`` (a beat entry) sends it again; the intake's file and row are already right."""
    from .tasks import paper_read_task  # the tasks module imports this one

    try:
        paper_read_task.delay(invoice_id)
    except Exception:  # kombu's errors vary with the broker; the reaper is the recovery
        logger.warning(
            "paper: reading of invoice %s not sent (broker); the reaper will send it", invoice_id, exc_info=True
        )
