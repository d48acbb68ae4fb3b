"""Validation of what Sage FRP 1000 sends: every item is checked, a malformed one is reported, not fatal."""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

# EN 16931's VAT categories (UNTDID 5305), which a tax code may say it books.
VAT_CATEGORIES = ("S", "Z", "E", "AE", "K", "G", "O", "L", "M")
KINDS = ("accounts", "suppliers", "journals", "tax-codes", "analytic-sections", "payment-modes")
CODE_MAX = 40
LABEL_MAX = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ItemError(ValueError):
    """One item of a referential page that cannot be stored; its message is French and short."""


@dataclass(frozen=True)
class ItemProblem:
    code: str | None
    message: str

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message}


def _text(raw: dict, name: str, *, max_length: int, required: bool = False, default: str = "") -> str:
    value = raw.get(name)
    if value is None or value == "":
        if required:
            raise ItemError(f"champ « {name} » manquant")
        return default
    if not isinstance(value, str):
        raise ItemError(f"champ « {name} » : texte attendu")
    value = value.strip()
    if required and not value:  # spaces only: as absent
        raise ItemError(f"champ « {name} » manquant")
    if _CONTROL.search(value):
        raise ItemError(f"champ « {name} » : caractères de contrôle interdits")
    if len(value) > max_length:
        raise ItemError(f"champ « {name} » trop long ({len(value)} caractères ; {max_length} au maximum)")
    return value


def _bool(raw: dict, name: str, *, default: bool | None = None) -> bool:
    value = raw.get(name)
    if value is None:
        if default is None:
            raise ItemError(f"champ « {name} » manquant")
        return default
    if not isinstance(value, bool):
        raise ItemError(f"champ « {name} » : vrai ou faux attendu")
    return value


