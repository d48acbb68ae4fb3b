"""bin/check-ocr: what ``make run`` and ``make test`` say, in French, when the OCR's programs are missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bin" / "check-ocr"


def run_with(tmp_path: Path, programs: dict[str, str]) -> subprocess.CompletedProcess:
    """The script on a PATH holding only grep and the given fake programs (name → shell body)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "grep").symlink_to(shutil.which("grep"))
    for name, body in programs.items():
        (folder / name).write_text(f"#!/bin/sh\n{body}\n")
        (folder / name).chmod(0o755)
    return subprocess.run(
        [shutil.which("bash"), str(SCRIPT)],
        env={"PATH": str(folder), "LANG": os.environ.get("LANG", "C.UTF-8")},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_it_says_what_is_missing_in_french_when_nothing_is_installed(tmp_path):
    done = run_with(tmp_path, {})
    assert done.returncode == 1
    assert "Attention : la lecture des factures papier (OCR) est incomplète sur cette machine." in done.stderr
    assert "Tesseract (paquets Debian tesseract-ocr tesseract-ocr-fra tesseract-ocr-eng)" in done.stderr
    assert "poppler (pdftoppm, paquet poppler-utils)" in done.stderr
    assert "importées, « à compléter », sans champs pré-remplis" in done.stderr


def test_it_names_the_missing_french_data(tmp_path):
    fakes = {
        "tesseract": "printf 'List of available languages (1):\\neng\\n'",
        "pdftoppm": "",
        "pdftotext": "",
        "pdfinfo": "",
    }
    done = run_with(tmp_path, fakes)
    assert done.returncode == 1
    assert "les données françaises de Tesseract (paquet tesseract-ocr-fra)" in done.stderr
    assert "poppler (" not in done.stderr and "anglaises" not in done.stderr


def test_it_is_quiet_and_content_when_everything_is_there(tmp_path):
    fakes = {"tesseract": "printf 'List:\\neng\\nfra\\n'", "pdftoppm": "", "pdftotext": "", "pdfinfo": ""}
    done = run_with(tmp_path, fakes)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.strip() == "Lecture des factures papier (OCR) : Tesseract (fra, eng) et poppler présents."


def test_make_run_and_make_test_call_it():
    makefile = (ROOT / "Makefile").read_text()
    assert "run: install\n\t-./bin/check-ocr\n" in makefile
    assert "test: install\n\t-./bin/check-ocr\n" in makefile
