"""``pytest --collect-only -p tests.support.marks``: which collected tests start Chromium without the ``browser`` mark.

A test starts Chromium when the ``chromium`` fixture is in its closure (``page`` asks for it). Without the mark it runs
in ``make test-fast`` and is not skipped where Chromium is missing: ``tests/test_suite_hygiene.py`` forbids it. The
fixture closure is pytest's own, so a fixture of a fixture that asks for ``chromium`` counts too. No Django import:
the hygiene test also runs this plugin on a sample suite of its own.
"""

from __future__ import annotations

UNMARKED = "unmarked browser test: "
COUNTED = "browser tests: "


def unmarked_browser_tests(items) -> tuple[list[str], int]:
    """The node ids of the tests that start Chromium without the mark, and how many tests start it at all."""
    browser = [item for item in items if "chromium" in getattr(item, "fixturenames", ())]
    return [item.nodeid for item in browser if item.get_closest_marker("browser") is None], len(browser)


def pytest_collection_finish(session):
    unmarked, counted = unmarked_browser_tests(session.items)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    for nodeid in unmarked:
        reporter.write_line(UNMARKED + nodeid)
    reporter.write_line(f"{COUNTED}{counted}")