def parse_timestamp(value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise ItemError("champ « modified_at » manquant ou invalide")
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ItemError(f"date de modification invalide : {value[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


def _common(raw: dict) -> dict:
    code = _text(raw, "code", max_length=CODE_MAX, required=True)
    return {
        "code": code,
        "label": _text(raw, "label", max_length=LABEL_MAX, default=code),
        "active": _bool(raw, "active"),
        "modified_at": parse_timestamp(raw.get("modified_at")),
    }


def _supplier(raw: dict) -> dict:
    siren = _text(raw, "siren", max_length=9)
    if siren and not (siren.isascii() and siren.isdigit()):  # « ² » and other Unicode digits are not a SIREN's
        raise ItemError(f"SIREN invalide : {siren!r}")
    terms = raw.get("payment_terms_days", 30)
    if not isinstance(terms, int) or isinstance(terms, bool) or not 0 <= terms <= 365:
        raise ItemError("délai de paiement invalide (0 à 365 jours)")
    return {
        "siren": siren,
        "vat_number": _text(raw, "vat_number", max_length=20).replace(" ", "").upper(),
        "city": _text(raw, "city", max_length=100),
        "collective_account": _text(raw, "collective_account", max_length=CODE_MAX, default="401000"),
        "blocked": _bool(raw, "blocked", default=False),
        "payment_terms_days": terms,
        "payment_mode": _text(raw, "payment_mode", max_length=CODE_MAX),
        "default_expense_account": _text(raw, "default_expense_account", max_length=CODE_MAX),
    }


def _tax_code(raw: dict) -> dict:
    try:
        rate = Decimal(str(raw.get("rate")))
    except InvalidOperation:
        raise ItemError(f"taux de TVA invalide : {raw.get('rate')!r}") from None
    if not rate.is_finite() or not Decimal("0") <= rate <= Decimal("100"):
        raise ItemError(f"taux de TVA invalide : {raw.get('rate')!r}")
    category = _text(raw, "vat_category", max_length=2).upper()
    if category and category not in VAT_CATEGORIES:
        raise ItemError(f"catégorie de TVA inconnue : {category!r}")
    return {
        "rate": rate.quantize(Decimal("0.01")),
        "deductible_account": _text(raw, "deductible_account", max_length=CODE_MAX),
        "collected_account": _text(raw, "collected_account", max_length=CODE_MAX),
        "vat_category": category,
    }


_EXTRA = {
    "accounts": lambda raw: {"nature": _text(raw, "nature", max_length=20, default="autre")},
    "suppliers": _supplier,
    "journals": lambda raw: {"type": _text(raw, "type", max_length=20, default="od")},
    "tax-codes": _tax_code,
    "analytic-sections": lambda raw: {"axis": _text(raw, "axis", max_length=CODE_MAX, required=True)},
    "payment-modes": lambda raw: {},
}


def clean_item(kind: str, raw: Any) -> dict:
    """The item as SFD stores it, or ``ItemError`` saying in French what is wrong with it."""
    if not isinstance(raw, dict):
        raise ItemError("élément illisible (objet JSON attendu)")
    if kind in _FAST_TEXTS:
        item = _clean_fast(kind, raw)
        if item is not None:
            return item
    return _common(raw) | _EXTRA[kind](raw)


# --- the fast path ---------------------------------------------------------------------------------------------------
# Nine items in ten thousand are well formed: the checks above, field by field (a call, a regular expression each),
# were half of a first pull's CPU. ``_clean_fast`` applies the same rules to a well-formed item in one pass (one
# search for control characters over all its texts) and gives up, returning None, at the first doubt: the field-by-
# field path above then runs and says exactly what is wrong. Tests hold the two paths to the same results.

# The texts of each kind after code and label, in the order the checks above read them: (name, max length, default
# when absent or empty; None when required). Tax codes (a decimal rate, a category) always take the path above.
_FAST_TEXTS: dict[str, tuple[tuple[str, int, str | None], ...]] = {
    "accounts": (("nature", 20, "autre"),),
    "suppliers": (
        ("siren", 9, ""),
        ("vat_number", 20, ""),
        ("city", 100, ""),
        ("collective_account", CODE_MAX, "401000"),
        ("payment_mode", CODE_MAX, ""),
        ("default_expense_account", CODE_MAX, ""),
    ),
    "journals": (("type", 20, "od"),),
    "analytic-sections": (("axis", CODE_MAX, None),),
    "payment-modes": (),
}


@functools.lru_cache(maxsize=4096)
def _timestamp_of(value: str) -> dt.datetime:
    """``parse_timestamp`` of a text, remembered: a referential's items share few modification times."""
    return parse_timestamp(value)


def _clean_fast(kind: str, raw: dict) -> dict | None:
    code = raw.get("code")
    if code.__class__ is not str or not code:
        return None
    code = code.strip()
    if not code:
        return None
    label = raw.get("label")
    if label is None or label == "":
        label = code
    elif label.__class__ is not str:
        return None
    else:
        label = label.strip()
    active = raw.get("active")
    modified_at = raw.get("modified_at")
    if len(code) > CODE_MAX or len(label) > LABEL_MAX or active.__class__ is not bool:
        return None
    if modified_at.__class__ is not str:
        return None
    try:
        modified_at = _timestamp_of(modified_at)
    except ItemError:
        return None
    item = {"code": code, "label": label, "active": active, "modified_at": modified_at}
    texts = [code, label]
    for name, max_length, default in _FAST_TEXTS[kind]:
        value = raw.get(name)
        if value is None or value == "":
            if default is None:
                return None
            value = default
        elif value.__class__ is not str:
            return None
        else:
            value = value.strip()
            if len(value) > max_length:
                return None
            texts.append(value)
        item[name] = value
    joined = "".join(texts)
    # A printable text holds no control character: the search only runs on the rest (a non-breaking space…).
    if not joined.isprintable() and _CONTROL.search(joined):
        return None
    if kind == "suppliers":
        siren = item["siren"]
        if siren and not (siren.isascii() and siren.isdigit()):
            return None
        blocked = raw.get("blocked")
        terms = raw.get("payment_terms_days", 30)
        if blocked is None:
            blocked = False
        elif blocked.__class__ is not bool:
            return None
        if terms.__class__ is not int or not 0 <= terms <= 365:
            return None
        item["vat_number"] = item["vat_number"].replace(" ", "").upper()
        item["blocked"] = blocked
        item["payment_terms_days"] = terms
    return item


def clean_company(raw: Any) -> dict:
    if not isinstance(raw, dict):
        raise ItemError("société illisible (objet JSON attendu)")
    closed_until = raw.get("closed_until")
    if closed_until is not None:
        try:
            closed_until = dt.date.fromisoformat(str(closed_until))
        except ValueError:
            raise ItemError(f"date de clôture invalide : {str(closed_until)[:20]!r}") from None
    return {
        "code": _text(raw, "code", max_length=CODE_MAX, required=True),
        "name": _text(raw, "name", max_length=200, required=True),
        "siren": _text(raw, "siren", max_length=9),
        "vat_number": _text(raw, "vat_number", max_length=20).replace(" ", "").upper(),
        "currency": _text(raw, "currency", max_length=3, default="EUR"),
        "closed_until": closed_until,
        "analytic_required": _bool(raw, "analytic_required", default=False),
    }
