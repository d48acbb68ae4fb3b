"""Run the suite on another day: ``SFD_TEST_NOW=2028-02-29T12:00:00+01:00 pytest …`` starts the clock there.

The clock ticks from that instant (time-machine, ``tick=True``), in this process and in every thread it starts (the
live server); processes the tests start (the stub, workers) keep the real clock, as a remote ERP would.
``tests/test_suite_hygiene.py`` runs the fast tests on days that once broke a suite: the last minute of a year,
a 29 February, a month with an accent.
"""

from __future__ import annotations

import datetime as dt
import os

import time_machine

_traveller = None


def pytest_configure(config):
    global _traveller
    now = os.environ.get("SFD_TEST_NOW")
    if now and _traveller is None:
        moment = dt.datetime.fromisoformat(now)
        if moment.tzinfo is None:
            raise ValueError(f"SFD_TEST_NOW needs a UTC offset: {now!r}")
        _traveller = time_machine.travel(moment, tick=True)
        _traveller.start()


def pytest_report_header(config):
    if _traveller is not None:
        return f"clock: the suite starts at {os.environ['SFD_TEST_NOW']} (SFD_TEST_NOW)"
    return None


def pytest_unconfigure(config):
    global _traveller
    if _traveller is not None:
        _traveller.stop()
        _traveller = None
