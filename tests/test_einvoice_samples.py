"""Every public e-invoice sample (``../shared/einvoice-samples``: CEN's EN 16931 examples and test files, the factur-x
library's fixtures) meets the outcome written for it in ``tests/fixtures/einvoice_expected.json``: accepted with its
key fields, or refused with its reason. The expectations were written from each XML and the standard (the BT values
used are noted in ``bt``), not from what the code returns; ``check`` names the rule that leaves an accepted invoice
« à compléter » (a line whose quantity and price do not give its amount). The whole set, dropped in one scan folder
of a group, is then measured as issue 14 asks (``bench.intake_fidelity``)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from bench.intake_fidelity import measure_folder
from invoices import en16931
from invoices.einvoice import EInvoiceError, parse_einvoice
from tests.support.services import EINVOICE_SAMPLES, require_or_skip

EXPECTED = json.loads((Path(__file__).parent / "fixtures" / "einvoice_expected.json").read_text(encoding="utf-8"))


@pytest.fixture
def samples() -> Path:
    require_or_skip("einvoice-samples")
    return Path(EINVOICE_SAMPLES)


def _amount(value) -> str | None:
    return None if value is None else f"{Decimal(value).normalize():f}"


def found_fields(invoice) -> dict:
    """The parsed invoice in the shape of the expectations."""
    return {
        "number": invoice.number,
        "type": "credit_note" if invoice.credit_note else "invoice",
        "issue_date": invoice.issue_date.isoformat(),
        "due_date": invoice.due_date.isoformat() if invoice.due_date else None,
        "currency": invoice.currency,
        "seller": {"siren": invoice.seller.siren, "vat": invoice.seller.vat},
        "buyer": {"siren": invoice.buyer.siren, "vat": invoice.buyer.vat},
        "total_ht": _amount(invoice.total_ht),
        "total_tva": _amount(invoice.total_tva),
        "total_ttc": _amount(invoice.total_ttc),
        "vat": sorted([v.category, _amount(v.rate), _amount(v.base), _amount(v.amount)] for v in invoice.vat),
        "booked_lines": len(invoice.lines),
    }


def test_every_sample_has_its_expected_outcome(samples):
    on_disk = sorted(p.relative_to(samples).as_posix() for p in samples.rglob("*") if p.is_file() and p.suffix != ".md")
    assert on_disk == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_sample_meets_its_expected_outcome(samples, name):
    expected = EXPECTED[name]
    content = (samples / name).read_bytes()
    if expected["outcome"] == "refused":
        with pytest.raises(EInvoiceError) as refusal:
            parse_einvoice(content, Path(name).name)
        assert str(refusal.value).startswith(expected["reason"])
        return
    invoice = parse_einvoice(content, Path(name).name)
    wanted = {key: expected[key] for key in found_fields(invoice)}
    assert found_fields(invoice) == wanted
    assert sorted({warning.split(" ")[0] for warning in invoice.warnings}) == expected.get("check", [])


@pytest.mark.parametrize("name", sorted(name for name, e in EXPECTED.items() if "fragments" in e))
def test_each_fragment_of_a_cen_test_set_is_judged_as_its_test_says(samples, name):
    root = etree.fromstring((samples / name).read_bytes())
    tests = root.findall("{http://difi.no/xsd/vefa/validator/1.0}test")
    assert [
        [child.tag.rsplit("}", 1)[1], child.text.strip()]
        for test in tests
        for child in test.find("{http://difi.no/xsd/vefa/validator/1.0}assert")
        if child.tag.endswith(("error", "success"))
    ] == EXPECTED[name]["fragments"]
    for test, (verdict, rule) in zip(tests, EXPECTED[name]["fragments"], strict=True):
        fragment = test.find(f"{{{en16931.CII_NS['rsm']}}}CrossIndustryInvoice")
        broken = {breach.rule for breach in en16931.check(en16931.read_cii(fragment))}
        assert (rule in broken) is (verdict == "error"), (verdict, rule, broken)


@pytest.mark.django_db
def test_the_whole_set_dropped_in_one_folder_meets_issue_14(samples, settings, tmp_path):
    settings.SCAN_ROOT = tmp_path / "scan"
    settings.SCAN_SETTLE_SECONDS = 5
    measure = measure_folder(samples, settings.SCAN_ROOT)
    assert measure.valid_eur and measure.exact == measure.valid_eur
    assert (measure.wrongly_refused, measure.field_wrong, measure.wrong_company, measure.twins_twice) == (
        [],
        [],
        [],
        [],
    )
    assert measure.twin_groups >= 10
    assert measure.invalid and measure.invalid_refused_with_rule == measure.invalid, measure.invalid_misses
    assert measure.fragments and measure.fragments_right == measure.fragments, measure.fragment_misses
    assert measure.foreign and measure.foreign_ok == measure.foreign, measure.foreign_misses
