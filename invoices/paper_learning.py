"""Learning from the accountant's corrections of paper invoices, per supplier.

Rule: what she saved is the truth. Each save of a pre-filled paper invoice with a supplier records, per pre-filled
field, the value read and the value kept (``ScanFieldOutcome``, one row per invoice and field, updated by later
saves). The next invoice of the same supplier uses them: the expense account she chose last (over the
referential's default), and where on this supplier's layout the number lies (the words at that place of the page
are read as the number, with a high confidence). The share of fields kept as read, per supplier, is shown on
« Imports ».
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Q

from companies.models import Account, Supplier

from .models import Invoice, ScanFieldOutcome
from .scan import ScannedDocument
from .scan_fields import HOW_LAYOUT, Found, Source
from .scan_text import Box

FIELDS = ("number", "invoice_date", "due_date", "total_ht", "total_tva", "total_ttc")
# The learned box is widened by this share of the page above and below: a scan is never placed twice the same.
SLACK = 0.004
LEARNED_CONFIDENCE = 0.9


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return str(value)


def _number_box(words: list[list], number: str) -> tuple[int, list[float]] | None:
    """Where the number lies on the page: the consecutive words that spell it (spaces aside)."""
    target = number.replace(" ", "")
    if not target:
        return None
    for start, first in enumerate(words):
        spelled, box = "", list(first[2:6])
        for word in words[start : start + 4]:
            if word[0] != first[0]:
                break
            spelled += word[1]
            box = [min(box[0], word[2]), min(box[1], word[3]), max(box[2], word[4]), max(box[3], word[5])]
            if spelled == target:
                return first[0], box
            if not target.startswith(spelled):
                break
    return None


def outcomes_record(*, invoice: Invoice) -> int:
    """Record, for each field the reading pre-filled, what the saved invoice says now. Nothing for an invoice that
    is not a read paper invoice, or has no supplier yet."""
    facts = (invoice.scan or {}).get("fields") or {}
    if not facts or invoice.supplier_id is None:
        return 0
    words = (invoice.scan or {}).get("words") or []
    recorded = 0
    for name in (*FIELDS, "supplier", "account"):
        read = facts.get(name)
        if not read:
            continue
        if name == "supplier":
            ocr, final = read.get("code") or "", invoice.supplier.code if invoice.supplier else ""
        elif name == "account":
            line = invoice.lines.select_related("account").first()
            ocr, final = read.get("value") or "", line.account.code if line and line.account else ""
        else:
            ocr, final = (read.get("value") or "") if read.get("prefilled") else "", _text(getattr(invoice, name))
        page, box = None, None
        if name == "number" and final and final != ocr:
            where = _number_box(words, final)
            if where:
                page, box = where
        ScanFieldOutcome.objects.update_or_create(
            invoice=invoice,
            field=name,
            defaults={
                "company_id": invoice.company_id,
                "supplier_id": invoice.supplier_id,
                "ocr_value": ocr[:200],
                "final_value": final[:200],
                "corrected": ocr != final,
                "page": page,
                "box": box,
            },
        )
        recorded += 1
    return recorded


def learned_account(supplier: Supplier | None) -> Account | None:
    """The expense account the accountant chose for this supplier's last paper invoice, when it was not the one
    suggested."""
    if supplier is None:
        return None
    last = (
        ScanFieldOutcome.objects.filter(supplier=supplier, field="account", corrected=True)
        .exclude(final_value="")
        .order_by("-updated_at", "-pk")
        .first()
    )
    if last is None:
        return None
    return Account.objects.filter(company_id=supplier.company_id, code=last.final_value).first()


def learned_number(supplier: Supplier, document: ScannedDocument) -> Found | None:
    """The number read where this supplier's number was the last time the accountant corrected it."""
    last = (
        ScanFieldOutcome.objects.filter(supplier=supplier, field="number", corrected=True, box__isnull=False)
        .order_by("-updated_at", "-pk")
        .first()
    )
    if last is None or not last.box:
        return None
    left, top, right, bottom = last.box
    for page in document.read_pages:
        if page.number != last.page or not page.width or not page.height:
            continue
        inside = []
        for segment in page.segments:
            for word in segment.words:
                x = (word.box.left + word.box.right) / 2 / page.width
                y = (word.box.top + word.box.bottom) / 2 / page.height
                # Across, the box itself (its neighbours on the line are close); down, some slack (a scan moves).
                if left <= x <= right and top - SLACK <= y <= bottom + SLACK:
                    inside.append(word)
        if inside:
            text = "".join(word.text for word in inside)[:60]
            box = Box(
                min(w.box.left for w in inside),
                min(w.box.top for w in inside),
                max(w.box.right for w in inside),
                max(w.box.bottom for w in inside),
            )
            source = Source(page.number, text, HOW_LAYOUT, "appris", box)
            return Found(text, LEARNED_CONFIDENCE, source)
    return None


@dataclass
class Acceptance:
    code: str
    label: str
    fields: int
    accepted: int

    @property
    def share(self) -> float:
        return 100 * self.accepted / self.fields if self.fields else 0.0


def acceptance_by_supplier(company_ids: list[int] | None, limit: int = 20) -> list[Acceptance]:
    """Per supplier of these companies (all when None), the pre-filled fields kept as read; most fields first. One
    query, whatever the number of invoices."""
    rows = ScanFieldOutcome.objects.all()
    if company_ids is not None:
        rows = rows.filter(company_id__in=company_ids)
    counted = (
        rows.values("supplier_id", "supplier__code", "supplier__label")
        .annotate(fields=Count("pk"), accepted=Count("pk", filter=Q(corrected=False)))
        .order_by("-fields", "supplier__code", "supplier_id")[:limit]
    )
    return [
        Acceptance(row["supplier__code"], row["supplier__label"], row["fields"], row["accepted"]) for row in counted
    ]
