"""The fields a paper invoice states, read from its pages (``invoices.scan_text``): pure functions, no Django.

Each field is a ``Found``: its value, its source (the page, the words it came from, how it was found — after a
``label``, by a ``pattern``, by ``arithmetic`` from other fields, or from the ``layout``) and a confidence (0–1) made
of how it was found, the OCR confidence of its words, and the agreement checks it passed or failed:
- totals: HT + TVA = TTC to the cent, the VAT per rate × its base, the VAT per rate adding up to the TVA;
- identifiers: a SIREN, SIRET, FR VAT number or IBAN counts only with a valid key (``python-stdnum``), and a
  SIREN that agrees with the SIRET or VAT number beside it is surer;
- dates: the due date after the invoice date.
What does not agree is said (``Reading.flags``, French) and its confidence held below ``HIGH``: the form shows it
« à vérifier », never silently trusted.

Labels and values: a label is looked for in each segment (« Total HT », « N° de facture », « Échéance »…), its value
after it on the same row, or under it in the band of its column (tables that put labels above values). Two parties
are told apart by their blocks: what follows « Client », « Facturé à », « Adresse de facturation », « Vos
identifiants »… is the buyer's; « Bénéficiaire », « Représentant fiscal » name third parties; everything else —
the header, the footer, « Émetteur » — is the seller's, whose identifiers are ranked (``Reading.supplier``).
Matching them against a referential is ``invoices.supplier_match``.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Generic, TypeVar

from stdnum import iban as iban_number
from stdnum.eu import vat as eu_vat
from stdnum.fr import siren as siren_number
from stdnum.fr import siret as siret_number
from stdnum.fr import tva as tva_number

from .scan_text import Box, Page, Segment, Word

T = TypeVar("T")

HIGH = 0.8
MEDIUM = 0.5
CENT = Decimal("0.01")

HOW_LABEL = "label"
HOW_PATTERN = "pattern"
HOW_ARITHMETIC = "arithmetic"
HOW_LAYOUT = "layout"

PARTY_SELLER = "seller"
PARTY_BUYER = "buyer"
PARTY_OTHER = "other"

# Rows looked at under a label for its value (tables that put labels above values).
ROWS_BELOW = 3
# A party block ends at a gap taller than this many lines in its column.
BLOCK_GAP_LINES = 1.0
BLOCK_MAX_ROWS = 12
# An invoice number read once is sure only when the OCR is this sure of every character of it.
SURE_WORD = 0.95
# The footer: the bottom of the page, where the seller's legal mentions go.
FOOTER_SHARE = 0.12


# --- results -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    page: int
    text: str
    how: str
    label: str = ""
    box: Box | None = None


@dataclass(frozen=True)
class Found(Generic[T]):
    value: T
    confidence: float
    source: Source

    @property
    def level(self) -> str:
        return level(self.confidence)


def level(confidence: float) -> str:
    """« high » (pre-filled as sure), « medium » (pre-filled, to check) or « low » (a hint)."""
    if confidence >= HIGH:
        return "high"
    return "medium" if confidence >= MEDIUM else "low"


@dataclass(frozen=True)
class Identifier:
    scheme: str  # siren, siret, vat, iban
    value: str
    party: str
    found: Found[str]

    @property
    def confidence(self) -> float:
        return self.found.confidence


@dataclass(frozen=True)
class Party:
    """One party's identifiers: the best of each scheme, and every candidate ranked (best first)."""

    name: Found[str] | None = None
    siren: Found[str] | None = None
    siret: Found[str] | None = None
    vat: Found[str] | None = None
    iban: Found[str] | None = None
    candidates: tuple[Identifier, ...] = ()
    names: tuple[Found[str], ...] = ()


@dataclass(frozen=True)
class VatRate:
    rate: Decimal
    amount: Decimal
    base: Decimal | None
    confidence: float
    source: Source


@dataclass(frozen=True)
class Reading:
    supplier: Party
    buyer: Party
    number: Found[str] | None = None
    issue_date: Found[dt.date] | None = None
    due_date: Found[dt.date] | None = None
    total_ht: Found[Decimal] | None = None
    total_tva: Found[Decimal] | None = None
    total_ttc: Found[Decimal] | None = None
    vat: tuple[VatRate, ...] = ()
    # None when the three totals were not all found.
    totals_agree: bool | None = None
    flags: tuple[str, ...] = ()


# --- text helpers ------------------------------------------------------------------------------------------------


def fold(text: str) -> str:
    """Lower case without accents, one character for one: positions in the folded text are the original's."""
    out = []
    for char in text:
        base = unicodedata.normalize("NFD", char)[0].lower()
        out.append(base if len(base) == 1 else char)
    return "".join(out)


_SPACES = "\u00a0\u202f\u2009\u2007 "
_DIGIT_LOOKALIKES = str.maketrans({"O": "0", "o": "0", "D": "0", "I": "1", "l": "1", "|": "1", "S": "5", "B": "8"})


def digitise(token: str) -> str:
    """An OCR token meant as digits, its look-alike letters read as digits (« 2O26 » → « 2026 »). A prefix of two
    letters or more stays letters (« FR76… », « BE0123… », « INV… »)."""
    digits = sum(char.isdigit() for char in token)
    if not digits or digits * 2 < sum(char.isalnum() for char in token):
        return token
    prefix = re.match(r"[^\W\d_]{2,}", token)
    keep = prefix.end() if prefix else 0
    return token[:keep] + token[keep:].translate(_DIGIT_LOOKALIKES)


def _digitised(text: str) -> str:
    return " ".join(digitise(token) for token in text.split(" "))


def _ocr_factor(words: Sequence[Word]) -> float:
    if not words:
        return 1.0
    return 0.6 + 0.4 * min(word.confidence for word in words)


def _cap(value: float) -> float:
    return round(max(0.0, min(0.99, value)), 3)


# --- amounts and dates -------------------------------------------------------------------------------------------

