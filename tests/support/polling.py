"""Waiting for a condition, never for a guessed number of seconds.

A test that sleeps « long enough » is slow where the machine is fast and flaky where it is slow (the CI's two cores
run four suites at once). ``wait_for`` polls what the test really waits for and fails with what it waited for once
its deadline has passed. A sleep that is itself the behaviour under test (a slow Sage, a holder busy for three
leases) stays a sleep, with a comment saying so; a date that matters is moved with time-machine instead.

The deadline is read on ``time.monotonic``, which time-machine leaves alone: a test that travels still waits for real.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], *, timeout: float = 60.0, interval: float = 0.2, message: str = "") -> T:
    """``predicate()``'s first true value, polled every ``interval`` seconds; an AssertionError after ``timeout``.

    The predicate is called once more at the deadline, so a slow poll never fails a condition that came true.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__name__", repr(predicate))
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (last seen: {value!r})")
        time.sleep(interval)
