"""Which supplier of the referential an invoice comes from, from what the invoice says: pure functions, no Django.

The clues are the seller's identifiers as read (SIREN, SIRET, VAT number, IBAN — each with its confidence) and
its candidate names; the referential is plain data (``KnownSupplier``: code, name, SIREN, VAT, IBAN…), so the
intake passes its ``Supplier`` rows and the measure passes a list built from truth files.

The order, and what each is worth:
1. SIREN, SIRET, FR VAT number (and a foreign VAT number, compared as written): the legal identity. One supplier
   found → as sure as the identifier was read; two suppliers with it, nothing to tell them apart → at most
   medium; found only through a second-rank identifier of the page → at most medium.
2. IBAN: one supplier with it → high but below a legal identifier; two (a factoring company's account) → none.
3. The name, normalised (accents, case, punctuation, legal forms) and compared fuzzily with a high threshold: at
   most medium, and nothing when two suppliers come as close.
Never a wrong supplier with high confidence: what could be a coincidence or a neighbour is held at medium or below.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

HIGH = 0.8
MEDIUM = 0.5
# A name this similar (0–1) is a candidate; the next best must stay NAME_MARGIN behind.
NAME_THRESHOLD = 0.9
NAME_MARGIN = 0.06
NAME_CAP = 0.6
IBAN_CAP = 0.88
AMBIGUOUS_CAP = 0.5
SECOND_RANK_CAP = 0.6

_LEGAL_WORDS = {
    "sas", "sasu", "sarl", "eurl", "sa", "snc", "sci", "scop", "selarl", "gie", "gmbh", "ag", "bv", "nv", "ab",
    "ltd", "limited", "inc", "llc", "spa", "srl", "cie", "et", "fils", "freres", "societe", "ste", "ets",
    "etablissements", "groupe", "the", "and", "de", "des", "du", "la", "le", "les",
}  # fmt: skip


@dataclass(frozen=True)
class KnownSupplier:
    code: str
    name: str
    siren: str = ""
    vat: str = ""
    iban: str = ""
    siret: str = ""


@dataclass(frozen=True)
class Clue:
    scheme: str  # siren, siret, vat, iban, name
    value: str
    confidence: float
    # 0 for the identifiers of the best-ranked seller entity of the page, more for the others.
    rank: int = 0


@dataclass(frozen=True)
class SupplierMatch:
    code: str | None
    confidence: float
    method: str = ""
    reason: str = ""
    alternatives: tuple[str, ...] = ()

    @property
    def sure(self) -> bool:
        return self.code is not None and self.confidence >= HIGH


def _compact(value: str) -> str:
    return re.sub(r"[\s.\-]", "", value or "").upper()


def normalised_name(name: str) -> str:
    """« Société Générale d'Électricité S.A.S. » → « generale electricite »."""
    text = unicodedata.normalize("NFKD", name or "")
    text = "".join(char for char in text if not unicodedata.combining(char)).lower()
    text = re.sub(r"\b([a-z])\.(?=[a-z]\.)", r"\1", text).replace(".", "")
    words = re.findall(r"[a-z0-9]+", text.replace("'", " "))
    kept = [word for word in words if word not in _LEGAL_WORDS and len(word) > 1]
    return " ".join(kept or words)


def name_similarity(a: str, b: str) -> float:
    left, right = normalised_name(a), normalised_name(b)
    if not left or not right:
        return 0.0
    if left == right:
        return 1.0
    # Word order may differ (« Dupont Transports » / « Transports Dupont »): compare sorted words too.
    ordered = difflib.SequenceMatcher(None, left, right).ratio()
    shuffled = difflib.SequenceMatcher(None, " ".join(sorted(left.split())), " ".join(sorted(right.split()))).ratio()
    return max(ordered, shuffled)


def _identity_keys(clue: Clue) -> set[tuple[str, str]]:
    value = _compact(clue.value)
    if clue.scheme == "siren":
        return {("siren", value)}
    if clue.scheme == "siret":
        return {("siret", value), ("siren", value[:9])}
    if clue.scheme == "vat":
        keys = {("vat", value)}
        if value.startswith("FR") and len(value) == 13:
            keys.add(("siren", value[4:]))
        return keys
    return set()


def _supplier_keys(supplier: KnownSupplier) -> set[tuple[str, str]]:
    keys = set()
    siren = _compact(supplier.siren)
    vat = _compact(supplier.vat)
    siret = _compact(supplier.siret)
    if siren:
        keys.add(("siren", siren))
    if vat:
        keys.add(("vat", vat))
        if vat.startswith("FR") and len(vat) == 13:
            keys.add(("siren", vat[4:]))
    if siret:
        keys.add(("siret", siret))
        keys.add(("siren", siret[:9]))
    return keys


def supplier_match(*, clues: Sequence[Clue], suppliers: Iterable[KnownSupplier]) -> SupplierMatch:
    """The referential's supplier the clues point at, with how sure; ``code`` None when nothing fits well enough."""
    suppliers = list(suppliers)
    by_identity = _by_identity(clues, suppliers)
    if by_identity is not None:
        return _with_names(by_identity, clues, suppliers)
    by_iban = _by_iban(clues, suppliers)
    if by_iban is not None:
        return by_iban
    return _by_name(clues, suppliers)


