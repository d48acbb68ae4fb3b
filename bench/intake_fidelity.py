"""``python -m bench.intake_fidelity DIR [--json]``: the table of issue 14 on any folder of e-invoice samples.

Over 450 lines, one benchmark, its corpus and its scoring: what it measures and how it counts read together.

How it measures. The files of DIR (and its subfolders) are dropped, as they are, in the « Répertoire de scan » of
one company of a throwaway group (a temporary SQLite database, a temporary scan root: nothing real is touched),
and the real intake reads them (``invoices.intake.intake_company``). The group holds, besides that company, one
company per buyer the files name by SIREN or VAT number, so that each invoice has its addressee in the group.

The truth is read from each XML by this module's own reader (``read_truth``: XPath by local name, written apart from
``invoices.en16931`` which it judges): number, type (invoice or credit note, by BT-3 and the sign of the total),
issue and first due date, currency, seller and buyer SIREN / VAT (a SIREN only from a French identifier with a valid
key), totals HT / TVA / TTC, VAT per category and rate, the number of booked lines (counted lines — EXTENDED sub-lines
once, INFORMATION lines never — plus document-level charges and allowances; the VAT breakdown, or the total alone,
for profiles without lines). What is valid or not:
- a file whose name holds a rule (``BR-CO-15``…) breaks it: it must be refused, the rule named in its reason;
- what is not an EN 16931 invoice (Order-X, ZUGFeRD 1.0, anything else) must be refused;
- a CEN test set (``testSet``) holds fragments: each fragment said to break its rule must break it by SFD's rules
  (``invoices.en16931.check``), each one said to pass must not;
- every other invoice is valid: created (or found already received, for the twin of a file already imported) with
  every key field equal to the truth, in the company of its buyer. One in another currency than the euro is
  counted apart: it must be created *à compléter* with its currency.
Twins: files with the same seller, type, number, date and total TTC are one invoice, imported once.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from decimal import Decimal, InvalidOperation
from pathlib import Path

from lxml import etree

CREDIT_CODES = {"81", "83", "261", "262", "296", "308", "381", "396", "420", "458", "532"}
TWIN_FIELDS = ("number", "type", "issue_date", "currency", "seller", "total_ttc")
RULE_IN_NAME = re.compile(r"\b(BR-(?:[A-Z]{1,3}-)?\d+)")
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


# --- the independent reader -----------------------------------------------------------------------------------


def _local(path: str) -> str:
    """``a/b/c`` → an XPath over local names, whatever the namespaces."""
    steps = []
    for step in path.split("/"):
        if step in ("", ".", "..") or step.startswith("@"):
            steps.append(step)
        else:
            name, _, predicate = step.partition("[")
            steps.append(f"*[local-name()='{name}']" + (f"[{predicate}" if predicate else ""))
    return "/".join(steps)


def _all(node, path: str) -> list:
    return node.xpath(_local(path)) if node is not None else []


def _first(node, path: str):
    found = _all(node, path)
    return found[0] if found else None


def _text(node, path: str = "") -> str:
    found = _first(node, path) if path else node
    return " ".join((found.text or "").split()) if found is not None else ""


def _number(text: str) -> Decimal | None:
    try:
        return Decimal(text) if text else None
    except InvalidOperation:
        return None


def _date(text: str) -> str | None:
    digits = re.sub(r"\D", "", text[:10])
    return f"{digits[:4]}-{digits[4:6]}-{digits[6:8]}" if len(digits) >= 8 else None


def _amount(value: Decimal | None) -> str | None:
    return None if value is None else f"{value.normalize():f}"


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _siren(value: str, scheme: str, country: str) -> str:
    digits = value.replace(" ", "")
    if not digits.isdigit() or scheme not in ("", "0002", "0009") or (not scheme and country not in ("", "FR")):
        return ""
    if len(digits) == 9 and scheme != "0009" and _luhn(digits):
        return digits
    if len(digits) == 14 and scheme != "0002" and _luhn(digits[:9]):
        return digits[:9]
    return ""


def _siren_of_vat(vat: str) -> str:
    if re.fullmatch(r"FR\d{11}", vat):
        siren = vat[4:]
        if int(vat[2:4]) == (12 + 3 * (int(siren) % 97)) % 97 and _luhn(siren):
            return siren
    return ""


def _party(node, syntax: str) -> dict:
    if node is None:
        return {"name": "", "siren": "", "vat": ""}
    if syntax == "cii":
        country = _text(node, "PostalTradeAddress/CountryID").upper()
        legal = [(_text(n), n.get("schemeID", "")) for n in _all(node, "SpecifiedLegalOrganization/ID")]
        ids = [(_text(n), n.get("schemeID", "")) for n in _all(node, "GlobalID")]
        vats = [_text(n) for n in _all(node, "SpecifiedTaxRegistration/ID[@schemeID='VA']")]
        name = _text(node, "Name")
    else:
        country = _text(node, "PostalAddress/Country/IdentificationCode").upper()
        legal = [(_text(n), n.get("schemeID", "")) for n in _all(node, "PartyLegalEntity/CompanyID")]
        ids = [(_text(n), n.get("schemeID", "")) for n in _all(node, "PartyIdentification/ID")]
        vats = [
            _text(n, "CompanyID") for n in _all(node, "PartyTaxScheme") if _text(n, "TaxScheme/ID").upper() == "VAT"
        ]
        name = _text(node, "PartyLegalEntity/RegistrationName") or _text(node, "PartyName/Name")
    vats = [re.sub(r"[\s.\-]", "", v).upper() for v in vats if v]
    siren = ""
    for value, scheme in legal + [(v, s) for v, s in ids if s in ("0002", "0009")]:
        siren = siren or _siren(value, scheme, country)
    for vat in vats:
        siren = siren or _siren_of_vat(vat)
    return {"name": name, "siren": siren, "vat": vats[0] if vats else ""}


def read_truth(data: bytes) -> dict:
    """What the file says, read independently of the intake: ``{"kind": ...}`` and, for an invoice, its key fields."""
    if data[:1024].find(b"%PDF-") >= 0:
        import facturx  # only to take the XML out of the PDF

        try:
            _name, data = facturx.get_xml_from_pdf(data, check_xsd=False)
        except Exception:  # a damaged PDF: whatever it is, it is not a readable invoice
            return {"kind": "not-invoice"}
        if not data:
            return {"kind": "not-invoice"}
    try:
        root = etree.fromstring(data, PARSER)
    except etree.XMLSyntaxError:
        return {"kind": "not-invoice"}
    name = etree.QName(root).localname
    if name == "testSet":
        return {"kind": "testset"}
    if name == "CrossIndustryInvoice":
        syntax = "cii"
    elif name in ("Invoice", "CreditNote") and "oasis" in (etree.QName(root).namespace or ""):
        syntax = "ubl"
    else:
        return {"kind": "not-invoice"}
    return {"kind": "invoice"} | (_cii(root) if syntax == "cii" else _ubl(root, name == "CreditNote"))


def _finish(fields: dict, type_code: str, lines: int, charges: int, vat: list, due_dates: list) -> dict:
    ht, tva, ttc = fields.pop("ht"), fields.pop("tva"), fields.pop("ttc")
    sign = -1 if ((ttc or Decimal(0)) < 0 or (not ttc and (ht or Decimal(0)) < 0)) else 1
    credit = (type_code in CREDIT_CODES) != (sign < 0)
    # Without lines (BASIC WL, MINIMUM): one per VAT rate, or the total alone.
    booked = lines + charges if lines else len(vat) or 1
    return fields | {
        "type": "credit_note" if credit else "invoice",
        "due_date": min((d for d in due_dates if d), default=None),
        "total_ht": _amount(ht * sign) if ht is not None else None,
        "total_tva": _amount((tva or Decimal(0)) * sign),
        "total_ttc": _amount(ttc * sign) if ttc is not None else None,
        "vat": sorted(
            [cat, _amount(rate) if rate is not None else None, _amount(base * sign), _amount(amount * sign)]
            for cat, rate, base, amount in vat
        ),
        "booked_lines": booked,
    }


def _cii(root) -> dict:
    settlement = _first(root, "SupplyChainTradeTransaction/ApplicableHeaderTradeSettlement")
    agreement = _first(root, "SupplyChainTradeTransaction/ApplicableHeaderTradeAgreement")
    totals = _first(settlement, "SpecifiedTradeSettlementHeaderMonetarySummation")
    currency = _text(settlement, "InvoiceCurrencyCode").upper()
    tax_totals = [n for n in _all(totals, "TaxTotalAmount") if n.get("currencyID", currency).upper() == currency]
    items = _all(root, "SupplyChainTradeTransaction/IncludedSupplyChainTradeLineItem")
    counted = [
        item
        for item in items
        if _text(item, "AssociatedDocumentLineDocument/LineStatusReasonCode").upper() in ("", "DETAIL")
    ]
    vat = [
        (_text(n, "CategoryCode").upper(), _number(_text(n, "RateApplicablePercent")),
         _number(_text(n, "BasisAmount")) or Decimal(0), _number(_text(n, "CalculatedAmount")) or Decimal(0))
        for n in _all(settlement, "ApplicableTradeTax")
    ]  # fmt: skip
    fields = {
        "number": _text(root, "ExchangedDocument/ID"),
        "issue_date": _date(_text(root, "ExchangedDocument/IssueDateTime/DateTimeString")),
        "currency": currency,
        "seller": _party(_first(agreement, "SellerTradeParty"), "cii"),
        "buyer": _party(_first(agreement, "BuyerTradeParty"), "cii"),
        "ht": _number(_text(totals, "TaxBasisTotalAmount")),
        "tva": _number(_text(tax_totals[0])) if tax_totals else None,
        "ttc": _number(_text(totals, "GrandTotalAmount")),
    }
    charges = len(_all(settlement, "SpecifiedTradeAllowanceCharge")) + len(
        _all(settlement, "SpecifiedLogisticsServiceCharge")
    )
    due_dates = [_date(_text(n)) for n in _all(settlement, "SpecifiedTradePaymentTerms/DueDateDateTime/DateTimeString")]
    return _finish(fields, _text(root, "ExchangedDocument/TypeCode"), len(counted), charges, vat, due_dates)


def _ubl(root, credit_note: bool) -> dict:
    currency = _text(root, "DocumentCurrencyCode").upper()
    totals = _first(root, "LegalMonetaryTotal")
    tax_totals = [n for n in _all(root, "TaxTotal/TaxAmount") if n.get("currencyID", currency).upper() == currency]
    vat = [
        (_text(n, "TaxCategory/ID").upper(), _number(_text(n, "TaxCategory/Percent")),
         _number(_text(n, "TaxableAmount")) or Decimal(0), _number(_text(n, "TaxAmount")) or Decimal(0))
        for n in _all(root, "TaxTotal/TaxSubtotal")
    ]  # fmt: skip
    fields = {
        "number": _text(root, "ID"),
        "issue_date": _date(_text(root, "IssueDate")),
        "currency": currency,
        "seller": _party(_first(root, "AccountingSupplierParty/Party"), "ubl"),
        "buyer": _party(_first(root, "AccountingCustomerParty/Party"), "ubl"),
        "ht": _number(_text(totals, "TaxExclusiveAmount")),
        "tva": _number(_text(tax_totals[0])) if tax_totals else None,
        "ttc": _number(_text(totals, "TaxInclusiveAmount")),
    }
    due_dates = [_date(_text(root, "PaymentMeans/PaymentDueDate" if credit_note else "DueDate"))]
    due_dates += [_date(_text(n)) for n in _all(root, "PaymentTerms/PaymentDueDate")]
    lines = len(_all(root, "CreditNoteLine" if credit_note else "InvoiceLine"))
    type_code = _text(root, "CreditNoteTypeCode" if credit_note else "InvoiceTypeCode")
    return _finish(fields, type_code, lines, len(_all(root, "AllowanceCharge")), vat, due_dates)


def twin_key(truth: dict) -> tuple:
    seller = truth["seller"]
    identity = seller["siren"] or seller["vat"] or seller["name"].casefold()
    return identity, truth["type"], truth["number"], truth["issue_date"], truth["total_ttc"]


# --- what the intake made of a file ---------------------------------------------------------------------------


def invoice_fields(invoice) -> dict:
    """The key fields of an imported invoice, in the truth's shape."""
    facts = invoice.einvoice or {}
    return {
        "number": invoice.number,
        "type": invoice.kind,
        "issue_date": invoice.invoice_date.isoformat() if invoice.invoice_date else None,
        "due_date": invoice.due_date.isoformat() if invoice.due_date else None,
        "currency": invoice.currency,
        "seller": {key: (facts.get("seller") or {}).get(key, "") for key in ("siren", "vat")},
        "buyer": {key: (facts.get("buyer") or {}).get(key, "") for key in ("siren", "vat")},
        "total_ht": _amount(invoice.total_ht),
        "total_tva": _amount(invoice.total_tva),
        "total_ttc": _amount(invoice.total_ttc),
        "vat": sorted(
            [
                v["category"],
                _amount(_number(v["rate"] or "")),
                _amount(_number(v["base"])),
                _amount(_number(v["amount"])),
            ]
            for v in facts.get("vat", [])
        ),
        "booked_lines": invoice.lines.count(),
    }