_AMOUNT = re.compile(
    r"(?<![\w.,])(?P<sign>[-−–])?\s?(?:€\s?)?"
    r"(?P<int>\d{1,3}(?:(?:[ .'\u00a0\u202f\u2009](?=\d{3}(?!\d)))\d{3})+|\d+)"
    r"(?:[.,](?P<dec>\d{2}))"
    r"(?![\d%])(?!\s?%)"
)
_INTEGER_EUROS = re.compile(r"(?<![\w.,])(?P<sign>[-−–])?(?P<int>\d{1,3}(?:[ .\u00a0\u202f]\d{3})*|\d+)\s?(?:€|EUR\b)")


@dataclass(frozen=True)
class _Span:
    start: int
    end: int


def amounts_in(text: str) -> list[tuple[Decimal, _Span]]:
    """Amounts written the French way or the English way: « 1 234,56 », « 1.234,56 », « 1234.56 », « 1,234.56 »,
    « € 12,00 », « 12,00 € », a thin space for thousands; never a percentage. Two decimals, or a whole number of
    euros followed by « € » / « EUR »."""
    text = _digitised(text)
    found = []
    for match in _AMOUNT.finditer(text):
        whole = re.sub(r"[ .'\u00a0\u202f\u2009,]", "", match.group("int"))
        value = Decimal(f"{whole}.{match.group('dec')}")
        if match.group("sign"):
            value = -value
        found.append((value, _Span(match.start(), match.end())))
    if not found:
        for match in _INTEGER_EUROS.finditer(text):
            whole = re.sub(r"[ .\u00a0\u202f]", "", match.group("int"))
            value = Decimal(whole) * (-1 if match.group("sign") else 1)
            found.append((value.quantize(CENT), _Span(match.start(), match.end())))
    english = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+)\.(\d{2})(?!\d)")
    for match in english.finditer(text):
        value = Decimal(match.group(1).replace(",", "") + "." + match.group(2))
        found = [item for item in found if not (match.start() <= item[1].start < match.end())]
        found.append((value, _Span(match.start(), match.end())))
    return sorted(found, key=lambda item: item[1].start)


MONTHS = {
    "janvier": 1, "janv": 1, "jan": 1, "january": 1,
    "fevrier": 2, "fevr": 2, "fev": 2, "february": 2, "feb": 2,
    "mars": 3, "march": 3, "mar": 3,
    "avril": 4, "avr": 4, "april": 4, "apr": 4,
    "mai": 5, "may": 5,
    "juin": 6, "june": 6, "jun": 6,
    "juillet": 7, "juil": 7, "july": 7, "jul": 7,
    "aout": 8, "august": 8, "aug": 8,
    "septembre": 9, "sept": 9, "sep": 9, "september": 9,
    "octobre": 10, "oct": 10, "october": 10,
    "novembre": 11, "nov": 11, "november": 11,
    "decembre": 12, "dec": 12, "december": 12,
}  # fmt: skip
_MONTH_NAMES = "|".join(sorted(MONTHS, key=len, reverse=True))
_NUMERIC_DATE = re.compile(r"(?<!\d)(\d{1,2})\s?([/.\-])\s?(\d{1,2})\s?\2\s?(\d{4}|\d{2})(?!\d)")
_ISO_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)")
_LONG_DATE = re.compile(rf"(?<![\w])(1er|\d{{1,2}})\s+({_MONTH_NAMES})\.?\s+(\d{{4}})(?!\d)")
_ENGLISH_DATE = re.compile(rf"(?<![\w])({_MONTH_NAMES})\.?\s+(\d{{1,2}}),?\s+(\d{{4}})(?!\d)")


def _make_date(year: int, month: int, day: int) -> dt.date | None:
    if year < 100:
        year += 2000
    if not 1990 <= year <= 2100:
        return None
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def dates_in(text: str) -> list[tuple[dt.date, _Span]]:
    """Dates in every French form: « 02/11/2026 », « 2/11/26 », « 02.11.26 », « 02-11-2026 », « 2026-11-02 »,
    « 2 novembre 2026 », « 1er déc. 2026 », and the English « November 2, 2026 »."""
    folded = fold(_digitised(text))
    found = []
    for match in _ISO_DATE.finditer(folded):
        value = _make_date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        if value:
            found.append((value, _Span(match.start(), match.end())))
    for match in _NUMERIC_DATE.finditer(folded):
        if any(span.start <= match.start() < span.end for _value, span in found):
            continue
        value = _make_date(int(match.group(4)), int(match.group(3)), int(match.group(1)))
        if value:
            found.append((value, _Span(match.start(), match.end())))
    for match in _LONG_DATE.finditer(folded):
        day = 1 if match.group(1) == "1er" else int(match.group(1))
        value = _make_date(int(match.group(3)), MONTHS[match.group(2)], day)
        if value:
            found.append((value, _Span(match.start(), match.end())))
    for match in _ENGLISH_DATE.finditer(folded):
        value = _make_date(int(match.group(3)), MONTHS[match.group(1)], int(match.group(2)))
        if value:
            found.append((value, _Span(match.start(), match.end())))
    return sorted(found, key=lambda item: item[1].start)


_NUMBER_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-/_.,]{1,39}")
_NOT_NUMBERS = re.compile(r"^(du|le|date|n°|no|num|client|page)$", re.IGNORECASE)


def invoice_number_in(text: str) -> tuple[str, _Span] | None:
    """The first token that can be an invoice number: letters, digits, « - / _ . », at least one digit, no date."""
    for match in _NUMBER_TOKEN.finditer(text):
        token = match.group().rstrip(".,-/_")
        if not any(char.isdigit() for char in token) or _NOT_NUMBERS.match(token):
            continue
        if dates_in(token) or re.fullmatch(r"\d{1,3}(?:[ .]\d{3})*[.,]\d{2}", token):
            continue
        if re.fullmatch(r"\d{1,2}", token):
            continue
        return _fix_number(token), _Span(match.start(), match.start() + len(token))
    return None


def _fix_number(token: str) -> str:
    """« FA-2026-O501 » → « FA-2026-0501 »: a group of an invoice number that is digits but for look-alike letters."""
    parts = re.split(r"([\-/_.])", token)
    fixed = []
    for part in parts:
        digits = sum(char.isdigit() for char in part)
        if len(part) >= 3 and digits * 2 >= len(part) and all(char.isdigit() or char in "OoIl|" for char in part):
            part = part.translate(_DIGIT_LOOKALIKES)
        # « INVO489 »: an O between the letters of a prefix and the digits is a zero.
        part = re.sub(r"(?<=[A-Z])O(?=\d)", "0", part)
        fixed.append(part)
    return "".join(fixed)


