"""What to tell the accountant about each error Sage FRP 1000 raises: a French message and how to fix it in SFD."""

from __future__ import annotations

import re

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

HINTS = {
    "JOURNAL_UNKNOWN": gettext_lazy(
        "Le journal {journal} n'existe pas dans Sage FRP 1000 : indiquez le bon journal des achats dans "
        "Administration → Société, ou créez-le dans Sage."
    ),
    "JOURNAL_INACTIVE": gettext_lazy(
        "Le journal {journal} est inactif dans Sage FRP 1000 : réactivez-le dans Sage ou changez le journal des "
        "achats de la société."
    ),
    "ACCOUNT_UNKNOWN": gettext_lazy(
        "Le compte {account} n'existe pas dans Sage FRP 1000 : choisissez un autre compte sur la ligne de la facture, "
        "ou mettez à jour le référentiel s'il vient d'être créé dans Sage."
    ),
    "ACCOUNT_INACTIVE": gettext_lazy(
        "Le compte {account} est inactif dans Sage FRP 1000 : choisissez un compte actif sur la ligne de la facture."
    ),
    "SUPPLIER_UNKNOWN": gettext_lazy(
        "Le fournisseur {supplier} n'existe pas dans Sage FRP 1000 : changez de fournisseur ou mettez à jour le "
        "référentiel de la société."
    ),
    "SUPPLIER_BLOCKED": gettext_lazy(
        "Le fournisseur {supplier} est bloqué dans Sage FRP 1000 : débloquez-le dans Sage ou changez de fournisseur"
    ),
    "TAX_CODE_UNKNOWN": gettext_lazy(
        "Le code TVA {tax_code} n'existe pas dans Sage FRP 1000 : choisissez-en un autre sur la ligne."
    ),
    "ANALYTIC_REQUIRED": gettext_lazy(
        "La société exige une ventilation analytique : indiquez une section analytique sur chaque ligne de charge."
    ),
    "ANALYTIC_SECTION_UNKNOWN": gettext_lazy(
        "La section analytique n'existe pas dans Sage FRP 1000 : choisissez une section existante sur la ligne."
    ),
    "UNBALANCED": gettext_lazy("L'écriture est déséquilibrée : vérifiez les totaux HT, TVA et TTC de la facture."),
    "AMOUNT_INVALID": gettext_lazy("Un montant est invalide : vérifiez les montants des lignes de la facture."),
    "PERIOD_CLOSED": gettext_lazy(
        "La période est clôturée dans Sage FRP 1000 : corrigez la date de la facture (période ouverte) ou demandez "
        "la réouverture de la période dans Sage."
    ),
    "DUPLICATE_INVOICE": gettext_lazy(
        "Cette facture du fournisseur {supplier} est déjà comptabilisée dans Sage FRP 1000 : vérifiez qu'il ne s'agit "
        "pas d'un doublon ; sinon corrigez le numéro de facture."
    ),
    "LABEL_TOO_LONG": gettext_lazy(
        "Le libellé est trop long pour Sage FRP 1000 (60 caractères au plus) : raccourcissez-le."
    ),
    "DUE_DATE_BEFORE_DATE": gettext_lazy("L'échéance précède la date de la facture : corrigez l'échéance."),
    "EXTERNAL_ID_CONFLICT": gettext_lazy(
        "Sage FRP 1000 a déjà reçu cette version avec un autre contenu : corrigez la facture pour en créer une "
        "nouvelle version."
    ),
    "ENTRY_UNKNOWN": gettext_lazy(
        "La pièce n'existe pas (ou plus) dans Sage FRP 1000 : vérifiez-la dans Sage ; la mise à jour ne peut pas "
        "être appliquée."
    ),
    "ENTRY_INVALID": gettext_lazy("L'écriture ne peut pas être générée : complétez la facture."),
    "DATE_INVALID": gettext_lazy("Une date est invalide : corrigez les dates de la facture."),
}
DEFAULT_HINT = gettext_lazy("Corrigez la facture dans SFD puis exportez-la à nouveau.")

FIELD_LABELS = {
    "journal": gettext_lazy("journal"),
    "date": gettext_lazy("date"),
    "due_date": gettext_lazy("échéance"),
    "label": gettext_lazy("libellé"),
    "piece_reference": gettext_lazy("n° de facture"),
    "account": gettext_lazy("compte"),
    "supplier": gettext_lazy("fournisseur"),
    "tax_code": gettext_lazy("code TVA"),
    "analytic": gettext_lazy("analytique"),
    "section": gettext_lazy("section analytique"),
    "debit": gettext_lazy("débit"),
    "credit": gettext_lazy("crédit"),
    "lines": gettext_lazy("lignes"),
    "external_id": gettext_lazy("clé"),
    "update_id": gettext_lazy("mise à jour"),
    "bap": gettext_lazy("BAP"),
    "piece_number": gettext_lazy("pièce"),
}

_LINE = re.compile(r"^lines\[(\d+)\](?:\.(\w+))?")


def field_label(field: str | None) -> str:
    """« lines[2].account » → « compte (ligne 2 de l'écriture) »."""
    if not field:
        return ""
    match = _LINE.match(field)
    if match:
        index, name = int(match.group(1)), match.group(2)
        what = FIELD_LABELS.get(name or "lines", name or _("ligne"))
        return _("%(what)s (ligne %(n)s de l'écriture)") % {"what": what, "n": index + 1}
    return str(FIELD_LABELS.get(field, field))


def value_at(payload: dict, field: str | None) -> str:
    """The value Sage complained about, read from what we sent."""
    if not field or not payload:
        return ""
    match = _LINE.match(field)
    try:
        if match:
            line = payload["lines"][int(match.group(1))]
            return str(line.get(match.group(2) or "", ""))
        return str(payload.get(field, ""))
    except (IndexError, KeyError, TypeError):
        return ""


def code_headline(code: str) -> str:
    """What an anomaly code means, in a few words: its hint up to « : », without the values it names
    (« PERIOD_CLOSED » → « La période est clôturée dans Sage FRP 1000 »)."""
    hint = HINTS.get(code)
    if hint is None:
        return ""
    return re.sub(r"\s*\{\w+\}", "", str(hint).split(" : ")[0]).rstrip(".")


def hint_for(code: str, payload: dict, field: str | None) -> str:
    supplier = next((line.get("supplier") for line in payload.get("lines", []) if line.get("supplier")), "")
    values = {
        "journal": payload.get("journal", ""),
        "account": value_at(payload, field) if field and field.endswith("account") else "",
        "supplier": value_at(payload, field) if field and field.endswith("supplier") else supplier,
        "tax_code": value_at(payload, field) if field and field.endswith("tax_code") else "",
    }
    return str(HINTS.get(code, DEFAULT_HINT)).format(**values).replace("  ", " ")
