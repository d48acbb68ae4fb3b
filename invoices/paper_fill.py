"""What a paper invoice's reading pre-fills: the invoice's columns, its lines and what the form shows of each field.

Rule: nothing read is silently trusted. Every field keeps its value, where it was read (page, the text around it,
how) and its confidence; the form shows « à vérifier » for a field below ``scan_fields.HIGH``. A field read with a
low confidence (below ``MEDIUM``) is not pre-filled, only shown as read. The supplier is set only when it is found
with a high confidence (``supplier_match``) and usable; otherwise it is only suggested. The expense account is the
supplier's own in the referential, or the one the accountant chose last time for this supplier
(``paper_learning``). Totals that do not add up are said so, with the VAT per rate as read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils.translation import gettext as _

from companies.models import Account, Company, Supplier, TaxCode

from .accounting import cents
from .scan import ScannedDocument
from .scan_fields import HIGH, MEDIUM, Found, Reading
from .services import LineData
from .supplier_match import KnownSupplier, SupplierMatch, clues_from_reading, supplier_match

# The invoice's columns a reading may fill, in the form's order.
PREFILLED = ("number", "invoice_date", "due_date", "total_ht", "total_tva", "total_ttc")
# The reading's name of each.
READING_NAMES = {"invoice_date": "issue_date"}
# Words kept per page, for the layout hints (``paper_learning``): enough for an invoice's first page.
MAX_WORDS = 600


@dataclass
class Prefill:
    """The invoice's columns to write, its lines, what the invoice keeps of the reading, and why it is to check."""

    fields: dict = field(default_factory=dict)
    supplier: Supplier | None = None
    lines: list[LineData] = field(default_factory=list)
    scan: dict = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)


def known_suppliers(company: Company) -> tuple[list[KnownSupplier], dict[str, Supplier]]:
    suppliers = {supplier.code: supplier for supplier in Supplier.objects.filter(company=company)}
    known = [
        KnownSupplier(code, supplier.label, siren=supplier.siren, vat=supplier.vat_number)
        for code, supplier in suppliers.items()
    ]
    return known, suppliers


def _plain(value) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{cents(value):.2f}"
    return str(value)


def field_facts(found: Found) -> dict:
    """What the form shows of one field: the value as read, its confidence and where it was read."""
    source = found.source
    return {
        "value": _plain(found.value),
        "confidence": round(found.confidence, 3),
        "level": found.level,
        "page": source.page,
        "text": source.text[:200],
        "how": source.how,
        "prefilled": found.confidence >= MEDIUM,
    }


def page_words(document: ScannedDocument) -> list[list]:
    """Each page's words as [page, text, left, top, right, bottom], the box in shares of the page's size."""
    words: list[list] = []
    for page in document.read_pages:
        if not page.width or not page.height:
            continue
        kept = 0
        for segment in page.segments:
            for word in segment.words:
                if kept >= MAX_WORDS:
                    break
                box = word.box
                words.append(
                    [
                        page.number,
                        word.text[:60],
                        round(box.left / page.width, 4),
                        round(box.top / page.height, 4),
                        round(box.right / page.width, 4),
                        round(box.bottom / page.height, 4),
                    ]
                )
                kept += 1
    return words


def _supplier_facts(match: SupplierMatch, supplier: Supplier | None, chosen: bool) -> dict:
    return {
        "code": match.code or "",
        "label": supplier.label if supplier else "",
        "confidence": round(match.confidence, 3),
        "level": "high" if match.sure else ("medium" if match.confidence >= MEDIUM else "low"),
        "method": match.method,
        "reason": match.reason,
        "alternatives": list(match.alternatives),
        "prefilled": chosen,
    }


def expense_account(company: Company, supplier: Supplier | None, learned: Account | None) -> tuple[Account | None, str]:
    """The suggested expense account and where it comes from: what the accountant chose for this supplier last
    time, else the supplier's default account in the referential."""
    if learned is not None and learned.usable:
        return learned, "learned"
    if supplier is None or not supplier.expense_account_code:
        return None, ""
    account = Account.objects.filter(company=company, code=supplier.expense_account_code).first()
    if account is None or not account.usable:
        return None, ""
    return account, "referential"