# --- labels ------------------------------------------------------------------------------------------------------

_NO = r"(?:n\s?[°º*o'\"]|no\b|num(?:ero)?\b|nr\b|#)\.?"
# (pattern on folded text, strength)
NUMBER_LABELS = (
    (rf"\b(?:facture|avoir|invoice)\s*{_NO}\s*(?:de\s+(?:la\s+)?(?:facture|piece)\s*)?:?", 1.0),
    (rf"{_NO}\s*(?:de\s+)?(?:la\s+)?(?:facture|piece|avoir)\b\s*:?", 1.0),
    (r"\binvoice\s*(?:number|no\.?|#)\s*:?", 1.0),
    (r"\bnumero\s+de\s+(?:facture|piece)\s*:?", 1.0),
    (r"\bref(?:erence)?\.?\s+(?:de\s+(?:la\s+)?)?facture\s*:?", 0.9),
    (r"^(?:facture|avoir|invoice)\b\s*:?", 0.75),
    (r"^n\s?[°º*]\.?\s*:?", 0.7),
    (r"^ref(?:erence)?\.?\s*:", 0.6),
    (r"^reference\b", 0.55),
)
_NUMBER_NOT = re.compile(
    r"^\s*(?:associee|d'origine|initiale|precedente|rectifiee|client|commande|bon|tva|siret|siren|fournisseur"
    r"|de\s+(?:compte|client|commande|tva|bon|contrat|lot|serie)|acheteur|avis|mandat|a\b|contrat|lot|serie|de\s+serie"
    r"|intra|d'?\s?identification|rcs|siren|eori|gln|duns|routage)"
)

ISSUE_DATE_LABELS = (
    (r"\bdate\s+(?:de\s+(?:la\s+)?)?(?:facture|facturation)\b\s*:?", 1.0),
    (r"\bdate\s+d'?\s?(?:emission|edition)\b\s*:?", 1.0),
    (r"\binvoice\s+date\b\s*:?", 1.0),
    (r"\b(?:facture|avoir)\b.{0,40}?\bdu\b", 0.85),
    (r"\bdate\b\s*:?", 0.7),
    (r"(?:^|,\s*)le\b", 0.4),
)
_ISSUE_NOT = re.compile(
    r"^\s*(?:de\s+(?:livraison|commande|debut|fin|paiement|reglement|prestation|l'?\s?echeance|expedition|naissance)"
    r"|d'?\s?(?:echeance|expedition)|de\s+facture\s+associee|associee|limite|due|of\s+delivery)"
)
DUE_DATE_LABELS = (
    (r"\bdate\s+d'?\s?echeance\b\s*:?", 1.0),
    (r"\bdate\s+limite\s+de\s+(?:paiement|reglement)\b\s*:?", 1.0),
    (r"\b(?:a\s+)?payer\s+avant\s+le\b\s*:?", 1.0),
    (r"\b(?:a\s+)?regler\s+(?:avant\s+)?le\b\s*:?", 0.95),
    (r"\bpayable\s+(?:le|avant\s+le|au)\b\s*:?", 0.95),
    (r"\bdue\s+date\b\s*:?", 1.0),
    (r"\bpaiement\s+(?:au\s+plus\s+tard\s+)?le\b\s*:?", 0.9),
    (r"\bech[eé]ance\b\s*:?", 0.9),
    (r"\bdate\s+de\s+(?:paiement|reglement)\b\s*:?", 0.7),
)

_AFTER_TOTAL_NOT = r"(?!\s*(?:avant|brut|hors\s+remise|sans\s+remise|de\s+la\s+page|page|report))"
HT_LABELS = (
    (rf"\btotal\s+(?:net\s+)?h\.?\s?t\.?\b{_AFTER_TOTAL_NOT}", 1.0),
    (rf"\btotal\s+hors\s+tax(?:es?)?\b{_AFTER_TOTAL_NOT}", 1.0),
    (rf"\bmontant\s+(?:total\s+)?(?:net\s+)?h\.?\s?t\.?\b{_AFTER_TOTAL_NOT}", 0.85),
    (rf"\bsous[\s-]total\s+h\.?\s?t\.?\b{_AFTER_TOTAL_NOT}", 0.8),
    (rf"\bnet\s+h\.?\s?t\.?\b{_AFTER_TOTAL_NOT}", 0.8),
    (r"\btotal\s+(?:excl\.?|excluding|net\s+of)\s+vat\b", 0.9),
    (r"\b(?:total\s+)?base\s+h\.?\s?t\.?\b", 0.5),
    (r"\bsubtotal\b", 0.6),
)
TVA_LABELS = (
    (r"\btotal\s+(?:de\s+la\s+)?t\.?\s?v\.?\s?a\.?\b", 1.0),
    (r"\bmontant\s+(?:total\s+)?(?:de\s+la\s+)?t\.?\s?v\.?\s?a\.?\b", 0.9),
    (r"\btotal\s+vat\b", 0.9),
    (r"^t\.?\s?v\.?\s?a(?![a-z])(?!\s*(?:intra|n\s?[°º]|:?\s*fr))", 0.6),
    (r"[-–|,;]\s*t\.?\s?v\.?\s?a(?![a-z])(?!\s*(?:intra|n\s?[°º]|:?\s*fr))", 0.55),
    (r"^vat\b(?!\s*(?:number|no|id))", 0.55),
)
TTC_LABELS = (
    (r"\btotal\s+t\.?\s?t\.?\s?c\.?\b", 1.0),
    # « TTC » as the OCR may misread it: « TIC », « T.T.C » with a stray mark.
    (r"\btotal\s+t[\s.]?[il1][\s.]?c\b", 0.8),
    (r"\bmontant\s+(?:total\s+)?t\.?\s?t\.?\s?c\.?\b", 0.95),
    (r"\bnet\s+a\s+payer\b", 0.95),
    (r"\btotal\s+a\s+payer\b", 0.9),
    (r"\bmontant\s+a\s+(?:payer|regler)\b", 0.9),
    (r"\btotal\s+(?:incl\.?|including)\s+vat\b", 0.9),
    (r"\b(?:total|amount)\s+due\b", 0.85),
    (r"\breste\s+a\s+payer\b", 0.6),
    (r"(?:^|[-–|,;]\s*)t\.?\s?t\.?\s?c\b", 0.6),
)