def differences(truth: dict, found: dict) -> list[str]:
    wrong = []
    for key, value in found.items():
        expected = truth[key]
        if key in ("seller", "buyer"):
            expected = {k: expected[k] for k in ("siren", "vat")}
        if expected != value:
            wrong.append(key)
    return wrong


# --- the measure --------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Measure:
    valid_eur: int = 0
    exact: int = 0
    wrongly_refused: list = dataclasses.field(default_factory=list)
    field_wrong: list = dataclasses.field(default_factory=list)
    wrong_company: list = dataclasses.field(default_factory=list)
    foreign: int = 0
    foreign_ok: int = 0
    foreign_misses: list = dataclasses.field(default_factory=list)
    twin_groups: int = 0
    twins_twice: list = dataclasses.field(default_factory=list)
    invalid: int = 0
    invalid_refused_with_rule: int = 0
    invalid_misses: list = dataclasses.field(default_factory=list)
    fragments: int = 0
    fragments_right: int = 0
    fragment_misses: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    def table(self) -> str:
        def share(part: int, whole: int) -> str:
            return f"{part} / {whole} ({100 * part / whole:.1f} %)" if whole else "0 / 0"

        rows = [
            ("valid EUR invoices accepted with every key field exact", share(self.exact, self.valid_eur)),
            ("wrongly refused (valid by EN 16931)", str(len(self.wrongly_refused))),
            ("accepted but a field wrong", str(len(self.field_wrong))),
            ("imported into a company they are not addressed to", str(len(self.wrong_company))),
            ("the same invoice imported twice (twin groups)", f"{len(self.twins_twice)} of {self.twin_groups}"),
            ("invalid files refused with the rule they break", share(self.invalid_refused_with_rule, self.invalid)),
            ("CEN test fragments judged as their test says", share(self.fragments_right, self.fragments)),
            ("valid invoices in another currency, imported à compléter with it", share(self.foreign_ok, self.foreign)),
        ]
        width = max(len(label) for label, _ in rows)
        lines = [f"| {'measured':<{width}} | result |", f"|{'-' * (width + 2)}|--------|"]
        lines += [f"| {label:<{width}} | {value} |" for label, value in rows]
        for title, items in (
            ("wrongly refused", self.wrongly_refused),
            ("field wrong", self.field_wrong),
            ("wrong company", self.wrong_company),
            ("twins imported twice", self.twins_twice),
            ("invalid files not refused with their rule", self.invalid_misses),
            ("CEN fragments misjudged", self.fragment_misses),
            ("other currency not as expected", self.foreign_misses),
        ):
            lines += [f"{title}: {item}" for item in items]
        lines.append(f"({self.seconds:.1f} s)")
        return "\n".join(lines)


