"""The demo's invoices: every status, and the traps of the demo referential, through the real services."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import time
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils.translation import ngettext

from companies.models import Account, AnalyticSection, Company, Supplier, TaxCode
from invoices.accounting import cents
from invoices.models import Invoice
from invoices.samples import samples_for_company
from invoices.services import LineData, invoice_create, invoice_set_bap, invoice_validate
from synchro.models import SyncRun
from synchro.runs import run_company_execute, run_start

D = dt.date
# company, number, supplier (None: not recognised), lines (label, HT, account, tax code), date, what to do.
#   draft: à valider · validate: à exporter · export: exported at seeding (integrated, or refused by Sage)
#   bap: exported, then BAP given after integration (an update to push) · credit: a credit note, validated
INVOICES = (
    ("AKAO", "FA-AK-2026-101", "F0005", [("Entretien des locaux", "450.00", "615000", "T20")], D(2026, 10, 6), "export"),
    ("AKAO", "FA-AK-2026-102", "F0007", [("Honoraires conseil", "1200.00", "622600", "T20")], D(2026, 10, 14), "validate"),
    # Dated in a closed period: Sage FRP 1000 would refuse it (PERIOD_CLOSED).
    ("AKAO", "FA-AK-2026-031", "F0008", [("Fournitures", "88.00", "606400", "T20")], D(2026, 3, 12), "validate"),
    ("avirer", "FA-AV-2026-201", "F0002", [("Location de matériel", "320.00", "613500", "T20")], D(2026, 9, 30), "bap"),
    ("avirer", "FA-AV-2026-202", "F0004", [("Transports", "140.00", "624100", "T20")], D(2026, 10, 20), "draft"),
    ("avirer", "FA-AV-2026-203", None, [("Prestation", "75.00", "604000", "T20")], D(2026, 10, 21), "draft"),
    ("JNO", "FA-JN-2026-301", "F0001", [("Papeterie", "64.50", "606400", "T20")], D(2026, 10, 2), "validate"),
    # A blocked supplier in Sage (SUPPLIER_BLOCKED), caught by SFD's own check before sending.
    ("JNO", "FA-JN-2026-302", "F0042", [("Maintenance", "230.00", "615000", "T20")], D(2026, 10, 9), "export"),
    # Already booked in Sage under another key: Sage refuses it (DUPLICATE_INVOICE).
    ("JNO", "FA-2026-0117", "F0003", [("Fournitures", "1000.00", "606400", "T20")], D(2026, 5, 12), "export"),
    ("MULTI", "FA-MU-2026-401", "F0010", [("Sous-traitance", "2400.00", "611000", "T20")], D(2026, 10, 1), "export"),
    ("MULTI", "FA-MU-2026-402", "F0011", [("Publicité", "600.00", "623000", "T20")], D(2026, 10, 16), "validate"),
    ("MULTI", "FA-MU-2026-403", "F0012", [("Documentation", "45.00", "618100", "T55")], D(2026, 10, 18), "no-analytic"),
    # An account made inactive in Sage (ACCOUNT_INACTIVE).
    ("S4", "FA-S4-2026-501", "F0003", [("Divers", "150.00", "606800", "T20")], D(2026, 10, 8), "validate"),
    ("S4", "FA-S4-2026-502", "F0006", [("Électricité", "310.00", "606100", "T20")], D(2026, 10, 10), "validate"),
    ("S4", "FA-S4-2026-503", "F0009", [("Assurance", "890.00", "616000", "EXO")], D(2026, 9, 28), "export"),
    ("SA AKAO", "FA-SA-2026-601", "F0013", [("Téléphonie", "79.90", "626000", "T20")], D(2026, 10, 3), "validate"),
    ("SA AKAO", "AV-SA-2026-011", "F0013", [("Avoir téléphonie", "20.00", "626000", "T20")], D(2026, 10, 17), "credit"),
    ("SA AKAO", "FA-SA-2026-602", "F0014", [("Déplacements", "212.00", "625100", "T10")], D(2026, 10, 22), "draft"),
    ("Société 1", "FA-S1-2026-701", "F0015", [("Matériaux", "1800.00", "601000", "T20")], D(2026, 9, 25), "export"),
    ("Société 1", "FA-S1-2026-702", "F0016",
     [("Livres", "120.00", "618100", "T55"), ("Fournitures", "60.00", "606400", "T20")], D(2026, 10, 12), "validate"),
    ("Société 1", "FA-S1-2026-703", "F0017", [("Nettoyage", "95.00", "615000", "T20")], D(2026, 10, 23), "draft"),
    ("SJNO", "FA-SJ-2026-801", "F0018", [("Honoraires", "700.00", "622600", "T20")], D(2026, 10, 5), "validate"),
    ("SJNO", "FA-SJ-2026-802", "F0019", [("Location bureaux", "1500.00", "613200", "T20")], D(2026, 10, 1), "bap"),
    ("SJNO", "FA-SJ-2026-803", "F0020", [("Prestation", "250.00", "604000", None)], D(2026, 10, 24), "draft"),
    ("S1", "FA-SO-2026-901", "F0021", [("Fournitures", "42.00", "602200", "T20")], D(2026, 10, 7), "validate"),
    ("S1", "FA-SO-2026-902", "F0022", [("Réparations", "380.00", "615000", "T20")], D(2026, 10, 19), "draft"),
    ("S1", "FA-SO-2026-903", "F0023", [("Cotisation", "150.00", "628100", "EXO")], D(2026, 9, 15), "export"),
    ("S2", "FA-ST-2026-951", "F0024", [("Transports", "265.00", "624100", "T20")], D(2026, 10, 4), "validate"),
    ("S2", "FA-ST-2026-952", "F0025", [("Services bancaires", "18.00", "627000", "EXO")], D(2026, 10, 11), "validate"),
    ("S2", "FA-ST-2026-953", "F0026", [("Conseil", "900.00", "622600", "T20")], D(2026, 9, 29), "bap"),
)  # fmt: skip


def _lines(company: Company, lines, *, analytic: bool) -> tuple[list[LineData], Decimal]:
    section = AnalyticSection.objects.filter(company=company, code="ADM").first() if analytic else None
    data, vat = [], Decimal("0")
    for label, amount, account, tax in lines:
        tax_code = TaxCode.objects.get(company=company, code=tax) if tax else None
        data.append(
            LineData(
                label=label,
                amount_ht=Decimal(amount),
                account_id=Account.objects.get(company=company, code=account).pk,
                tax_code_id=tax_code.pk if tax_code else None,
                analytic_section_id=section.pk if section else None,
            )
        )
        if tax_code:
            vat += cents(Decimal(amount) * tax_code.rate / 100)
    return data, vat


def load(*, stdout) -> None:
    accountant = get_user_model().objects.filter(username="comptable").first()
    to_export: dict[int, list[int]] = {}
    bap_after: list[int] = []
    for code, number, supplier, lines, date, what in INVOICES:
        company = Company.objects.filter(code=code).first()
        if company is None or Invoice.objects.filter(company=company, number=number).exists():
            continue
        analytic = company.analytic_required and what != "no-analytic"
        data, vat = _lines(company, lines, analytic=analytic)
        total_ht = sum((line.amount_ht for line in data), Decimal("0"))
        invoice = invoice_create(
            company=company,
            supplier=Supplier.objects.get(company=company, code=supplier) if supplier else None,
            number=number,
            kind=Invoice.Kind.CREDIT_NOTE if what == "credit" else Invoice.Kind.INVOICE,
            invoice_date=date,
            total_ht=total_ht,
            total_tva=vat,
            total_ttc=total_ht + vat,
            lines=data,
            actor=accountant,
            event_message="Facture de démonstration.",
        )
        if what in ("validate", "export", "bap", "credit"):
            invoice_validate(invoice=invoice, actor=accountant)
        if what in ("export", "bap"):
            to_export.setdefault(company.pk, []).append(invoice.pk)
        if what == "bap":
            bap_after.append(invoice.pk)
    for company_id, invoice_ids in to_export.items():
        company = Company.objects.get(pk=company_id)
        run = run_start(
            trigger=SyncRun.Trigger.EXPORT,
            user=accountant,
            companies=[company],
            selection={"kind": "creation", "invoices": invoice_ids},
            dispatch=False,
        )
        line = run_company_execute(run_company_id=run.companies.get().pk)
        integrated = ngettext("%(n)d facture intégrée", "%(n)d factures intégrées", line.integrated) % {
            "n": line.integrated
        }
        stdout.write(f"{company.code} : {integrated}, {line.rejected} en anomalie")
    for invoice in Invoice.objects.filter(pk__in=bap_after, status=Invoice.Status.INTEGRATED):
        invoice_set_bap(invoice=invoice, bap=True, actor=accountant)


def drop_samples(*, stdout) -> None:
    """Sample e-invoices in the scan folders, for « Importer » (never twice the same file)."""
    settled = time.time() - 120  # older than the settling delay: the first scan takes them
    for company in Company.objects.exclude(scan_directory=""):
        samples = samples_for_company(company.code)
        if not samples:
            continue
        folder = settings.SCAN_ROOT / company.scan_directory
        folder.mkdir(parents=True, exist_ok=True)
        known = set(
            Invoice.objects.filter(company=company).exclude(source_hash="").values_list("source_hash", flat=True)
        )
        for sample in samples:
            digest = hashlib.sha256(sample.read_bytes()).hexdigest()
            target = folder / sample.name
            if digest in known or target.exists() or (folder / "traités" / sample.name).exists():
                continue
            shutil.copyfile(sample, target)
            os.utime(target, (settled, settled))
            stdout.write(f"{company.code} : exemple {sample.name} déposé dans {company.scan_directory}")