BUYER_LABELS = re.compile(
    r"^(?:client|clients|facture\s+a|facturer\s+a|adresse\s+de\s+facturation|destinataire|acheteur|donneur\s+d'ordre"
    r"|vos\s+(?:identifiants|coordonnees|references)|votre\s+societe|bill(?:ed)?\s+to|customer|buyer|sold\s+to"
    r"|livre\s+a|adresse\s+de\s+livraison|livraison|lieu\s+de\s+livraison|ship\s+to|delivery)\b"
)
SELLER_LABELS = re.compile(
    r"^(?:emetteur|fournisseur|vendeur|prestataire|expediteur|nos\s+(?:coordonnees|references)|seller|supplier"
    r"|from|de\s*:)\b"
)
OTHER_LABELS = re.compile(
    r"^(?:beneficiaire|representant\s+fiscal|tax\s+representative|affactur|factor|payee|paiement\s+a\s+l'ordre)"
)
_BUYER_INLINE = re.compile(r"\b(?:client|votre|vos|acheteur|customer|buyer|destinataire)\b")
_SELLER_INLINE = re.compile(r"\b(?:notre|nos|fournisseur|vendeur|emetteur)\b")


@dataclass(frozen=True)
class _Hit:
    """A label found: where, how strong, and the words it covers."""

    page: Page
    row: int
    segment: Segment
    end: int  # character offset in the segment's text where the label ends
    strength: float
    label: str
    box: Box


def _words_span(segment: Segment, start: int, end: int) -> list[Word]:
    """The words of ``segment`` that the characters [start, end) of its text fall on."""
    words, offset = [], 0
    for word in segment.words:
        if offset < end and start < offset + len(word.text):
            words.append(word)
        offset += len(word.text) + 1
    return words


def _union(words: Sequence[Word]) -> Box:
    box = words[0].box
    for word in words[1:]:
        box = box.union(word.box)
    return box


def _labels(pages: Sequence[Page], patterns, refuse: re.Pattern | None = None) -> list[_Hit]:
    hits = []
    compiled = [(re.compile(pattern), strength) for pattern, strength in patterns]
    for page in pages:
        for row_index, row in enumerate(page.rows):
            for segment in row:
                text = fold(segment.text)
                for pattern, strength in compiled:
                    match = pattern.search(text)
                    if not match:
                        continue
                    if refuse and refuse.match(text[match.end() :]):
                        continue
                    words = _words_span(segment, match.start(), match.end()) or list(segment.words)
                    hits.append(
                        _Hit(
                            page,
                            row_index,
                            segment,
                            match.end(),
                            strength,
                            segment.text[match.start() : match.end()],
                            _union(words),
                        )
                    )
                    break
    return hits


@dataclass(frozen=True)
class _Candidate:
    text: str
    words: tuple[Word, ...]
    placement: float  # 1 same segment, 0.95 same row, 0.85 under the label


def _after(hit: _Hit) -> Iterable[_Candidate]:
    """Where a label's value may be: after it in its segment, then the next segments of its row, then under it."""
    rest = hit.segment.text[hit.end :]
    offset = hit.end
    rest_words = tuple(_words_span(hit.segment, offset, len(hit.segment.text)))
    if rest.strip():
        yield _Candidate(rest, rest_words, 1.0)
    row = hit.page.rows[hit.row]
    following = [segment for segment in row if segment.box.left >= hit.segment.box.right - 2]
    if following:
        yield _Candidate(
            " ".join(segment.text for segment in following), tuple(w for s in following for w in s.words), 0.95
        )
    # Under the label: the band of its column, from its left to the next segment of its row.
    right = min((segment.box.left for segment in following), default=10**9)
    left = hit.box.left - max(hit.box.height, 10)
    # A weak label (a title, « Date ») looks one row down only: further down is someone else's value.
    depth = ROWS_BELOW if hit.strength >= 0.8 else 1
    for below in hit.page.rows[hit.row + 1 : hit.row + 1 + depth]:
        words = tuple(
            word for segment in below for word in segment.words if left <= (word.box.left + word.box.right) / 2 < right
        )
        if words:
            yield _Candidate(" ".join(word.text for word in words), words, 0.85)


def _value_words(candidate: _Candidate, span: _Span) -> list[Word]:
    words, offset = [], 0
    for word in candidate.words:
        if offset < span.end and span.start < offset + len(word.text):
            words.append(word)
        offset += len(word.text) + 1
    return words or list(candidate.words)


def _position(hit: _Hit) -> float:
    """Later on the page, and on a later page, is a little better for totals (they close the invoice)."""
    return hit.page.number * 10 + hit.row / max(len(hit.page.rows), 1)


# --- fields after labels -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Option(Generic[T]):
    value: T
    score: float
    source: Source
    order: float = 0.0
    # The lowest OCR confidence of the value's words (1 for a text layer).
    certainty: float = 1.0


def _options(pages, patterns, parse, *, refuse=None, first_only=True) -> list[_Option]:
    options = []
    for hit in _labels(pages, patterns, refuse):
        for candidate in _after(hit):
            parsed = parse(candidate.text)
            if not parsed:
                continue
            value, span = parsed
            words = _value_words(candidate, span)
            score = hit.strength * candidate.placement * _ocr_factor(words)
            source = Source(
                hit.page.number,
                f"{hit.segment.text} → {candidate.text}".strip(),
                HOW_LABEL,
                hit.label.strip(),
                _union(words),
            )
            certainty = min(word.confidence for word in words) if words else 1.0
            options.append(_Option(value, score, source, _position(hit), certainty))
            if first_only:
                break
    return options


def _first_amount(text: str):
    found = amounts_in(text)
    return found[0] if found else None


