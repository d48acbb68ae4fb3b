"""The measure of the whole wiring: ``python manage.py measure_ocr --intake``.

Rule: the set goes through what a scanner's file goes through — dropped in a company's « Répertoire de scan »,
taken by the intake (``intake_company``), read by the worker's task (``paper_read_task``, run in this process) —
and what is measured is what the invoice holds afterwards, not what the reader returned. Everything happens in one
transaction rolled back at the end, in a scan folder of its own: the database is left as it was.

The company's referential is the reader measure's (``scan_measure.referential``: the set's suppliers, their decoys,
the buyers as suppliers) with the usual tax codes. Per field, the share of invoices holding exactly the truth; the
supplier counts as found when it is set, or suggested with at least a medium confidence (the form shows it); and
« fournisseur posé à tort » counts a wrong supplier set on an invoice (what must never happen). A scan found
« déjà reçue » (the set holds one invoice twice) is measured on the invoice it duplicates.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from django.db import transaction
from django.test.utils import override_settings

from companies.models import Account, Company, Supplier, TaxCode
from connectors.models import Connector

from .intake import intake_company
from .models import IntakeFile, Invoice
from .scan_fields import MEDIUM
from .scan_measure import FIELDS, DocumentResult, Report, _key, documents, referential

COLUMNS = {"number": "number", "issue_date": "invoice_date", "due_date": "due_date", "total_ht": "total_ht",
           "total_tva": "total_tva", "total_ttc": "total_ttc"}  # fmt: skip
RATES = ("20.00", "10.00", "5.50", "2.10")


class _Rollback(Exception):
    pass


def _value(value) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return str(value)


def _company(root: Path) -> Company:
    connector = Connector.objects.create(
        name=f"mesure-ocr-{os.getpid()}-{time.monotonic_ns()}", url="http://127.0.0.1:9"
    )
    company = Company.objects.create(connector=connector, code="MESURE-OCR", name="Mesure OCR", scan_directory="mesure")
    Account.objects.create(company=company, code="606400", label="Fournitures administratives")
    for rate in RATES:
        TaxCode.objects.create(company=company, code=f"T{rate}", label=f"TVA {rate} %", rate=Decimal(rate))
    (root / "mesure").mkdir(parents=True)
    return company


def measure_intake(folder: Path) -> Report:
    """Every document of ``folder`` through the intake and the reading task; the invoices against their truth."""
    from .tasks import paper_read_task  # the tasks module imports the intake

    found = documents(folder)
    known, codes = referential(truth for _path, truth in found)
    results: list[DocumentResult] = []
    root = Path(tempfile.mkdtemp(prefix="sfd-mesure-"))
    try:
        with override_settings(SCAN_ROOT=root, SCAN_SETTLE_SECONDS=0), transaction.atomic():
            company = _company(root)
            Supplier.objects.bulk_create(
                Supplier(company=company, code=s.code, label=s.name[:255], siren=s.siren[:9], vat_number=s.vat[:20],
                         default_expense_account="606400")
                for s in known
            )  # fmt: skip
            for path, truth in found:
                results.append(_one(company, root, path, truth, codes, paper_read_task))
            transaction.set_rollback(True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return Report(f"{folder} (import + lecture)", results)


def _one(company: Company, root: Path, path: Path, truth: dict, codes: dict, task) -> DocumentResult:
    expected_code = codes.get(_key(truth.get("supplier") or {}))
    result = DocumentResult(path.name, bool(truth.get("french", True)), 0, [], expected_code, None, 0.0)
    target = root / "mesure" / path.name
    shutil.copyfile(path, target)
    stamp = time.time() - 60
    os.utime(target, (stamp, stamp))
    report = intake_company(company=company)
    item = next((entry for entry in report.files if entry.name == path.name), None)
    if item is None or item.invoice_id is None:
        result.error = item.reason if item else "non importé"
        return result
    task.apply(args=[item.invoice_id])
    record = IntakeFile.objects.filter(pk=item.intake_file_id).select_related("invoice__supplier").first()
    invoice = record.invoice if record else None
    if invoice is None:
        result.error = "facture absente après la lecture"
        return result
    invoice = Invoice.objects.select_related("supplier").get(pk=invoice.pk)
    scan = invoice.scan or {}
    result.seconds = list(scan.get("seconds") or [])
    result.pages = len(result.seconds)
    if record.outcome == IntakeFile.Outcome.DUPLICATE:
        result.error = "déjà reçue (mesurée sur la première)"
    suggestion = (scan.get("fields") or {}).get("supplier") or {}
    if invoice.supplier is not None:
        result.found_code, result.found_confidence = invoice.supplier.code, 1.0
    elif suggestion.get("code") and suggestion.get("confidence", 0) >= MEDIUM:
        result.found_code, result.found_confidence = suggestion["code"], suggestion["confidence"]
    for name in FIELDS:
        expected = truth.get(name)
        if expected is None:
            result.right[name] = None
            continue
        read = _value(getattr(invoice, COLUMNS[name]))
        result.read[name], result.expected[name] = read, str(expected)
        result.right[name] = read == str(expected).strip()
        facts = (scan.get("fields") or {}).get("invoice_date" if name == "issue_date" else name) or {}
        if facts.get("level") == "high":
            result.sure_fields.append(name)
            if not result.right[name]:
                result.wrong_sure_fields.append(name)
    return result
