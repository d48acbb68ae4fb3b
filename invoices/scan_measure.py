"""The measure of the scan reading on a folder of documents with their truth: ``python manage.py measure_ocr DIR``.

A document is any PDF, TIFF, JPEG or PNG of the folder (and its sub-folders) with a ``<same name>.json`` beside it:

    {"supplier": {"name": …, "siren": …, "siret": …, "vat": …, "iban": …},   # what the supplier is (null if unknown)
     "buyer": {…}, "number": "FA-2026-0501", "issue_date": "2026-11-02", "due_date": "2026-12-17" | null,
     "total_ht": "250.00", "total_tva": "50.00", "total_ttc": "300.00",
     "vat": [{"rate": "20.00", "base": "250.00", "amount": "50.00"}], "french": true}

``tests/fixtures/scans/`` is such a folder (``build.py`` there writes it); a larger set of real invoices, kept outside
the project, is measured the same way. The referential the suppliers are matched against is built from the truth
files: each supplier, plus decoys — two suppliers with close names and other SIRENs for each, and each buyer of the
set registered as a supplier too (a company of the group that also sells), so that reading the buyer's identifiers
as the seller's shows.

For each document: the supplier found (the right code, at least medium confidence), a wrong supplier with high
confidence (the one error that must never happen), and each field exactly right; then the shares over the set, on
the French invoices and on all, and the seconds per page.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from django.utils.translation import ngettext
from stdnum import luhn

from .scan import Limits, ScanError, read_document
from .scan_fields import MEDIUM, read_fields
from .supplier_match import HIGH, KnownSupplier, clues_from_reading, normalised_name, supplier_match

DOCUMENT_SUFFIXES = (".pdf", ".tif", ".tiff", ".jpg", ".jpeg", ".png")
FIELDS = ("number", "issue_date", "total_ht", "total_tva", "total_ttc", "due_date")
FIELD_LABELS = {
    "supplier": "fournisseur trouvé",
    "number": "numéro",
    "issue_date": "date",
    "due_date": "échéance",
    "total_ht": "total HT",
    "total_tva": "total TVA",
    "total_ttc": "total TTC",
}


@dataclass
class DocumentResult:
    name: str
    french: bool
    pages: int
    seconds: list[float]
    supplier_code: str | None
    found_code: str | None
    found_confidence: float
    right: dict[str, bool | None] = field(default_factory=dict)
    # Fields read wrong but with a high confidence: what the form would pre-fill without asking to check.
    wrong_sure_fields: list[str] = field(default_factory=list)
    # Fields read with a high confidence (pre-filled without « à vérifier »).
    sure_fields: list[str] = field(default_factory=list)
    read: dict[str, str] = field(default_factory=dict)
    expected: dict[str, str] = field(default_factory=dict)
    error: str = ""

    @property
    def supplier_found(self) -> bool:
        return self.found_code is not None and self.found_code == self.supplier_code and self.found_confidence >= MEDIUM

    @property
    def wrong_sure(self) -> bool:
        return self.found_code is not None and self.found_code != self.supplier_code and self.found_confidence >= HIGH


def documents(folder: Path) -> list[tuple[Path, dict]]:
    found = []
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() in DOCUMENT_SUFFIXES and path.with_suffix(".json").exists():
            found.append((path, json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))))
    return found


def _key(party: dict) -> str:
    return party.get("siren") or party.get("vat") or party.get("siret") or normalised_name(party.get("name") or "")


def _siren(seed: int) -> str:
    base = f"{seed % 100_000_000:08d}"
    return base + luhn.calc_check_digit(base)


def _vat(siren: str) -> str:
    return f"FR{(12 + 3 * (int(siren) % 97)) % 97:02d}{siren}"


def _close_names(name: str) -> list[str]:
    words = name.split()
    first = f"{words[0]} {words[1]}" if len(words) > 1 else name
    # A neighbour sharing the trade and a rival with one letter changed in the name.
    change = next((index for index in range(len(name) // 2, len(name)) if name[index].islower()), len(name) - 1)
    letter = "e" if name[change] != "e" else "a"
    return [f"{first} Distribution", name[:change] + letter + name[change + 1 :]]


def referential(truths: Iterable[dict]) -> tuple[list[KnownSupplier], dict[str, str]]:
    """The suppliers of the set with their decoys, and the code of each truth's supplier (by its key)."""
    suppliers: list[KnownSupplier] = []
    codes: dict[str, str] = {}
    buyers: dict[str, dict] = {}
    seed = 90_000_000
    for truth in truths:
        party = truth.get("supplier") or {}
        key = _key(party)
        if key and key not in codes:
            codes[key] = f"F{len(codes) + 1:04d}"
            suppliers.append(
                KnownSupplier(
                    codes[key],
                    party.get("name") or "",
                    siren=party.get("siren") or "",
                    vat=party.get("vat") or "",
                    iban=party.get("iban") or "",
                    siret=party.get("siret") or "",
                )
            )
            for index, name in enumerate(_close_names(party.get("name") or key)):
                seed += 7
                siren = _siren(seed)
                suppliers.append(KnownSupplier(f"{codes[key]}-L{index + 1}", name, siren=siren, vat=_vat(siren)))
        buyer = truth.get("buyer") or {}
        if buyer.get("siren") or buyer.get("vat"):
            buyers.setdefault(_key(buyer), buyer)
    for index, (key, buyer) in enumerate(sorted(buyers.items()), start=1):
        if key not in codes:
            suppliers.append(
                KnownSupplier(
                    f"G{index:04d}",
                    buyer.get("name") or key,
                    siren=buyer.get("siren") or "",
                    vat=buyer.get("vat") or "",
                )
            )
    return suppliers, codes