def _first_date(text: str):
    found = dates_in(text)
    return found[0] if found else None


def _best(options: list[_Option]) -> _Option | None:
    return max(options, key=lambda option: (round(option.score, 3), option.order), default=None)


def _found(option: _Option | None, confidence: float | None = None) -> Found | None:
    if option is None:
        return None
    return Found(option.value, _cap(option.score if confidence is None else confidence), option.source)


def read_number(pages: Sequence[Page]) -> Found[str] | None:
    options = _options(pages, NUMBER_LABELS, invoice_number_in, refuse=_NUMBER_NOT)
    # The same number read in several places (title and header, every page) is surer.
    counts: dict[str, int] = {}
    for option in options:
        counts[option.value] = counts.get(option.value, 0) + 1
    best = _best([replace(option, score=option.score + 0.05 * (counts[option.value] - 1)) for option in options])
    if best and counts[best.value] < 2 and best.certainty < SURE_WORD:
        # No key to check a number by: read once, and not letter-perfect to the OCR, it is to be checked
        # (« A0000263 » read « 40000263 » with a word confidence of 0.92 on a scan of the set).
        return _found(best, min(best.score, HIGH - 0.01))
    return _found(best)


def read_dates(pages: Sequence[Page]) -> tuple[Found[dt.date] | None, Found[dt.date] | None, list[str]]:
    due_options = _options(pages, DUE_DATE_LABELS, _first_date)
    issue_options = [
        option
        for option in _options(pages, ISSUE_DATE_LABELS, _first_date, refuse=_ISSUE_NOT)
        if not any(option.value == due.value and option.source.box == due.source.box for due in due_options)
    ]
    issue, due = _best(issue_options), _best(due_options)
    flags = []
    if issue is None:
        issue = _earliest_date(pages)
    if issue and due:
        if due.value < issue.value:
            flags.append(
                f"Date d'échéance ({due.value:%d/%m/%Y}) antérieure à la date de facture ({issue.value:%d/%m/%Y}) :"
                " à vérifier."
            )
            return _found(issue, min(issue.score, 0.45)), _found(due, min(due.score, 0.45)), flags
        if (due.value - issue.value).days <= 400:
            return _found(issue, issue.score + 0.05), _found(due, due.score + 0.05), flags
    return _found(issue), _found(due), flags


