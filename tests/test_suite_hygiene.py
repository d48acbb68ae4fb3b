"""The suite itself: it passes whatever the day, its browser patterns mean what they say, and every test that
starts Chromium says so with its mark.

Two traps once broke it: a Playwright pattern with ``\\w`` (JavaScript's ``\\w`` is ASCII, so « décembre » never
matched: the suite failed every December), and tests that read today's date without freezing it. A third would break
``make test-fast``: a test that starts Chromium without the ``browser`` mark runs in the edit loop.
"""

from __future__ import annotations

import ast
import calendar
import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.marks import COUNTED, UNMARKED

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
# In a JavaScript regular expression these are ASCII-only: « é », « û », « ç » are not word characters there.
ASCII_ONLY = re.compile(r"\\[wWbB]")


def _patterns(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "compile"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "re"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value


def test_no_pattern_of_a_browser_test_relies_on_ascii_word_classes():
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        if "playwright" not in source:
            continue
        for line, pattern in _patterns(path):
            if ASCII_ONLY.search(pattern):
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {pattern!r}")
    assert offenders == [], "Playwright runs these as JavaScript regular expressions (\\w is ASCII there)"


def test_the_scan_finds_the_trap_it_looks_for(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('import re\nre.compile(r"lundi \\d+ \\w+ \\d{4}")\n', encoding="utf-8")
    assert [pattern for _, pattern in _patterns(sample) if ASCII_ONLY.search(pattern)] == [r"lundi \d+ \w+ \d{4}"]


def _days_ahead(today: dt.date) -> list[str]:
    """The last minute of this year (December, then January within the run) and the next 29 February: days ahead of
    the real clock, because files the tests write carry the real time, and a clock sent back would see them come
    from the future."""
    leap = next(year for year in range(today.year + 1, today.year + 9) if calendar.isleap(year))
    return [f"{today.year}-12-31T23:59:00+01:00", f"{leap}-02-29T12:00:00+01:00"]


DAYS = _days_ahead(dt.date.today())


def test_the_days_are_ahead_of_any_real_day():
    assert _days_ahead(dt.date(2026, 12, 1)) == ["2026-12-31T23:59:00+01:00", "2028-02-29T12:00:00+01:00"]
    assert _days_ahead(dt.date(2028, 3, 1)) == ["2028-12-31T23:59:00+01:00", "2032-02-29T12:00:00+01:00"]


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("now", DAYS)
def test_the_fast_tests_pass_on_days_that_break_suites(now, tmp_path):
    """The fast tests, in a process of their own on the embedded default, with the clock started at ``now``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "SFD_REQUIRE_SERVICES"}
    }
    # A var/ of its own (tests/support/settings.py), not the one of this run, whose SQLite file it would replace.
    env |= {"SFD_TEST_NOW": now, "SFD_TEST_VAR_DIR": str(tmp_path / "var"), "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-x", "-p", "no:cacheprovider",
            "-m", "not slow and not browser and not worker and not postgres and not redis and not redis_server",
            str(TESTS),
        ],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    tail = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
    assert result.returncode == 0, tail
    assert f"clock: the suite starts at {now}" in result.stdout
    assert re.search(r"\d+ passed", result.stdout), tail


# --- the browser mark ----------------------------------------------------------------------------------


def _collect_with_the_marks_plugin(directory: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    # The embedded default, a var/ of its own: collecting touches no service and no queue of this run.
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "SFD_REQUIRE_SERVICES"}
    }
    env |= {"SFD_TEST_VAR_DIR": str(tmp_path / "var"), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-p", "tests.support.marks",
         str(directory)],
        cwd=directory if directory != TESTS else ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _report(result: subprocess.CompletedProcess) -> tuple[list[str], int]:
    lines = result.stdout.splitlines()
    unmarked = [line.removeprefix(UNMARKED) for line in lines if line.startswith(UNMARKED)]
    [counted] = [int(line.removeprefix(COUNTED)) for line in lines if line.startswith(COUNTED)]
    return unmarked, counted


@pytest.mark.slow  # a second collection of the whole suite: CI's ``make test`` runs it, the edit loop need not
def test_every_test_that_starts_chromium_is_marked_browser(tmp_path):
    result = _collect_with_the_marks_plugin(TESTS, tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    unmarked, counted = _report(result)
    assert unmarked == [], "mark them pytest.mark.browser: they start Chromium"
    journeys = len(list(TESTS.glob("test_journey_*.py")))
    assert counted >= journeys  # the check saw the journeys: it is not vacuous


def test_the_mark_check_finds_the_trap_it_looks_for(tmp_path):
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text(
        "import pytest\n\n"
        "@pytest.fixture\ndef chromium():\n    return 'chromium'\n\n"
        "@pytest.fixture\ndef page(chromium):\n    return chromium\n\n"
        "@pytest.fixture\ndef screen(page):\n    return page\n",
        encoding="utf-8",
    )
    (suite / "test_sample.py").write_text(
        "import pytest\n\n"
        "def test_unmarked(page):\n    pass\n\n"
        "def test_through_a_fixture(screen):\n    pass\n\n"
        "@pytest.mark.browser\ndef test_marked(page):\n    pass\n\n"
        "def test_no_browser():\n    pass\n",
        encoding="utf-8",
    )
    result = _collect_with_the_marks_plugin(suite, tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert _report(result) == (["test_sample.py::test_unmarked", "test_sample.py::test_through_a_fixture"], 3)
