"""The deterministic demo dataset of the fake Sage FRP 1000 server.

The ten companies of the manual page, each with a realistic French referential: a chart of accounts
(401 collective supplier accounts, 44566x deductible VAT, 60x–62x expenses), 42 to 60 suppliers with valid
SIREN and FR VAT numbers, journals ACH/BQ/OD, tax codes 20 %, 10 %, 5,5 %, 2,1 %, exonéré, hors champ and two
self-assessed ones (autoliquidation, acquisition intracommunautaire), an analytic
axis with sections, payment modes VIR/CHQ/PRLV/LCR.

Deliberate traps, so that the anomaly journey can be shown:
- supplier F0042 is blocked in every company (SUPPLIER_BLOCKED);
- account 606800 exists but is inactive (ACCOUNT_INACTIVE);
- every company's period is closed until 2026-03-31 (PERIOD_CLOSED for older entries);
- journal OD is inactive in S4 (JOURNAL_INACTIVE);
- an invoice of JNO's supplier F0003, « FA-2026-0117 », is already booked (DUPLICATE_INVOICE).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

DEMO_MODIFIED_AT = "2026-01-05T08:00:00+00:00"
CLOSED_UNTIL = "2026-03-31"


@dataclass(frozen=True)
class DemoCompany:
    code: str
    name: str
    analytic_required: bool = False
    inactive_journals: tuple[str, ...] = ()
    prebooked: tuple[dict, ...] = field(default=())


COMPANIES: tuple[DemoCompany, ...] = (
    DemoCompany("AKAO", "AKAO"),
    DemoCompany("avirer", "avirer"),
    DemoCompany(
        "JNO",
        "JNO",
        prebooked=(
            {
                "external_id": "SAGE-SAISIE-2026-0117",
                "supplier": "F0003",
                "piece_reference": "FA-2026-0117",
                "date": "2026-05-12",
                "amount": "1200.00",
            },
        ),
    ),
    DemoCompany("MULTI", "MULTI", analytic_required=True),
    DemoCompany("S4", "S4", analytic_required=True, inactive_journals=("OD",)),
    DemoCompany("SA AKAO", "SA AKAO"),
    DemoCompany("Société 1", "Société 1"),
    DemoCompany("SJNO", "Société JNO"),
    DemoCompany("S1", "Société S1"),
    DemoCompany("S2", "Société S2"),
)

ACCOUNTS: tuple[tuple[str, str, str], ...] = (
    ("401000", "Fournisseurs", "fournisseur"),
    ("401100", "Fournisseurs - Achats de biens et prestations", "fournisseur"),
    ("404000", "Fournisseurs d'immobilisations", "fournisseur"),
    ("408100", "Fournisseurs - Factures non parvenues", "fournisseur"),
    ("445620", "TVA déductible sur immobilisations", "tva"),
    ("445200", "TVA due intracommunautaire", "tva"),
    ("445660", "TVA déductible sur autres biens et services", "tva"),
    ("445662", "TVA déductible intracommunautaire", "tva"),
    ("445710", "TVA collectée (autoliquidation)", "tva"),
    ("512000", "Banque", "banque"),
    ("601000", "Achats stockés - Matières premières", "charge"),
    ("602200", "Fournitures consommables", "charge"),
    ("604000", "Achats d'études et prestations de services", "charge"),
    ("606100", "Fournitures non stockables (eau, énergie)", "charge"),
    ("606300", "Fournitures d'entretien et de petit équipement", "charge"),
    ("606400", "Fournitures administratives", "charge"),
    ("606800", "Autres matières et fournitures", "charge"),
    ("611000", "Sous-traitance générale", "charge"),
    ("613200", "Locations immobilières", "charge"),
    ("613500", "Locations mobilières", "charge"),
    ("615000", "Entretien et réparations", "charge"),
    ("616000", "Primes d'assurances", "charge"),
    ("618100", "Documentation générale", "charge"),
    ("622600", "Honoraires", "charge"),
    ("623000", "Publicité, publications, relations publiques", "charge"),
    ("624100", "Transports sur achats", "charge"),
    ("625100", "Voyages et déplacements", "charge"),
    ("626000", "Frais postaux et de télécommunications", "charge"),
    ("627000", "Services bancaires et assimilés", "charge"),
    ("628100", "Concours divers (cotisations)", "charge"),
)
INACTIVE_ACCOUNTS = frozenset({"606800"})
EXPENSE_ACCOUNTS = tuple(code for code, _, nature in ACCOUNTS if nature == "charge" and code != "606800")

JOURNALS = (
    ("ACH", "Journal des achats", "achat"),
    ("BQ", "Banque", "banque"),
    ("OD", "Opérations diverses", "od"),
)

# (code, label, rate, deductible account, collected account, EN 16931 VAT category). The two self-assessed codes book
# their VAT as deductible and as due (reverse charge AE on domestic works, K on acquisitions from another EU state).
TAX_CODES = (
    ("T20", "TVA déductible 20 %", "20.00", "445660", "", "S"),
    ("T10", "TVA déductible 10 %", "10.00", "445660", "", "S"),
    ("T55", "TVA déductible 5,5 %", "5.50", "445660", "", "S"),
    ("T21", "TVA déductible 2,1 %", "2.10", "445660", "", "S"),
    ("EXO", "Exonéré de TVA", "0.00", "", "", "E"),
    ("HC", "Hors champ de la TVA", "0.00", "", "", "O"),
    ("AL20", "Autoliquidation 20 % (sous-traitance, travaux)", "20.00", "445660", "445710", "AE"),
    ("AI20", "Acquisition intracommunautaire 20 %", "20.00", "445662", "445200", "K"),
)

ANALYTIC_AXIS = "CC"
ANALYTIC_SECTIONS = (
    ("ADM", "Administration"),
    ("COM", "Commercial"),
    ("PROD", "Production"),
    ("RD", "Recherche et développement"),
    ("LOG", "Logistique"),
)

PAYMENT_MODES = (
    ("VIR", "Virement"),
    ("CHQ", "Chèque"),
    ("PRLV", "Prélèvement"),
    ("LCR", "Lettre de change relevé"),
)

_TRADES = (
    ("Transports", "624100"),
    ("Imprimerie", "606400"),
    ("Bureautique", "606400"),
    ("Électricité", "606100"),
    ("Nettoyage", "615000"),
    ("Conseil", "622600"),
    ("Informatique", "604000"),
    ("Télécom", "626000"),
    ("Assurances", "616000"),
    ("Locations", "613500"),
    ("Fournitures", "602200"),
    ("Maintenance", "615000"),
    ("Publicité", "623000"),
    ("Matériaux", "601000"),
    ("Sous-traitance", "611000"),
    ("Voyages", "625100"),
)
_NAMES = (
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
    "Simon", "Laurent", "Lefebvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier",
    "Morel", "Girard", "André", "Lefèvre", "Mercier", "Dupont", "Lambert", "Bonnet", "François", "Martinez",
    "Legrand", "Garnier", "Faure", "Rousseau", "Blanc", "Guérin", "Muller", "Henry", "Roussel", "Nicolas",
)  # fmt: skip
_FORMS = ("SARL", "SAS", "SA", "EURL", "SASU")
_CITIES = ("Paris", "Lyon", "Lille", "Nantes", "Bordeaux", "Toulouse", "Rennes", "Grenoble", "Dijon", "Tours")


def luhn_check_digit(digits: str) -> int:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return (10 - total % 10) % 10


def siren_from(number: int) -> str:
    base = f"{number % 100_000_000:08d}"
    return base + str(luhn_check_digit(base))


def vat_number(siren: str) -> str:
    key = (12 + 3 * (int(siren) % 97)) % 97
    return f"FR{key:02d}{siren}"


def supplier_code(index: int) -> str:
    return f"F{index:04d}"


def _seed(company_code: str) -> int:
    return sum((i + 1) * ord(c) for i, c in enumerate(company_code))


def suppliers_for(company_code: str, count: int | None = None) -> list[dict]:
    rng = random.Random(_seed(company_code))
    if count is None:
        count = rng.randint(42, 60)
    items = []
    for index in range(1, count + 1):
        trade, expense = _TRADES[(index * 7 + _seed(company_code)) % len(_TRADES)]
        name = _NAMES[(index * 3 + len(company_code)) % len(_NAMES)]
        form = _FORMS[index % len(_FORMS)]
        city = _CITIES[(index + _seed(company_code)) % len(_CITIES)]
        siren = siren_from(rng.randrange(30_000_000, 99_999_999))
        items.append(
            {
                "code": supplier_code(index),
                "label": f"{trade} {name} {form}",
                "active": True,
                "modified_at": DEMO_MODIFIED_AT,
                "siren": siren,
                "vat_number": vat_number(siren),
                "city": city,
                "collective_account": "401000",
                "blocked": index == 42,
                "payment_terms_days": (30, 45, 60, 30)[index % 4],
                "payment_mode": ("VIR", "VIR", "PRLV", "CHQ", "LCR")[index % 5],
                "default_expense_account": expense,
            }
        )
    return items


def referential_for(company: DemoCompany) -> dict[str, list[dict]]:
    def base(code: str, label: str, active: bool = True) -> dict:
        return {"code": code, "label": label, "active": active, "modified_at": DEMO_MODIFIED_AT}

    return {
        "accounts": [
            base(code, label, code not in INACTIVE_ACCOUNTS) | {"nature": nature} for code, label, nature in ACCOUNTS
        ],
        "suppliers": suppliers_for(company.code),
        "journals": [
            base(code, label, code not in company.inactive_journals) | {"type": kind} for code, label, kind in JOURNALS
        ],
        "tax-codes": [
            base(code, label)
            | {"rate": rate, "deductible_account": account, "collected_account": collected, "vat_category": category}
            for code, label, rate, account, collected, category in TAX_CODES
        ],
        "analytic-sections": [base(code, label) | {"axis": ANALYTIC_AXIS} for code, label in ANALYTIC_SECTIONS],
        "payment-modes": [base(code, label) for code, label in PAYMENT_MODES],
    }


def company_record(company: DemoCompany) -> dict:
    siren = siren_from(_seed(company.code) * 7919)
    return {
        "code": company.code,
        "name": company.name,
        "siren": siren,
        "vat_number": vat_number(siren),
        "currency": "EUR",
        "closed_until": CLOSED_UNTIL,
        "analytic_required": company.analytic_required,
    }


def generated_suppliers(count: int, start: int = 1) -> list[dict]:
    """A large referential for benchmarks: cheap to build, still valid items."""
    items = []
    for index in range(start, start + count):
        siren = siren_from(10_000_000 + index * 37)
        items.append(
            {
                "code": f"G{index:07d}",
                "label": f"Fournisseur généré {index}",
                "active": True,
                "modified_at": DEMO_MODIFIED_AT,
                "siren": siren,
                "vat_number": vat_number(siren),
                "collective_account": "401000",
                "blocked": False,
                "payment_terms_days": 30,
                "payment_mode": "VIR",
                "default_expense_account": "606400",
            }
        )
    return items


def generated_accounts(count: int) -> list[dict]:
    return [
        {
            "code": f"6{index:07d}",
            "label": f"Compte de charge généré {index}",
            "active": True,
            "modified_at": DEMO_MODIFIED_AT,
            "nature": "charge",
        }
        for index in range(1, count + 1)
    ]