def _fragments(data: bytes) -> list[tuple[str, str, etree._Element]]:
    """The fragments of a CEN test set: (``error`` or ``success``, rule, fragment root)."""
    root = etree.fromstring(data, PARSER)
    found = []
    for test in _all(root, "test"):
        for verdict in ("error", "success"):
            for rule in _all(test, f"assert/{verdict}"):
                for fragment in test:
                    if etree.QName(fragment).localname in ("CrossIndustryInvoice", "Invoice", "CreditNote"):
                        found.append((verdict, _text(rule), fragment))
    return found


def _judge_fragments(data: bytes, name: str, measure: Measure) -> None:
    from invoices import en16931

    for verdict, rule, fragment in _fragments(data):
        measure.fragments += 1
        try:
            if etree.QName(fragment).localname == "CrossIndustryInvoice":
                document = en16931.read_cii(fragment)
            else:
                document = en16931.read_ubl(fragment)
            broken = {breach.rule for breach in en16931.check(document)}
        except en16931.ReadError as error:
            broken = {f"illisible: {error}"}
        if (rule in broken) == (verdict == "error"):
            measure.fragments_right += 1
        else:
            measure.fragment_misses.append(f"{name}: {verdict} {rule}, SFD: {sorted(broken) or 'rien'}")


def measure_folder(directory: Path, scan_root: Path) -> Measure:
    """Drop every file of ``directory`` in a throwaway group's scan folder and judge what the intake made of them.
    Needs a migrated, empty database (the caller's transaction or test database)."""
    from companies.models import Company
    from connectors.models import Connector
    from invoices.intake import Outcome, intake_company
    from invoices.models import IntakeFile, Invoice

    started = time.monotonic()
    measure = Measure()
    files = sorted(p for p in directory.rglob("*") if p.is_file() and not p.name.startswith("."))
    truths = {}
    for path in files:
        data = path.read_bytes()
        truths[path] = read_truth(data)
        if truths[path]["kind"] == "testset":
            _judge_fragments(data, path.name, measure)

    connector = Connector.objects.create(name="Mesure", url="http://127.0.0.1:9", timeout_seconds=1)
    landing = Company.objects.create(connector=connector, code="MESURE", name="Mesure", scan_directory="mesure")
    companies: dict[str, Company] = {}
    for truth in truths.values():
        buyer = truth.get("buyer") or {}
        identity = buyer.get("siren") or buyer.get("vat")
        if truth["kind"] == "invoice" and identity and identity not in companies:
            companies[identity] = Company.objects.create(
                connector=connector, code=f"B{len(companies) + 1:03d}", name=buyer["name"][:200] or identity,
                siren=buyer["siren"], vat_number="" if buyer["siren"] else buyer["vat"][:20],
            )  # fmt: skip
    folder = scan_root / landing.scan_directory
    folder.mkdir(parents=True)
    dropped = {}
    stamp = time.time() - 3600
    for index, path in enumerate(files):
        # One flat folder: a unique name per file, its own name kept readable.
        name = f"{index:04d}-{path.name}"
        shutil.copyfile(path, folder / name)
        os.utime(folder / name, (stamp, stamp))
        dropped[name] = path
    intake_company(company=landing)
    records = {record.name: record for record in IntakeFile.objects.filter(company=landing).select_related("invoice")}

    groups = defaultdict(list)
    for name, path in dropped.items():
        truth, record = truths[path], records.get(name)
        outcome = record.outcome if record else Outcome.PENDING
        label = path.name
        if truth["kind"] == "testset":
            continue
        # CEN's examples may carry a rule in their name (``CII-BR-CO-10-RoundingIssue``: how to pass it).
        rule = None if "example" in path.name.lower() else RULE_IN_NAME.search(path.name)
        if truth["kind"] != "invoice" or rule:
            measure.invalid += 1
            refused_right = outcome == Outcome.REFUSED and (not rule or rule.group(1) in record.reason)
            if refused_right:
                measure.invalid_refused_with_rule += 1
            else:
                measure.invalid_misses.append(f"{label}: {outcome} {record.reason[:160] if record else ''}")
            continue
        groups[twin_key(truth)].append(name)
        foreign = truth["currency"] != "EUR"
        if foreign:
            measure.foreign += 1
        else:
            measure.valid_eur += 1
        invoice = record.invoice if record and outcome in (Outcome.CREATED, Outcome.DUPLICATE) else None
        if invoice is None:
            refusal = f"{label}: {outcome} {record.reason[:200] if record else ''}"
            (measure.foreign_misses if foreign else measure.wrongly_refused).append(refusal)
            continue
        found = invoice_fields(invoice)
        if outcome == Outcome.DUPLICATE:
            # Its twin made the invoice: what makes them one invoice must agree; the rest (a due date, lines…) is
            # the twin's, whose profile may say more or less.
            found = {key: found[key] for key in TWIN_FIELDS}
        wrong = differences(truth, found)
        buyer = truth["buyer"]
        expected_company = companies.get(buyer["siren"] or buyer["vat"], landing)
        if outcome == Outcome.CREATED and invoice.company_id != expected_company.pk:
            measure.wrong_company.append(f"{label}: {invoice.company.code} au lieu de {expected_company.code}")
        if foreign:
            if not wrong and (invoice.status == Invoice.Status.TO_COMPLETE or invoice.exchange_rate):
                measure.foreign_ok += 1
            else:
                measure.foreign_misses.append(f"{label}: {invoice.status} {', '.join(wrong)}")
            continue
        if wrong:
            detail = ", ".join(f"{key}: {found[key]} ≠ {truth[key]}" for key in wrong)
            measure.field_wrong.append(f"{label}: {detail}")
        else:
            measure.exact += 1
    for key, names in groups.items():
        if len(names) < 2:
            continue
        measure.twin_groups += 1
        created = {records[n].invoice_id for n in names if n in records and records[n].outcome == Outcome.CREATED}
        if len(created) > 1:
            measure.twins_twice.append(
                f"{key[1]}: {len(created)} factures ({', '.join(dropped[n].name for n in names)})"
            )
    measure.seconds = time.monotonic() - started
    return measure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.intake_fidelity", description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="folder of Factur-X PDF, CII and UBL files (read recursively)")
    parser.add_argument("--json", action="store_true", help="print the measure as one JSON object")
    args = parser.parse_args(argv)
    if not args.directory.is_dir():
        parser.error(f"{args.directory} n'est pas un dossier")
    with tempfile.TemporaryDirectory(prefix="sfd-mesure-") as workdir:
        # A database and a scan root of its own, thrown away afterwards: the measure never touches real data.
        os.environ["DATABASE_URL"] = f"sqlite:///{workdir}/mesure.sqlite3"
        os.environ["SCAN_ROOT"] = f"{workdir}/scan"
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        import django

        django.setup()
        import logging

        from django.core.management import call_command

        logging.disable(logging.INFO)
        call_command("migrate", verbosity=0)
        measure = measure_folder(args.directory.resolve(), Path(workdir) / "scan")
    if args.json:
        print(json.dumps(dataclasses.asdict(measure), ensure_ascii=False, default=str))
    else:
        print(measure.table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