def prefill(
    *,
    company: Company,
    document: ScannedDocument,
    reading: Reading,
    learned_account=None,
    learned_number: Found | None = None,
) -> Prefill:
    """Everything the reading gives the invoice of ``company``. ``learned_account`` is a callable (supplier → the
    account chosen last time, or None); ``learned_number`` the number read where this supplier's number lies."""
    out = Prefill()
    known, by_code = known_suppliers(company)
    match = supplier_match(clues=clues_from_reading(reading), suppliers=known)
    candidate = by_code.get(match.code) if match.code else None
    chosen = bool(candidate is not None and match.sure and candidate.usable)
    out.supplier = candidate if chosen else None
    facts: dict = {"supplier": _supplier_facts(match, candidate, chosen)}
    if candidate is None:
        out.reasons.append(_("Fournisseur non reconnu sur le document : choisissez-le."))
    elif not chosen:
        out.reasons.append(
            _("Fournisseur suggéré %(code)s – %(label)s, à confirmer : %(why)s")
            % {"code": candidate.code, "label": candidate.label, "why": match.reason or _("confiance insuffisante.")}
        )
    if learned_number is not None and (reading.number is None or reading.number.value != learned_number.value):
        reading_number = learned_number
    else:
        reading_number = reading.number
    for name in PREFILLED:
        found = reading_number if name == "number" else getattr(reading, READING_NAMES.get(name, name))
        if found is None:
            continue
        facts[name] = field_facts(found)
        if found.confidence >= MEDIUM:
            out.fields[name] = found.value
    if "number" in out.fields:
        out.fields["number"] = str(out.fields["number"])[:60]
    if "due_date" in out.fields:
        out.fields["due_date_source"] = "document"
    account, account_source = expense_account(
        company, out.supplier, learned_account(out.supplier) if learned_account and out.supplier else None
    )
    out.lines = _lines(company, reading, out.fields, account, out.supplier)
    if account is not None:
        facts["account"] = {
            "value": account.code,
            "level": "high" if account_source == "learned" else "medium",
            "how": account_source,
            "prefilled": True,
        }
    unsure = [name for name in PREFILLED if name in facts and facts[name]["level"] != "high"]
    if unsure:
        out.reasons.append(_("Champs lus à vérifier : %(fields)s.") % {"fields": ", ".join(_label(n) for n in unsure)})
    if reading.totals_agree is False:
        out.reasons.append(_("Les totaux lus ne s'additionnent pas (HT + TVA ≠ TTC) : vérifiez-les sur le document."))
    out.reasons.extend(reading.flags)
    out.reasons.extend(document.reasons)
    out.scan = {
        "kind": document.kind,
        "pages": document.page_count,
        "ocr": document.ocr_used,
        "seconds": [round(page.seconds, 2) for page in document.pages],
        "fields": facts,
        "totals_agree": reading.totals_agree,
        "vat": [
            {
                "rate": f"{item.rate}",
                "base": _plain(item.base) if item.base is not None else None,
                "amount": _plain(item.amount),
            }
            for item in reading.vat
        ],
        "flags": list(reading.flags),
        "words": page_words(document),
    }
    return out


FIELD_LABELS = {
    "supplier": "fournisseur", "number": "n° de facture", "invoice_date": "date de facture", "due_date": "échéance",
    "total_ht": "total HT", "total_tva": "total TVA", "total_ttc": "total TTC", "account": "compte de charge",
}  # fmt: skip


def _label(name: str) -> str:
    return FIELD_LABELS.get(name, name)


def _lines(company: Company, reading: Reading, fields: dict, account, supplier) -> list[LineData]:
    """One line per VAT rate read (its base, its tax code), or one line of the total HT."""
    tax_codes = list(
        TaxCode.objects.filter(company=company, active=True, gone_upstream_at__isnull=True, collected_account="")
    )
    number = fields.get("number") or ""
    label = (_("Facture %(number)s") % {"number": number}) if number else _("Facture papier")
    if supplier is not None:
        label = f"{label} {supplier.label}"
    label = label[:200]
    bases = [item for item in reading.vat if item.base is not None and item.base > 0]
    total_ht = fields.get("total_ht")
    if bases and (total_ht is None or sum(item.base for item in bases) == total_ht):
        return [
            LineData(
                label=label,
                amount_ht=cents(item.base),
                account_id=account.pk if account else None,
                tax_code_id=next((code.pk for code in tax_codes if code.rate == item.rate), None),
            )
            for item in bases
        ]
    if total_ht is None:
        return []
    rate = None
    tva = fields.get("total_tva")
    if tva is not None and total_ht:
        rate = next((code for code in tax_codes if cents(total_ht * code.rate / 100) == cents(tva)), None)
    return [
        LineData(
            label=label,
            amount_ht=cents(total_ht),
            account_id=account.pk if account else None,
            tax_code_id=rate.pk if rate else None,
        )
    ]


def is_sure(facts: dict, name: str) -> bool:
    return (facts.get(name) or {}).get("confidence", 0) >= HIGH
