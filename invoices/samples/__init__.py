"""Sample invoices for the demo and the tests, built with the ``factur-x`` library by ``build_samples.py``."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
SAMPLE_SUFFIXES = (".pdf", ".xml")


def samples_for_company(code: str) -> list[Path]:
    """The sample files meant for the company ``code`` (its scan folder), by name; none for most companies."""
    folder = HERE / code
    if not folder.is_dir() or folder.parent != HERE:
        return []
    return sorted(path for path in folder.iterdir() if path.suffix.lower() in SAMPLE_SUFFIXES)
