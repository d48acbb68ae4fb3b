"""``--entry-ms N``: the stub takes a real ERP's pace, N ms per entry of a batch, sleeping (no CPU), over real HTTP."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from tests.support.stub import StubProcess
from tests.test_sage_stub import _entry

ENTRY_MS = 40
BATCH = 10


def _batch(prefix: str) -> dict:
    return {"entries": [_entry(f"{prefix}-{index}") for index in range(BATCH)]}


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _timed_post(stub: StubProcess, company: str, body: dict) -> tuple[float, list[dict]]:
    started = time.perf_counter()
    url = f"{stub.url}/api/v1/companies/{company}/entries"
    response = stub.http.post(url, headers=stub.auth, json=body, timeout=30)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed, response.json()["results"]


@pytest.fixture
def paced_stub(tmp_path):
    stub = StubProcess(tmp_path / "paced.sqlite3")
    stub.extra_args = ["--entry-ms", str(ENTRY_MS)]
    stub.start()
    yield stub
    stub.stop()


def test_a_batch_takes_at_least_its_entries_times_the_pace(paced_stub):
    cpu_before = _cpu_seconds(paced_stub.process.pid)
    elapsed, results = _timed_post(paced_stub, "JNO", _batch("pace"))
    cpu_used = _cpu_seconds(paced_stub.process.pid) - cpu_before

    assert [result["status"] for result in results] == ["accepted"] * BATCH
    assert elapsed >= BATCH * ENTRY_MS / 1000
    # The wait is a sleep: the stub's own CPU stays far below the time the batch took.
    assert cpu_used < elapsed / 2


def test_batches_of_two_companies_wait_side_by_side(paced_stub):
    timings: dict[str, float] = {}

    def post(company: str) -> None:
        timings[company], _ = _timed_post(paced_stub, company, _batch(f"side-{company}"))

    started = time.perf_counter()
    threads = [threading.Thread(target=post, args=(company,)) for company in ("JNO", "S1")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    together = time.perf_counter() - started

    assert set(timings) == {"JNO", "S1"}
    assert min(timings.values()) >= BATCH * ENTRY_MS / 1000
    # The wait is outside the store's write lock: two companies do not queue behind one another.
    assert together < 2 * BATCH * ENTRY_MS / 1000


def test_the_pace_can_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SAGE_STUB_ENTRY_MS", str(ENTRY_MS))
    stub = StubProcess(tmp_path / "env.sqlite3")
    stub.start()
    try:
        elapsed, results = _timed_post(stub, "JNO", _batch("env"))
    finally:
        stub.stop()
    assert len(results) == BATCH
    assert elapsed >= BATCH * ENTRY_MS / 1000


def test_without_the_option_a_batch_does_not_wait(sage):
    elapsed, results = _timed_post(sage, "JNO", _batch("nopace"))
    assert [result["status"] for result in results] == ["accepted"] * BATCH
    # Booking ten entries takes a few milliseconds; the paced stub would take 400 ms.
    assert elapsed < BATCH * ENTRY_MS / 1000