def _by_identity(clues: Sequence[Clue], suppliers: list[KnownSupplier]) -> SupplierMatch | None:
    index: dict[tuple[str, str], list[KnownSupplier]] = {}
    for supplier in suppliers:
        for key in _supplier_keys(supplier):
            index.setdefault(key, []).append(supplier)
    identity = [clue for clue in clues if clue.scheme in ("siren", "siret", "vat")]
    for rank in sorted({clue.rank for clue in identity}):
        hits: dict[str, tuple[KnownSupplier, float, str, int]] = {}
        for clue in (clue for clue in identity if clue.rank == rank):
            for key in _identity_keys(clue):
                for supplier in index.get(key, []):
                    strength = 2 if key[0] in ("siret", "vat") else 1
                    previous = hits.get(supplier.code)
                    score = clue.confidence
                    if previous is None or (strength, score) > (previous[3], previous[1]):
                        hits[supplier.code] = (supplier, score, clue.scheme, strength)
        if not hits:
            continue
        ranked = sorted(hits.values(), key=lambda hit: (hit[3], hit[1]), reverse=True)
        supplier, score, scheme, strength = ranked[0]
        alternatives = tuple(hit[0].code for hit in ranked[1:])
        cap = 0.99 if rank == 0 else SECOND_RANK_CAP
        if alternatives and ranked[1][3] == strength:
            return SupplierMatch(
                supplier.code,
                min(score, AMBIGUOUS_CAP),
                scheme,
                f"Plusieurs fournisseurs du référentiel ont ce {scheme.upper()} : à choisir.",
                alternatives,
            )
        return SupplierMatch(
            supplier.code,
            round(min(score, cap), 3),
            scheme,
            f"Fournisseur trouvé par son {_scheme_label(scheme)}.",
            alternatives,
        )
    return None


def _scheme_label(scheme: str) -> str:
    return {"siren": "SIREN", "siret": "SIRET", "vat": "numéro de TVA", "iban": "IBAN"}.get(scheme, scheme)


def _with_names(match: SupplierMatch, clues: Sequence[Clue], suppliers: list[KnownSupplier]) -> SupplierMatch:
    """An identity match whose page names another supplier of the referential, and not it, is held at medium:
    the identifier read may be a neighbour's (a buyer of the group that is also a supplier)."""
    names = [clue for clue in clues if clue.scheme == "name"]
    if not names or match.confidence < HIGH:
        return match
    chosen = next(supplier for supplier in suppliers if supplier.code == match.code)
    own = max(name_similarity(clue.value, chosen.name) for clue in names)
    for supplier in suppliers:
        if supplier.code == match.code:
            continue
        other = max(name_similarity(clue.value, supplier.name) for clue in names)
        if other >= 0.97 and own < 0.5:
            return SupplierMatch(
                match.code,
                SECOND_RANK_CAP,
                match.method,
                f"{match.reason} Le nom lu ressemble pourtant à {supplier.code} {supplier.name} : à vérifier.",
                (*match.alternatives, supplier.code),
            )
    return match


def _by_iban(clues: Sequence[Clue], suppliers: list[KnownSupplier]) -> SupplierMatch | None:
    for clue in sorted((c for c in clues if c.scheme == "iban"), key=lambda c: c.confidence, reverse=True):
        value = _compact(clue.value)
        found = [supplier for supplier in suppliers if supplier.iban and _compact(supplier.iban) == value]
        if len(found) == 1:
            return SupplierMatch(found[0].code, round(min(clue.confidence, IBAN_CAP), 3), "iban", "Trouvé par l'IBAN.")
        if len(found) > 1:
            return SupplierMatch(
                None,
                0.0,
                "iban",
                "Plusieurs fournisseurs partagent cet IBAN (affacturage ?) : à choisir.",
                tuple(s.code for s in found),
            )
    return None


def _by_name(clues: Sequence[Clue], suppliers: list[KnownSupplier]) -> SupplierMatch:
    names = [clue for clue in clues if clue.scheme == "name"]
    if not names or not suppliers:
        return SupplierMatch(None, 0.0, "", "Aucun fournisseur du référentiel ne correspond.")
    scored = []
    for supplier in suppliers:
        best = max(((name_similarity(clue.value, supplier.name), clue) for clue in names), key=lambda item: item[0])
        scored.append((best[0], best[1], supplier))
    scored.sort(key=lambda item: item[0], reverse=True)
    similarity, clue, supplier = scored[0]
    runner_up = scored[1][0] if len(scored) > 1 else 0.0
    if similarity < NAME_THRESHOLD:
        return SupplierMatch(None, 0.0, "name", "Aucun fournisseur du référentiel ne porte ce nom.")
    if runner_up > similarity - NAME_MARGIN:
        close = tuple(item[2].code for item in scored if item[0] > similarity - NAME_MARGIN)
        return SupplierMatch(
            None, 0.0, "name", "Plusieurs fournisseurs du référentiel portent un nom proche : à choisir.", close
        )
    confidence = min(NAME_CAP, similarity * max(clue.confidence, 0.5) + 0.1)
    return SupplierMatch(supplier.code, round(confidence, 3), "name", "Trouvé par le nom seulement : à vérifier.")


def clues_from_reading(reading) -> list[Clue]:
    """The clues of a ``scan_fields.Reading``: the seller's ranked identifiers, then its candidate names."""
    clues: list[Clue] = []
    siren_rank: dict[str, int] = {}
    for identifier in reading.supplier.candidates:
        key = _siren_key(identifier.scheme, identifier.value)
        rank = siren_rank.setdefault(key, len(siren_rank)) if identifier.scheme != "iban" else 0
        clues.append(Clue(identifier.scheme, identifier.value, identifier.confidence, rank))
    clues.extend(Clue("name", found.value, found.confidence) for found in reading.supplier.names)
    return clues


def _siren_key(scheme: str, value: str) -> str:
    if scheme == "siret":
        return value[:9]
    if scheme == "vat" and value.startswith("FR"):
        return value[4:]
    return value
