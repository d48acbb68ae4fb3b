"""The « Répertoire de scan » of the tests: a scan root of their own, companies whose referential was pulled from
the stub, files dropped as a scanner leaves them, and what is left where."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import pytest
from django.conf import settings

from companies.models import Company, Supplier
from companies.services import company_referential_pull
from invoices.intake import CLAIMED_DIR, ERRORS_DIR, PROCESSED_DIR
from invoices.samples.build_samples import cii_xml, invoice_data, seller


@pytest.fixture
def scan_root(settings, tmp_path):
    settings.SCAN_ROOT = tmp_path / "scan"
    settings.SCAN_SETTLE_SECONDS = 5
    return settings.SCAN_ROOT


@pytest.fixture
def jno_ready(jno, scan_root):
    company_referential_pull(company=jno)
    jno.refresh_from_db()
    return jno


@pytest.fixture
def multi_ready(multi, scan_root):
    company_referential_pull(company=multi)
    multi.refresh_from_db()
    assert multi.analytic_required
    return multi


def folder_of(company: Company) -> Path:
    return Path(settings.SCAN_ROOT) / company.scan_directory


def drop(company: Company, name: str, content: bytes, *, age: float = 60) -> Path:
    """A file as the scanner leaves it: written ``age`` seconds ago."""
    path = folder_of(company) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))
    return path


def drop_the_usual(company: Company) -> None:
    """A good invoice, the same file again, a text file a person dropped, a hidden file of a scanner."""
    content = cii_xml(an_invoice(company, number="FA-100"))
    drop(company, "facture.xml", content)
    drop(company, "zz-copie.xml", content)
    drop(company, "lisez-moi.txt", b"Les factures de novembre")
    drop(company, ".DS_Store", b"\x00\x00\x00\x01Bud1")


def supplier_party(company: Company, code: str, *, siren: bool = True, vat: bool = True) -> dict:
    supplier = Supplier.objects.get(company=company, code=code)
    return seller(supplier.label, siren=supplier.siren if siren else "", vat=supplier.vat_number if vat else "")


def an_invoice(company: Company, number: str = "FA-100", code: str = "F0001", **overrides) -> dict:
    fields = {
        "number": number,
        "seller": supplier_party(company, code),
        "buyer": company.name,
        "issue_date": dt.date(2026, 11, 2),
        "due_date": dt.date(2026, 12, 2),
        "lines": [("Fournitures", "100.00", "20.00")],
    }
    return invoice_data(**(fields | overrides))


def outcomes(report) -> dict[str, str]:
    return {item.name: item.outcome for item in report.files}


def note(company: Company, where: str, name: str) -> str:
    return (folder_of(company) / where / f"{name}.txt").read_text(encoding="utf-8")


def left_in(company: Company) -> dict[str, list[str]]:
    """The files of the scan folder (key "") and of each of its subfolders."""
    folder = folder_of(company)
    found = {
        where: sorted(p.name for p in (folder / where).iterdir()) for where in (PROCESSED_DIR, ERRORS_DIR, CLAIMED_DIR)
    }
    return found | {"": sorted(p.name for p in folder.iterdir() if not p.is_dir())}


SELLER = seller("Fournitures Petit SAS", siren="942904814", vat="FR66942904814")


def einvoice_data(**overrides) -> dict:
    """An e-invoice of SELLER to JNO, one line of paper at 20 %, as ``build_samples.invoice_data`` takes it."""
    fields = {
        "number": "FA-1",
        "seller": SELLER,
        "buyer": "JNO",
        "issue_date": dt.date(2026, 11, 2),
        "due_date": dt.date(2026, 12, 2),
        "lines": [("Papier", "100.00", "20.00")],
    }
    return invoice_data(**(fields | overrides))
