"""The local pre-check: against the pulled referential, what is certain to fail in Sage FRP 1000 is caught here,
with the same codes as Sage's, and never sent."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from companies.models import Account, AnalyticSection, Company, Journal, Supplier, TaxCode

LABEL_MAX = 60
# How many suppliers an export keeps loaded between batches (the batches of an export often share them).
SUPPLIERS_KEPT = 5000


@dataclass(frozen=True)
class LocalError:
    code: str
    field: str
    message: str


class Referential:
    """The company's referential, loaded once per export (accounts and suppliers as the batches name them)."""

    def __init__(self, company: Company):
        self.company = company
        self.journals = {j.code: j for j in Journal.objects.filter(company=company)}
        self.tax_codes = {t.code: t for t in TaxCode.objects.filter(company=company)}
        self.sections = {s.code: s for s in AnalyticSection.objects.filter(company=company)}
        self._accounts: dict[str, Account] = {}
        self._suppliers: dict[str, Supplier] = {}

    def load_for(self, payloads: list[dict]) -> None:
        accounts, suppliers = set(), set()
        for payload in payloads:
            for line in payload.get("lines", []):
                accounts.add(line.get("account"))
                if line.get("supplier"):
                    suppliers.add(line["supplier"])
        missing_accounts = accounts - self._accounts.keys()
        if missing_accounts:
            self._accounts.update(
                {a.code: a for a in Account.objects.filter(company=self.company, code__in=missing_accounts)}
            )
        missing_suppliers = suppliers - self._suppliers.keys()
        if missing_suppliers:
            if len(self._suppliers) + len(missing_suppliers) > SUPPLIERS_KEPT:
                # A company may have a hundred thousand suppliers: only the recent batches' are kept.
                self._suppliers = {}
                missing_suppliers = suppliers
            self._suppliers.update(
                {s.code: s for s in Supplier.objects.filter(company=self.company, code__in=missing_suppliers)}
            )

    def check(self, payload: dict) -> list[LocalError]:
        errors: list[LocalError] = []
        journal = self.journals.get(payload["journal"])
        if journal is None or journal.gone_upstream_at:
            errors.append(LocalError("JOURNAL_UNKNOWN", "journal", f"Le journal {payload['journal']} n'existe pas."))
        elif not journal.active:
            errors.append(LocalError("JOURNAL_INACTIVE", "journal", f"Le journal {payload['journal']} est inactif."))
        date = dt.date.fromisoformat(payload["date"])
        closed = self.company.closed_until
        if closed and date <= closed:
            errors.append(
                LocalError("PERIOD_CLOSED", "date", f"La période est clôturée jusqu'au {closed:%d/%m/%Y} dans Sage.")
            )
        if payload.get("due_date") and dt.date.fromisoformat(payload["due_date"]) < date:
            errors.append(LocalError("DUE_DATE_BEFORE_DATE", "due_date", "L'échéance précède la date de la pièce."))
        if len(payload.get("label") or "") > LABEL_MAX:
            errors.append(
                LocalError("LABEL_TOO_LONG", "label", f"Libellé trop long ({len(payload['label'])} > {LABEL_MAX}).")
            )
        for index, line in enumerate(payload["lines"]):
            prefix = f"lines[{index}]"
            account = self._accounts.get(line["account"])
            if account is None or account.gone_upstream_at:
                errors.append(
                    LocalError("ACCOUNT_UNKNOWN", f"{prefix}.account", f"Le compte {line['account']} n'existe pas.")
                )
            elif not account.active:
                errors.append(
                    LocalError("ACCOUNT_INACTIVE", f"{prefix}.account", f"Le compte {line['account']} est inactif.")
                )
            if line.get("supplier"):
                supplier = self._suppliers.get(line["supplier"])
                if supplier is None or supplier.gone_upstream_at:
                    errors.append(
                        LocalError(
                            "SUPPLIER_UNKNOWN", f"{prefix}.supplier", f"Le tiers {line['supplier']} n'existe pas."
                        )
                    )
                elif supplier.blocked or not supplier.active:
                    errors.append(
                        LocalError("SUPPLIER_BLOCKED", f"{prefix}.supplier", f"Le tiers {line['supplier']} est bloqué.")
                    )
            if line.get("tax_code") and line["tax_code"] not in self.tax_codes:
                errors.append(
                    LocalError(
                        "TAX_CODE_UNKNOWN", f"{prefix}.tax_code", f"Le code TVA {line['tax_code']} n'existe pas."
                    )
                )
            analytic = line.get("analytic") or []
            if self.company.analytic_required and str(line["account"]).startswith("6") and not analytic:
                errors.append(
                    LocalError("ANALYTIC_REQUIRED", f"{prefix}.analytic", "La ventilation analytique est obligatoire.")
                )
            for position, part in enumerate(analytic):
                section = self.sections.get(part["section"])
                if section is None or section.axis != part["axis"] or not section.usable:
                    errors.append(
                        LocalError(
                            "ANALYTIC_SECTION_UNKNOWN",
                            f"{prefix}.analytic[{position}].section",
                            f"La section analytique {part['section']} n'existe pas.",
                        )
                    )
        return errors