def _value(found) -> str:
    if found is None:
        return ""
    value = found.value
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return str(value)


def measure_document(path: Path, truth: dict, suppliers: list[KnownSupplier], codes: dict, limits: Limits):
    supplier_code = codes.get(_key(truth.get("supplier") or {}))
    result = DocumentResult(path.name, bool(truth.get("french", True)), 0, [], supplier_code, None, 0.0)
    try:
        document = read_document(path.read_bytes(), limits=limits)
    except ScanError as error:
        result.error = str(error)
        return result
    result.pages = len(document.pages)
    result.seconds = [page.seconds for page in document.pages]
    if document.reasons:
        result.error = " ".join(document.reasons)
    reading = read_fields(document.pages)
    match = supplier_match(clues=clues_from_reading(reading), suppliers=suppliers)
    result.found_code, result.found_confidence = match.code, match.confidence
    for name in FIELDS:
        expected = truth.get(name)
        if expected is None:
            result.right[name] = None
            continue
        found = getattr(reading, name)
        read = _value(found)
        result.read[name], result.expected[name] = read, str(expected)
        result.right[name] = read == str(expected).strip()
        if found is not None and found.confidence >= HIGH:
            result.sure_fields.append(name)
            if not result.right[name]:
                result.wrong_sure_fields.append(name)
    return result


