"""The French catalogue (``locale/fr``): what gives the product's plural messages French's rule.

Django's ``ngettext`` applies the rule of the catalogue that holds the message; a message found in none falls back
to English's (``n != 1``), so « 0 écritures intégrées ». The project's messages are French already: the catalogue
repeats each msgid as its msgstr, under ``Plural-Forms: nplurals=2; plural=(n > 1);``. It is made by
``make messages`` and committed with its compiled ``django.mo``, so that a fresh clone, the image and CI have it
without GNU gettext. These tests fail when a plural message of the code is missing from it (or cannot be
extracted into it), when the ``.mo`` is not the ``.po`` compiled, and when the rule does not hold at run time.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import polib
import pytest
from django.utils.translation import ngettext, npgettext, override
from django.utils.translation.template import templatize

ROOT = Path(__file__).resolve().parent.parent
PO = ROOT / "locale" / "fr" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
# The product's code: what `make messages` reads (tests, benchmarks and the load test speak to developers).
PRODUCT = ("accounts", "companies", "config", "connectors", "core", "invoices", "synchro", "templates")
PLURAL_CALLS = {"ngettext": 2, "ngettext_lazy": 2, "npgettext": 3, "npgettext_lazy": 3}
FRENCH_RULE = "nplurals=2; plural=(n > 1);"
REMAKE = "run `make messages` and commit locale/"

_STRING = r"""u?(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""
# What ``templatize`` (makemessages' reading of a template) writes for a {% blocktranslate count %}.
_TEMPLATE_PLURAL = re.compile(
    rf"\b(?:ngettext\((?P<s>{_STRING}), (?P<p>{_STRING}), count\)"
    rf"|npgettext\((?P<ctx>{_STRING}), (?P<cs>{_STRING}), (?P<cp>{_STRING}),count\))"
)


@dataclass(frozen=True)
class Plural:
    singular: str
    plural: str
    context: str | None = None


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def product_files(*suffixes: str) -> list[Path]:
    return sorted(
        path
        for top in PRODUCT
        for path in (ROOT / top).rglob("*")
        if path.suffix in suffixes and "migrations" not in path.parts and "__pycache__" not in path.parts
    )


def python_plurals(path: Path) -> tuple[dict[Plural, str], list[str]]:
    """The plural messages of a Python file, and the calls whose words are not literal (never extracted)."""
    found: dict[Plural, str] = {}
    opaque: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
        if name not in PLURAL_CALLS:
            continue
        where = f"{shown(path)}:{node.lineno}"
        words = node.args[: PLURAL_CALLS[name]]
        if len(words) < PLURAL_CALLS[name] or not all(
            isinstance(word, ast.Constant) and isinstance(word.value, str) for word in words
        ):
            opaque.append(where)
            continue
        values = [word.value for word in words]
        message = Plural(*values) if len(values) == 2 else Plural(values[1], values[2], values[0])
        found.setdefault(message, where)
    return found, opaque


def template_plurals(path: Path) -> dict[Plural, str]:
    source = templatize(path.read_text(encoding="utf-8"), origin=str(path))
    found: dict[Plural, str] = {}
    for match in _TEMPLATE_PLURAL.finditer(source):
        if match["s"]:
            message = Plural(ast.literal_eval(match["s"]), ast.literal_eval(match["p"]))
        else:
            message = Plural(
                ast.literal_eval(match["cs"]), ast.literal_eval(match["cp"]), ast.literal_eval(match["ctx"])
            )
        found.setdefault(message, shown(path))
    return found


def plurals_of_the_code() -> dict[Plural, str]:
    found: dict[Plural, str] = {}
    for path in product_files(".py"):
        for message, where in python_plurals(path)[0].items():
            found.setdefault(message, where)
    for path in product_files(".html", ".txt"):
        for message, where in template_plurals(path).items():
            found.setdefault(message, where)
    return found


@pytest.fixture(scope="module")
def catalogue() -> polib.POFile:
    assert PO.exists(), f"no French catalogue: {REMAKE}"
    return polib.pofile(str(PO))


def test_the_catalogue_speaks_french_with_french_s_plural_rule(catalogue):
    assert catalogue.metadata["Language"] == "fr"
    assert catalogue.metadata["Plural-Forms"] == FRENCH_RULE
    # A fuzzy header is left out of the .mo, and its Plural-Forms with it.
    assert not catalogue.metadata_is_fuzzy
    assert polib.mofile(str(MO)).metadata["Plural-Forms"] == FRENCH_RULE


def test_the_reading_of_the_code_finds_the_plural_messages_of_python_and_templates():
    found = plurals_of_the_code()
    assert Plural("%(counter)s facture", "%(counter)s factures") in found  # {% blocktranslate count %}
    assert Plural("%(n)d écriture intégrée", "%(n)d écritures intégrées") in found  # ngettext in Python
    assert found[Plural("%(n)s écriture intégrée", "%(n)s écritures intégrées")].endswith("_run_progress.html")
    assert len(found) > 60


def test_a_plural_call_whose_words_are_not_literal_is_found(tmp_path):
    source = tmp_path / "opaque.py"
    source.write_text(
        "from django.utils.translation import ngettext\n"
        "WORDS = ('%(n)d compte', '%(n)d comptes')\n"
        "def words(n):\n"
        "    return ngettext(*WORDS, n), ngettext('%(n)d page', '%(n)d pages', n)\n",
        encoding="utf-8",
    )
    found, opaque = python_plurals(source)
    assert list(found) == [Plural("%(n)d page", "%(n)d pages")]
    assert opaque == ["opaque.py:4"]


def test_every_plural_call_of_the_code_can_be_extracted():
    """makemessages reads literal words only: a message built from variables never reaches the catalogue."""
    opaque = [where for path in product_files(".py") for where in python_plurals(path)[1]]
    assert opaque == [], "give ngettext its words literally: " + ", ".join(opaque)


def test_every_plural_message_of_the_code_is_in_the_catalogue_in_french(catalogue):
    entries = {
        Plural(entry.msgid, entry.msgid_plural, entry.msgctxt): entry for entry in catalogue if entry.msgid_plural
    }
    missing = [
        f"{where}: {message.singular!r}" for message, where in plurals_of_the_code().items() if message not in entries
    ]
    assert missing == [], f"plural messages missing from the catalogue ({REMAKE}):\n" + "\n".join(missing)
    for message, entry in entries.items():
        assert not entry.fuzzy and not entry.obsolete, (message, REMAKE)
        assert entry.msgstr_plural == {0: message.singular, 1: message.plural}, (message, REMAKE)


def test_every_message_of_the_catalogue_says_what_the_code_says(catalogue):
    """The code is the text's only source: a msgstr that differs from its msgid would show words nobody wrote
    there (the trace of a fuzzy match left behind)."""
    for entry in catalogue:
        if entry.msgid_plural:
            continue
        assert not entry.fuzzy and entry.msgstr in ("", entry.msgid), (entry.msgid, REMAKE)


def test_the_compiled_catalogue_is_the_po_compiled(catalogue):
    def translations(entries) -> dict:
        return {
            (entry.msgctxt, entry.msgid, entry.msgid_plural): (
                tuple(sorted(entry.msgstr_plural.items())) if entry.msgid_plural else entry.msgstr
            )
            for entry in entries
            if entry.msgid
        }

    compiled = translations(polib.mofile(str(MO)))
    # msgfmt leaves out what is untranslated or fuzzy.
    written = translations(entry for entry in catalogue if entry.translated())
    assert len(written) > 500
    assert compiled.keys() - written.keys() == set(), f"django.mo holds messages the .po no longer has: {REMAKE}"
    assert written.keys() - compiled.keys() == set(), f"django.mo lacks messages of the .po: {REMAKE}"
    assert compiled == written, f"django.mo and the .po disagree: {REMAKE}"


@pytest.mark.parametrize("n", [0, 1, 2, 21])
def test_every_plural_message_of_the_code_agrees_in_french_at_run_time(n):
    """What Django itself answers, through LOCALE_PATHS: 0 and 1 take the singular, 2 and more the plural."""
    messages = plurals_of_the_code()
    with override("fr"):
        for message in messages:
            if message.context is None:
                said = ngettext(message.singular, message.plural, n)
            else:
                said = npgettext(message.context, message.singular, message.plural, n)
            assert said == (message.singular if n <= 1 else message.plural), (n, message)
