"""``python manage.py measure_ocr [DIR]``: the measure of the scan reading on any folder of documents with truth
files. Fast here on the set's two text-layer PDFs; the whole set, with OCR, is the slow test at the end."""

from __future__ import annotations

import json
import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from invoices.scan_measure import referential
from tests.support.services import require_or_skip

SCANS = Path(__file__).parent / "fixtures" / "scans"
TEXT_LAYER = ("fr-gen-07.pdf", "fr-demo-fa-2026-1201.pdf")


@pytest.fixture
def folder(tmp_path):
    for name in TEXT_LAYER:
        shutil.copy(SCANS / name, tmp_path / name)
        shutil.copy((SCANS / name).with_suffix(".json"), tmp_path / Path(name).with_suffix(".json"))
    # A document without its truth is not measured.
    shutil.copy(SCANS / "fr-gen-02.tif", tmp_path / "sans-verite.tif")
    return tmp_path


def run(*args) -> str:
    out = StringIO()
    call_command("measure_ocr", *args, stdout=out)
    return out.getvalue()


def test_it_prints_the_shares_per_field(folder):
    output = run(str(folder), "--details")
    assert f"Jeu mesuré : {folder} — 2 documents (2 factures françaises), 2 pages" in output
    for label in ("fournisseur trouvé", "numéro", "date", "total HT", "total TVA", "total TTC"):
        assert f"| {label} | 100.0 % (2/2) | 100.0 % (2/2) |" in output
    assert "| fournisseur faux avec une confiance haute | — | 0 |" in output
    assert "| champ faux avec une confiance haute | — | 0 |" in output
    assert "- fr-gen-07.pdf (0.0 s) : tout juste" in output or "- fr-gen-07.pdf (0.1 s) : tout juste" in output


def test_it_says_what_is_wrong_document_by_document(folder):
    truth_file = folder / "fr-gen-07.json"
    truth = json.loads(truth_file.read_text(encoding="utf-8"))
    truth["number"] = "AUTRE-1"
    truth_file.write_text(json.dumps(truth), encoding="utf-8")
    output = run(str(folder), "--details")
    assert "| numéro | 50.0 % (1/2) |" in output
    assert "numéro lu « F000715 » attendu « AUTRE-1 »" in output


def test_it_prints_json_for_scripts(folder):
    data = json.loads(run(str(folder), "--json"))
    assert data["documents"] == 2
    assert data["shares_french"]["total_ttc"] == [2, 2]
    assert data["wrong_supplier_high_confidence"] == 0


def test_the_referential_holds_decoys_and_the_buyers():
    truths = [json.loads((SCANS / name).with_suffix(".json").read_text(encoding="utf-8")) for name in TEXT_LAYER]
    suppliers, codes = referential(truths)
    names = {supplier.name for supplier in suppliers}
    assert {"Nettoyage Pro Services SASU", "Nettoyage Pro Distribution", "Nettoyage Pro Sarvices SASU"} <= names
    # Each buyer with an identifier is a supplier too: reading its SIREN as the seller's would show.
    assert any(supplier.siren == truths[0]["buyer"]["siren"] for supplier in suppliers)
    assert len(codes) == 2


def test_a_folder_without_truth_files_is_refused(tmp_path):
    with pytest.raises(CommandError, match="Aucun document accompagné de sa vérité"):
        run(str(tmp_path))
    with pytest.raises(CommandError, match="Dossier introuvable"):
        run(str(tmp_path / "absent"))


@pytest.mark.slow
def test_the_scanned_set_meets_the_targets():
    """The whole set with OCR (about 1 min 30 on two shared cores): supplier ≥ 95 %, number, date and totals
    ≥ 90 % on the French invoices, never a wrong supplier with high confidence."""
    require_or_skip("tesseract")
    data = json.loads(run(str(SCANS), "--json"))
    shares = {name: right / total for name, (right, total) in data["shares_french"].items() if total}
    assert shares["supplier"] >= 0.95
    for name in ("number", "issue_date", "total_ht", "total_tva", "total_ttc"):
        assert shares[name] >= 0.9, name
    assert data["wrong_supplier_high_confidence"] == 0


@pytest.mark.django_db(transaction=True)
def test_intake_measures_what_the_invoices_hold_after_the_intake_and_the_reading(folder):
    """``--intake``: the documents go through the scan folder, the intake and the reading task; the database is left
    as it was."""
    from companies.models import Company
    from invoices.models import Invoice

    output = run(str(folder), "--intake", "--details")

    assert f"Jeu mesuré : {folder} (import + lecture) — 2 documents (2 factures françaises), 2 pages" in output
    for label in ("fournisseur trouvé", "numéro", "date", "total HT", "total TVA", "total TTC"):
        assert f"| {label} | 100.0 % (2/2) | 100.0 % (2/2) |" in output
    assert "| fournisseur faux avec une confiance haute | — | 0 |" in output
    assert not Company.objects.filter(code="MESURE-OCR").exists() and not Invoice.objects.exists()
