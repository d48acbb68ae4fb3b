"""Keys as a form or a link writes them: ASCII digits that a bigint holds. ``int()`` alone takes « ١٢ » (Arabic-Indic
digits), « 1_0 » and « -1 », and 30 digits overflow the database (PostgreSQL's « out of range », SQLite's
OverflowError): a forged value is refused here, before any query, and the views answer it as a bad request."""

from __future__ import annotations

from collections.abc import Iterable

_MAX_DIGITS = 18  # every 18-digit number fits a signed 64-bit integer


def key_of(value: str) -> int:
    """The key ``value`` names; ``ValueError`` for anything else."""
    if not (isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= _MAX_DIGITS):
        raise ValueError(f"identifiant invalide : {str(value)[:40]!r}")
    return int(value)


def keys_of(values: Iterable[str]) -> set[int]:
    return {key_of(value) for value in values}
