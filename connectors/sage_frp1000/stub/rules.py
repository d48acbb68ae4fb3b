"""The ERP's own booking rules, as the stub enforces them on every posted entry."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from decimal import Decimal, InvalidOperation

from .store import Store

LABEL_MAX = 60
AMOUNT_RE = re.compile(r"^\d{1,13}\.\d{2}$")
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
RATE_RE = re.compile(r"^\d{1,9}(\.\d{1,6})?$")
ACCOUNTING_CURRENCY = "EUR"


def payload_hash(entry: dict) -> str:
    """Hash of what Sage books: the same key with another payload is a conflict, not a duplicate."""
    significant = {key: value for key, value in entry.items() if key not in ("bap", "bap_date")}
    return hashlib.sha256(json.dumps(significant, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _error(code: str, field: str, message: str) -> dict:
    return {"code": code, "field": field, "message": message}


def _date(value, field: str, errors: list[dict]) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        errors.append(_error("DATE_INVALID", field, f"Date invalide : {value!r}"))
        return None


def _amount(value, field: str, errors: list[dict]) -> Decimal | None:
    if not isinstance(value, str) or not AMOUNT_RE.match(value):
        errors.append(_error("AMOUNT_INVALID", field, f"Montant invalide : {value!r} (attendu : 1234.56)"))
        return None
    try:
        return Decimal(value)
    except InvalidOperation:  # pragma: no cover - the pattern already guarantees a decimal
        errors.append(_error("AMOUNT_INVALID", field, f"Montant invalide : {value!r}"))
        return None


def _currency_and_rate(entry: dict, errors: list[dict]) -> Decimal | None:
    """An entry in a foreign currency: its ISO code and its rate (EUR for one unit); None for an entry in euros."""
    currency = entry.get("currency", ACCOUNTING_CURRENCY)
    if not isinstance(currency, str) or not CURRENCY_RE.match(currency):
        errors.append(_error("CURRENCY_INVALID", "currency", f"Devise invalide : {currency!r} (attendu : USD)."))
        return None
    if currency == ACCOUNTING_CURRENCY:
        return None
    rate = entry.get("rate")
    if not isinstance(rate, str) or not RATE_RE.match(rate) or Decimal(rate) <= 0:
        errors.append(
            _error("RATE_INVALID", "rate", f"Cours invalide pour {currency} : {rate!r} (attendu : 0.923400).")
        )
        return None
    return Decimal(rate)


def _check_conversion(line: dict, amount: Decimal, rate: Decimal, count: int, field: str, errors: list[dict]) -> None:
    """Each line of an entry in a foreign currency says its amount in that currency, and its euros are that amount
    at the rate, to the rounding of the conversion (the balancing line may hold up to a cent per line)."""
    value = line.get("currency_amount")
    if not isinstance(value, str) or not AMOUNT_RE.match(value):
        errors.append(_error("AMOUNT_INVALID", field, f"Montant en devise invalide : {value!r} (attendu : 1234.56)."))
        return
    if abs(Decimal(value) * rate - amount) > Decimal("0.01") * count:
        errors.append(
            _error("AMOUNT_INVALID", field, f"{value} au cours de {rate} ne donne pas {amount} : montant incohérent.")
        )


def validate_entry(store: Store, db, company: dict, entry: dict) -> list[dict]:
    """Every error Sage would raise for this entry (an empty list: it can be booked)."""
    errors: list[dict] = []
    code = company["code"]

    def ref(kind: str, item_code) -> dict | None:
        row = db.execute(
            "SELECT data FROM referential WHERE company = ? AND kind = ? AND code = ?",
            (code, kind, str(item_code)),
        ).fetchone()
        return json.loads(row[0]) if row else None

    journal = ref("journals", entry.get("journal"))
    if journal is None:
        errors.append(_error("JOURNAL_UNKNOWN", "journal", f"Le journal {entry.get('journal')} n'existe pas."))
    elif not journal.get("active", True):
        errors.append(_error("JOURNAL_INACTIVE", "journal", f"Le journal {entry.get('journal')} est inactif."))

    date = _date(entry.get("date"), "date", errors)
    due = _date(entry.get("due_date"), "due_date", errors) if entry.get("due_date") else None
    if date and company.get("closed_until") and date <= dt.date.fromisoformat(company["closed_until"]):
        errors.append(_error("PERIOD_CLOSED", "date", f"La période est clôturée jusqu'au {company['closed_until']}."))
    if date and due and due < date:
        errors.append(_error("DUE_DATE_BEFORE_DATE", "due_date", "L'échéance précède la date de la pièce."))

    label = entry.get("label") or ""
    if len(label) > LABEL_MAX:
        errors.append(_error("LABEL_TOO_LONG", "label", f"Libellé trop long ({len(label)} > {LABEL_MAX})."))

    lines = entry.get("lines")
    if not isinstance(lines, list) or len(lines) < 2:
        errors.append(_error("UNBALANCED", "lines", "Une écriture a au moins deux lignes."))
        return errors
    rate = _currency_and_rate(entry, errors)

    total_debit = Decimal("0")
    total_credit = Decimal("0")
    supplier_code = None
    for index, line in enumerate(lines):
        prefix = f"lines[{index}]"
        if not isinstance(line, dict):
            errors.append(_error("AMOUNT_INVALID", prefix, "Ligne invalide."))
            continue
        account = ref("accounts", line.get("account"))
        if account is None:
            errors.append(
                _error("ACCOUNT_UNKNOWN", f"{prefix}.account", f"Le compte {line.get('account')} n'existe pas.")
            )
        elif not account.get("active", True):
            errors.append(
                _error("ACCOUNT_INACTIVE", f"{prefix}.account", f"Le compte {line.get('account')} est inactif.")
            )
        if line.get("supplier"):
            supplier_code = line["supplier"]
            supplier = ref("suppliers", line["supplier"])
            if supplier is None:
                errors.append(
                    _error("SUPPLIER_UNKNOWN", f"{prefix}.supplier", f"Le tiers {line['supplier']} n'existe pas.")
                )
            elif supplier.get("blocked") or not supplier.get("active", True):
                errors.append(
                    _error("SUPPLIER_BLOCKED", f"{prefix}.supplier", f"Le tiers {line['supplier']} est bloqué.")
                )
        if line.get("tax_code") and ref("tax-codes", line["tax_code"]) is None:
            errors.append(
                _error("TAX_CODE_UNKNOWN", f"{prefix}.tax_code", f"Le code TVA {line['tax_code']} n'existe pas.")
            )
        if len(line.get("label") or "") > LABEL_MAX:
            errors.append(_error("LABEL_TOO_LONG", f"{prefix}.label", f"Libellé de ligne trop long (> {LABEL_MAX})."))
        debit = _amount(line.get("debit", "0.00"), f"{prefix}.debit", errors)
        credit = _amount(line.get("credit", "0.00"), f"{prefix}.credit", errors)
        if debit is not None and credit is not None:
            if debit and credit:
                errors.append(_error("AMOUNT_INVALID", prefix, "Une ligne est au débit ou au crédit, pas les deux."))
            total_debit += debit
            total_credit += credit
            if rate is not None:
                _check_conversion(line, debit + credit, rate, len(lines), f"{prefix}.currency_amount", errors)
        analytic = line.get("analytic") or []
        is_expense = str(line.get("account", "")).startswith("6")
        if company.get("analytic_required") and is_expense and not analytic:
            errors.append(
                _error("ANALYTIC_REQUIRED", f"{prefix}.analytic", "La ventilation analytique est obligatoire.")
            )
        for position, part in enumerate(analytic):
            section = ref("analytic-sections", part.get("section") if isinstance(part, dict) else None)
            if section is None or (isinstance(part, dict) and section.get("axis") != part.get("axis")):
                section_code = part.get("section") if isinstance(part, dict) else part
                errors.append(
                    _error(
                        "ANALYTIC_SECTION_UNKNOWN",
                        f"{prefix}.analytic[{position}].section",
                        f"La section analytique {section_code} n'existe pas.",
                    )
                )
    if total_debit != total_credit:
        errors.append(
            _error("UNBALANCED", "lines", f"Écriture déséquilibrée : débit {total_debit}, crédit {total_credit}.")
        )

    reference = entry.get("piece_reference")
    if supplier_code and reference:
        booked = store.booked_for_reference(db, code, supplier_code, reference)
        if booked is not None and booked["external_id"] != entry.get("external_id"):
            errors.append(
                _error(
                    "DUPLICATE_INVOICE",
                    "piece_reference",
                    f"La facture {reference} du tiers {supplier_code} est déjà comptabilisée"
                    f" (pièce {booked['piece_number']}).",
                )
            )
    return errors