def _earliest_date(pages: Sequence[Page]) -> _Option | None:
    """No labelled date: the first date at the top of the first page, as a hint."""
    if not pages:
        return None
    page = pages[0]
    for row in page.rows[: max(1, len(page.rows) // 3)]:
        for segment in row:
            found = dates_in(segment.text)
            if found:
                value, span = found[0]
                words = _words_span(segment, span.start, span.end) or list(segment.words)
                source = Source(page.number, segment.text, HOW_LAYOUT, "", _union(words))
                return _Option(value, 0.35 * _ocr_factor(words), source)
    return None


# --- totals ------------------------------------------------------------------------------------------------------

_RATE = re.compile(r"(?<![\d,.])(\d{1,2}(?:[.,]\d{1,3})?)\s?%")
_NOT_VAT_ROW = re.compile(r"\b(?:remise|rabais|escompte|charge|frais|penalit|interet|acompte|discount)")
KNOWN_RATES = {
    Decimal(rate)
    for rate in (
        "0", "2.1", "5.5", "7", "8.5", "10", "13", "19.6", "20",
        "3", "4", "5", "6", "9", "12", "14", "15", "16", "17", "18", "19", "21", "22", "23", "24", "25", "27",
    )
}  # fmt: skip


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def read_vat_rates(pages: Sequence[Page]) -> list[VatRate]:
    """The VAT per rate: rows with a known rate followed by a base and its VAT (checked: base × rate = VAT), or a
    « TVA » row with a rate and one amount."""
    found: dict[Decimal, VatRate] = {}
    for page in pages:
        for row in page.rows:
            text = "   ".join(segment.text for segment in row)
            folded = fold(text)
            if _NOT_VAT_ROW.search(folded):
                continue
            words = [word for segment in row for word in segment.words]
            for match in _RATE.finditer(_digitised(text)):
                try:
                    rate = Decimal(match.group(1).replace(",", "."))
                except InvalidOperation:
                    continue
                if rate.normalize() not in {known.normalize() for known in KNOWN_RATES}:
                    continue
                if re.match(r"\s*(?:sur|de|of|on)\b", folded[match.end() :]):
                    continue
                after = [value for value, _span in amounts_in(text[match.end() :])]
                item = _vat_from(rate, after, folded, words, page.number, text)
                if item and (rate not in found or item.confidence > found[rate].confidence):
                    found[rate] = item
    return sorted(found.values(), key=lambda item: item.rate, reverse=True)


def _vat_from(rate, after, folded, words, page, text) -> VatRate | None:
    factor = _ocr_factor(words)
    source = Source(page, text, HOW_ARITHMETIC)
    for index, base in enumerate(after):
        for amount in after[index + 1 : index + 3]:
            if base > 0 and abs(_cents(base * rate / 100) - amount) <= CENT:
                return VatRate(rate, amount, base, _cap(0.95 * factor), source)
    if len(after) == 1 and re.search(r"\b(?:t\.?\s?v\.?\s?a|vat)(?![a-z])", folded):
        return VatRate(rate, after[0], None, _cap(0.7 * factor), Source(page, text, HOW_LABEL, "TVA"))
    return None


def read_totals(pages: Sequence[Page], vat_rates: Sequence[VatRate]):
    """HT, TVA, TTC: every labelled candidate, then the combination that adds up (HT + TVA = TTC) wins."""
    ht = _options(pages, HT_LABELS, _first_amount)
    tva = _options(pages, TVA_LABELS, _first_amount)
    ttc = _options(pages, TTC_LABELS, _first_amount)
    if len(vat_rates) > 1:
        # Several rates: a « TVA 20 % » row is one rate's VAT, not the total.
        tva = [option for option in tva if not _RATE.search(option.source.text)]
    if vat_rates:
        total = sum((item.amount for item in vat_rates), Decimal(0))
        confidence = min(item.confidence for item in vat_rates)
        tva.append(_Option(total, 0.6 * confidence, Source(vat_rates[0].source.page, "TVA par taux", HOW_ARITHMETIC)))
    ht, tva, ttc = (_dedupe(options) for options in (ht, tva, ttc))
    best = None
    for a in ht or [None]:
        for b in tva or [None]:
            for c in ttc or [None]:
                agree = a is not None and b is not None and c is not None and a.value + b.value == c.value
                score = sum(option.score for option in (a, b, c) if option) + (2.0 if agree else 0.0)
                order = sum(option.order for option in (a, b, c) if option)
                key = (round(score, 3), order)
                if best is None or key > best[0]:
                    best = (key, a, b, c, agree)
    if best is None:
        return None, None, None, None, []
    _key, a, b, c, agree = best
    flags: list[str] = []
    if agree:
        return (
            _found(a, a.score + 0.15),
            _found(b, b.score + 0.15),
            _found(c, c.score + 0.15),
            True,
            flags,
        )
    # Two of three: the third by arithmetic, never sure.
    if a and c and not b and c.value >= a.value:
        derived = _Option(
            c.value - a.value, 0.6 * min(a.score, c.score), Source(c.source.page, "TTC − HT", HOW_ARITHMETIC)
        )
        return _found(a, min(a.score, 0.75)), _found(derived), _found(c, min(c.score, 0.75)), None, flags
    if a and b and not c:
        derived = _Option(
            a.value + b.value, 0.6 * min(a.score, b.score), Source(b.source.page, "HT + TVA", HOW_ARITHMETIC)
        )
        return _found(a, min(a.score, 0.75)), _found(b, min(b.score, 0.75)), _found(derived), None, flags
    if b and c and not a and c.value >= b.value:
        derived = _Option(
            c.value - b.value, 0.6 * min(b.score, c.score), Source(c.source.page, "TTC − TVA", HOW_ARITHMETIC)
        )
        return _found(derived), _found(b, min(b.score, 0.75)), _found(c, min(c.score, 0.75)), None, flags
    if a and b and c:
        flags.append(
            f"Les totaux ne concordent pas : HT {_fr(a.value)} + TVA {_fr(b.value)} ≠ TTC {_fr(c.value)}. À vérifier."
        )
        if _vat_fits(a.value, b.value, vat_rates):
            # HT × the rate gives the TVA read: the TTC is the misread one.
            derived = _Option(a.value + b.value, 0.45, Source(b.source.page, "HT + TVA", HOW_ARITHMETIC))
            return _found(a, min(a.score, 0.45)), _found(b, min(b.score, 0.45)), _found(derived), False, flags
        if c.value >= a.value and min(a.score, c.score) >= 0.8 > b.score:
            # HT and TTC read surely, the TVA not: TTC − HT is the better guess, said as such.
            derived = _Option(c.value - a.value, 0.45, Source(c.source.page, "TTC − HT", HOW_ARITHMETIC))
            return _found(a, min(a.score, 0.45)), _found(derived), _found(c, min(c.score, 0.45)), False, flags
        return _found(a, min(a.score, 0.45)), _found(b, min(b.score, 0.45)), _found(c, min(c.score, 0.45)), False, flags
    return _found(a, _capped(a)), _found(b, _capped(b)), _found(c, _capped(c)), None, flags


def _vat_fits(ht: Decimal, tva: Decimal, vat_rates: Sequence[VatRate]) -> bool:
    """The VAT per rate explains both HT and TVA: one rate whose HT × rate is the TVA, or bases adding up to HT."""
    if not vat_rates or sum((item.amount for item in vat_rates), Decimal(0)) != tva:
        return False
    if len(vat_rates) == 1:
        return abs(_cents(ht * vat_rates[0].rate / 100) - tva) <= CENT
    bases = [item.base for item in vat_rates]
    return all(base is not None for base in bases) and sum(bases, Decimal(0)) == ht


def _capped(option: _Option | None) -> float:
    return min(option.score, 0.7) if option else 0.0


def _dedupe(options: list[_Option]) -> list[_Option]:
    """One option per value (the best), at most eight."""
    best: dict[Decimal, _Option] = {}
    for option in options:
        if option.value not in best or (option.score, option.order) > (
            best[option.value].score,
            best[option.value].order,
        ):
            best[option.value] = option
    return sorted(best.values(), key=lambda option: option.score, reverse=True)[:8]


def _fr(value: Decimal) -> str:
    return f"{value:,.2f}".replace(",", "\u202f").replace(".", ",")


# --- identifiers and parties -------------------------------------------------------------------------------------

_FR_VAT = re.compile(r"\bFR\s?[-.]?\s?([0-9A-Z]{2})\s?[-.]?\s?(\d{3})\s?[.]?\s?(\d{3})\s?[.]?\s?(\d{3})(?!\d)")
_EU_VAT = re.compile(
    r"\b(AT|BE|BG|CY|CZ|DE|DK|EE|EL|ES|FI|HR|HU|IE|IT|LT|LU|LV|MT|NL|PL|PT|RO|SE|SI|SK)\s?([0-9A-Z][0-9A-Z .]{7,16})"
)
_SIRET = re.compile(r"(?<![\d])(\d{3})\s?(\d{3})\s?(\d{3})\s?(\d{5})(?![\d])")
_SIREN = re.compile(r"(?<![\d])(\d{3})[\s.]?(\d{3})[\s.]?(\d{3})(?![\d])")
_IBAN = re.compile(r"\b([A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){2,7}(?:\s?[A-Z0-9]{1,3})?)\b")
_SIREN_LABEL = re.compile(r"\b(?:siren|rcs|r\.c\.s|siret|immatricul|identification)\b")
_SIRET_LABEL = re.compile(r"\bsiret\b")
_IBAN_LABEL = re.compile(r"\b(?:iban|rib|virement|bancaire|bank)\b")


@dataclass
class _Zone:
    party: str
    explicit: bool


def _zones(page: Page) -> dict[int, _Zone]:
    """The party of each segment (by id) of a page that a label puts in a block: the label's segment and what
    stands under it in its column, until two empty rows or another label."""
    zones: dict[int, _Zone] = {}
    for row_index, row in enumerate(page.rows):
        for position, segment in enumerate(row):
            text = fold(segment.text).strip()
            party = None
            if BUYER_LABELS.match(text):
                party = PARTY_BUYER
            elif OTHER_LABELS.match(text):
                party = PARTY_OTHER
            elif SELLER_LABELS.match(text):
                party = PARTY_SELLER
            if party is None:
                continue
            zones[id(segment)] = _Zone(party, True)
            right = row[position + 1].box.left if position + 1 < len(row) else 10**9
            left = segment.box.left - max(segment.box.height, 10)
            bottom = segment.box.bottom
            for below in page.rows[row_index + 1 : row_index + 1 + BLOCK_MAX_ROWS]:
                inside = [item for item in below if left <= item.box.left < right]
                if not inside:
                    continue
                # A blank line (a gap taller than a line) ends the block.
                if min(item.box.top for item in inside) - bottom > BLOCK_GAP_LINES * segment.box.height:
                    break
                bottom = max(item.box.bottom for item in inside)
                if any(
                    BUYER_LABELS.match(fold(item.text).strip())
                    or OTHER_LABELS.match(fold(item.text).strip())
                    or SELLER_LABELS.match(fold(item.text).strip())
                    for item in inside
                ):
                    break
                for item in inside:
                    zones.setdefault(id(item), _Zone(party, True))
    return zones


def _party_of(segment: Segment, zones: dict[int, _Zone], page: Page, before: str) -> tuple[str, float]:
    """(party, how sure) of an identifier in ``segment``; ``before`` is the text of its segment before it."""
    folded = fold(before)
    if _BUYER_INLINE.search(folded):
        return PARTY_BUYER, 1.0
    if _SELLER_INLINE.search(folded):
        return PARTY_SELLER, 1.0
    zone = zones.get(id(segment))
    if zone:
        return zone.party, 1.0
    if page.height and segment.box.top >= page.height * (1 - FOOTER_SHARE):
        return PARTY_SELLER, 1.0
    return PARTY_SELLER, 0.85


def _identifiers(pages: Sequence[Page]) -> list[Identifier]:
    found: list[Identifier] = []
    for page in pages:
        zones = _zones(page)
        previous = ""
        for row in page.rows:
            row_text = fold(" ".join(segment.text for segment in row))
            # A label at the end of the row above counts too (« … SIRET » / « 718 304 421 00131 »).
            for segment in row:
                found.extend(_segment_identifiers(segment, page, zones, f"{previous} {row_text}"))
            previous = row_text
    return found


def _segment_identifiers(segment: Segment, page: Page, zones, row_text: str) -> list[Identifier]:
    text = segment.text
    upper = _digitised(text).upper()
    folded = fold(text)
    taken: list[tuple[int, int]] = []
    out: list[Identifier] = []

    def add(scheme: str, value: str, start: int, end: int, strength: float) -> None:
        taken.append((start, end))
        words = _words_span(segment, start, end) or list(segment.words)
        party, sure = _party_of(segment, zones, page, text[:start])
        confidence = _cap(strength * sure * _ocr_factor(words))
        how = HOW_LABEL if strength >= 0.85 else HOW_PATTERN
        source = Source(page.number, text, how, scheme, _union(words))
        out.append(Identifier(scheme, value, party, Found(value, confidence, source)))

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in taken)

    for match in _IBAN.finditer(upper):
        value = re.sub(r"\s", "", match.group(1))
        # The IBAN may run on past its end into the BIC: try it shorter.
        for cut in range(len(value), 14, -1):
            if iban_number.is_valid(value[:cut]):
                strength = 0.95 if _IBAN_LABEL.search(folded) else 0.9
                add("iban", value[:cut], match.start(), match.end(), strength)
                break
    for match in _FR_VAT.finditer(upper):
        value = "FR" + "".join(match.groups())
        if free(match.start(), match.end()) and tva_number.is_valid(value):
            add("vat", value, match.start(), match.end(), 0.95)
    for match in _EU_VAT.finditer(upper):
        if not free(match.start(), match.end()):
            continue
        compact = match.group(1) + re.sub(r"[ .]", "", match.group(2))
        for cut in range(len(compact), 7, -1):
            if eu_vat.is_valid(compact[:cut]):
                add("vat", compact[:cut], match.start(), match.end(), 0.9)
                break
    labelled_siret = bool(_SIRET_LABEL.search(folded) or _SIRET_LABEL.search(row_text))
    for match in _SIRET.finditer(upper):
        value = "".join(match.groups())
        if free(match.start(), match.end()) and siret_number.is_valid(value):
            add("siret", value, match.start(), match.end(), 0.95 if labelled_siret else 0.6)
    labelled_siren = bool(_SIREN_LABEL.search(folded))
    for match in _SIREN.finditer(upper):
        value = "".join(match.groups())
        if free(match.start(), match.end()) and siren_number.is_valid(value):
            add("siren", value, match.start(), match.end(), 0.9 if labelled_siren else 0.3)
    return out


def _siren_of(identifier: Identifier) -> str:
    if identifier.scheme == "siren":
        return identifier.value
    if identifier.scheme == "siret":
        return identifier.value[:9]
    if identifier.scheme == "vat" and identifier.value.startswith("FR"):
        return identifier.value[4:]
    return ""


def _party(identifiers: list[Identifier], party: str, names: list[Found[str]]) -> Party:
    """The party's entity: its identifiers grouped by SIREN (a SIRET and a FR VAT number carry one), the group
    with the most and surest evidence first."""
    mine = [item for item in identifiers if item.party == party]
    groups: dict[str, list[Identifier]] = {}
    for item in mine:
        key = _siren_of(item) or f"{item.scheme}:{item.value}"
        if item.scheme != "iban":
            groups.setdefault(key, []).append(item)

    def weight(group: list[Identifier]) -> float:
        schemes = {item.scheme for item in group}
        return max(item.confidence for item in group) + 0.1 * (len(schemes) - 1) + 0.02 * len(group)

    ranked = sorted(groups.values(), key=weight, reverse=True)
    candidates: list[Identifier] = []
    best: dict[str, Found[str]] = {}
    for rank, group in enumerate(ranked):
        agree = len({item.scheme for item in group}) > 1
        for item in sorted(group, key=lambda i: i.confidence, reverse=True):
            confidence = item.confidence
            if agree:
                confidence = _cap(max(confidence, 0.8) + 0.1)
            if rank > 0:
                # A second entity on the seller's side: a hint, never a sure supplier.
                confidence = min(confidence, 0.6)
            found = Found(item.value, confidence, item.found.source)
            candidates.append(Identifier(item.scheme, item.value, item.party, found))
            if rank == 0 and item.scheme not in best:
                best[item.scheme] = found
    if ranked and "siren" not in best:
        top = ranked[0][0]
        siren = _siren_of(top)
        if siren:
            best["siren"] = Found(siren, top.confidence, replace(top.found.source, how=HOW_ARITHMETIC))
    ibans = sorted((item for item in mine if item.scheme == "iban"), key=lambda i: i.confidence, reverse=True)
    candidates.extend(ibans)
    return Party(
        name=names[0] if names else None,
        siren=best.get("siren"),
        siret=best.get("siret"),
        vat=best.get("vat"),
        iban=ibans[0].found if ibans else None,
        candidates=tuple(candidates),
        names=tuple(names),
    )


# --- names -------------------------------------------------------------------------------------------------------

_LEGAL_FORM = re.compile(
    r"\b(?:sas|sasu|sarl|eurl|sa|snc|sci|scop|selarl|gie|gmbh|ag|bv|b\.v\.|nv|ab|ltd|limited|inc|llc|spa|s\.p\.a|srl"
    r"|&\s*cie|et\s+fils|freres)\b"
)
_NOT_A_NAME = re.compile(
    r"(?:^\d|\bn\s?[°º]|\b(?:facture|invoice|avoir|devis|date|echeance|page|tel|telephone|fax|mail|www|http|siret"
    r"|siren|tva|vat|iban|rue|avenue|boulevard|bd|place|chemin|allee|route|quai|impasse|cedex|bp|zi|za|zac|capital"
    r"|rcs|total|client|logo|emetteur|fournisseur|reference|references|designation|montant|description|quantite"
    r"|qte|prix|contact)\b|@|\d{4}|\d[/.]\d)"
)
# What separates a name from the address or the identifiers written after it on the same line.
_NAME_END = re.compile(r"\s[·•|+–—-]\s|,\s|\s:\s")


def _names(pages: Sequence[Page], zones_party: str) -> list[Found[str]]:
    """Candidate names of the seller (``zones_party`` « seller ») or the buyer, best first."""
    if not pages:
        return []
    page = pages[0]
    zones = _zones(page)
    options: list[tuple[float, Found[str]]] = []
    heights = sorted(segment.box.height for segment in page.segments) or [1]
    median = heights[len(heights) // 2] or 1
    top_rows = page.rows[: max(3, len(page.rows) // 4)]
    for row_index, row in enumerate(page.rows):
        for segment in row:
            text = segment.text.strip(" :-–,")
            folded = fold(text)
            zone = zones.get(id(segment))
            if zones_party == PARTY_BUYER:
                if not zone or zone.party != PARTY_BUYER:
                    continue
                label = BUYER_LABELS.match(folded)
                if label:
                    text = text[label.end() :].strip(" :-–,")
                    folded = fold(text)
            elif zone and zone.party != PARTY_SELLER:
                continue
            capital = re.search(r"\b(?:au\s+capital|capital\s+de|-\s*rcs|rcs\b)", folded)
            if capital and zones_party == PARTY_SELLER:
                text = text[: capital.start()].strip(" -–,")
                folded = fold(text)
                if text and not _NOT_A_NAME.search(folded):
                    options.append((0.55, Found(text, 0.55 * segment.confidence, _name_source(page, segment))))
                continue
            head = _NAME_END.split(text, maxsplit=1)[0].strip(" :-–,")
            if head != text and len(head) >= 3:
                text, folded = head, fold(head)
            if len(re.sub(r"[^a-z]", "", folded)) < 3 or _NOT_A_NAME.search(folded):
                continue
            if zones_party == PARTY_SELLER and row not in top_rows:
                continue
            score = 0.4
            if _LEGAL_FORM.search(folded):
                score += 0.25
            score += min(0.2, 0.1 * (segment.box.height / median - 1))
            score -= 0.02 * row_index
            if zone and zone.explicit:
                score += 0.1
            options.append(
                (score, Found(text, _cap(min(0.7, score) * segment.confidence), _name_source(page, segment)))
            )
    options.sort(key=lambda item: item[0], reverse=True)
    seen, out = set(), []
    for _score, found in options:
        if found.value.lower() not in seen:
            seen.add(found.value.lower())
            out.append(found)
    return out[:5]


def _name_source(page: Page, segment: Segment) -> Source:
    return Source(page.number, segment.text, HOW_LAYOUT, "", segment.box)


# --- the whole reading -------------------------------------------------------------------------------------------


def read_fields(pages: Sequence[Page]) -> Reading:
    """Everything the pages say, each field with its source and confidence; disagreements in ``flags``."""
    pages = [page for page in pages if not page.error]
    identifiers = _identifiers(pages)
    supplier = _party(identifiers, PARTY_SELLER, _names(pages, PARTY_SELLER))
    buyer = _party(identifiers, PARTY_BUYER, _names(pages, PARTY_BUYER))
    number = read_number(pages)
    issue, due, date_flags = read_dates(pages)
    rates = read_vat_rates(pages)
    ht, tva, ttc, agree, total_flags = read_totals(pages, rates)
    flags = [*date_flags, *total_flags]
    if rates and tva is not None:
        by_rate = sum((item.amount for item in rates), Decimal(0))
        if by_rate != tva.value:
            flags.append(
                f"La TVA par taux ({_fr(by_rate)}) ne fait pas le total de TVA ({_fr(tva.value)}) : à vérifier."
            )
    return Reading(
        supplier=supplier,
        buyer=buyer,
        number=number,
        issue_date=issue,
        due_date=due,
        total_ht=ht,
        total_tva=tva,
        total_ttc=ttc,
        vat=tuple(rates),
        totals_agree=agree,
        flags=tuple(flags),
    )