@dataclass
class Report:
    folder: str
    results: list[DocumentResult]

    def subset(self, french_only: bool) -> list[DocumentResult]:
        return [result for result in self.results if result.french or not french_only]

    def share(self, name: str, french_only: bool = True) -> tuple[int, int]:
        results = self.subset(french_only)
        if name == "supplier":
            counted = [result for result in results if result.supplier_code]
            return sum(result.supplier_found for result in counted), len(counted)
        counted = [result for result in results if result.right.get(name) is not None]
        return sum(bool(result.right[name]) for result in counted), len(counted)

    def wrong_sure(self) -> int:
        return sum(result.wrong_sure for result in self.results)

    def wrong_sure_fields(self) -> int:
        return sum(len(result.wrong_sure_fields) for result in self.results)

    def sure_fields(self) -> tuple[int, int]:
        """(fields read with a high confidence, fields with a truth) over the whole set."""
        counted = sum(value is not None for result in self.results for value in result.right.values())
        return sum(len(result.sure_fields) for result in self.results), counted

    def page_seconds(self) -> list[float]:
        return [seconds for result in self.results for seconds in result.seconds]

    def as_dict(self) -> dict:
        seconds = self.page_seconds()
        return {
            "folder": self.folder,
            "documents": len(self.results),
            "french": len(self.subset(True)),
            "pages": len(seconds),
            "shares_french": {name: self.share(name, True) for name in ("supplier", *FIELDS)},
            "shares_all": {name: self.share(name, False) for name in ("supplier", *FIELDS)},
            "wrong_supplier_high_confidence": self.wrong_sure(),
            "wrong_fields_high_confidence": self.wrong_sure_fields(),
            "fields_high_confidence": self.sure_fields(),
            "seconds_per_page": {
                "mean": round(statistics.fmean(seconds), 2) if seconds else None,
                "max": round(max(seconds), 2) if seconds else None,
            },
        }

    def lines(self, *, details: bool = False) -> list[str]:
        french, everything = self.subset(True), self.results
        seconds = self.page_seconds()
        measured = ngettext("%(n)d document", "%(n)d documents", len(everything)) % {"n": len(everything)}
        in_french = ngettext("%(n)d facture française", "%(n)d factures françaises", len(french)) % {"n": len(french)}
        read = ngettext("%(n)d page", "%(n)d pages", len(seconds)) % {"n": len(seconds)}
        out = [
            f"Jeu mesuré : {self.folder} — {measured} ({in_french}), {read}",
            "",
            "| mesure | factures françaises | tous les documents |",
            "|---|---|---|",
        ]
        for name in ("supplier", *FIELDS):
            cells = []
            for french_only in (True, False):
                right, total = self.share(name, french_only)
                cells.append(f"{100 * right / total:.1f} % ({right}/{total})" if total else "—")
            out.append(f"| {FIELD_LABELS[name]} | {cells[0]} | {cells[1]} |")
        out.append(f"| fournisseur faux avec une confiance haute | — | {self.wrong_sure()} |")
        sure, counted = self.sure_fields()
        if counted:
            out.append(f"| champs lus avec une confiance haute | — | {100 * sure / counted:.1f} % ({sure}/{counted}) |")
        out.append(f"| champ faux avec une confiance haute | — | {self.wrong_sure_fields()} |")
        if seconds:
            out.append(
                f"| secondes par page (moyenne / max) | — | {statistics.fmean(seconds):.2f} / {max(seconds):.2f} |"
            )
        if details:
            out.append("")
            for result in everything:
                wrong = [
                    f"{FIELD_LABELS[name]} lu « {result.read.get(name, '')} » attendu « {result.expected.get(name)} »"
                    for name, right in result.right.items()
                    if right is False
                ]
                if not result.supplier_found and result.supplier_code:
                    wrong.insert(
                        0,
                        f"fournisseur {result.found_code or 'aucun'} ({result.found_confidence:.2f})"
                        f" attendu {result.supplier_code}",
                    )
                status = "; ".join(wrong) if wrong else "tout juste"
                timing = "/".join(f"{seconds:.1f}" for seconds in result.seconds)
                error = f" [{result.error}]" if result.error else ""
                out.append(f"- {result.name} ({timing} s) : {status}{error}")
        return out


def measure(folder: Path, *, limits: Limits | None = None) -> Report:
    """Read every document of ``folder`` against its truth. ``OcrUnavailable`` stops the measure (nothing to
    measure without Tesseract)."""
    limits = limits or Limits()
    found = documents(folder)
    suppliers, codes = referential(truth for _path, truth in found)
    results = [measure_document(path, truth, suppliers, codes, limits) for path, truth in found]
    return Report(str(folder), results)
