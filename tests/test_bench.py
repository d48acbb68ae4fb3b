"""``make bench`` at a hundredth of its size, as CI runs it so that it cannot rot: every row, with its keys, and a
clean exit (no crash, every check sound: exact counts, entries booked, queries within bounds). Timings are not
asserted here: at this size they measure noise; the full size is ``make bench``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.support import KEYS, TARGETS

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(900)]


def test_the_benchmark_prints_every_row_at_a_small_scale():
    env = {key: value for key, value in os.environ.items() if key not in ("BENCH_ONLY", "BENCH_KEEP_DB")}
    # A database of its own: never the one of a `make bench` running beside it.
    env |= {"BENCH_SCALE": "0.01", "BENCH_DATABASE": f"sfd_bench_test_{os.getpid()}"}
    result = subprocess.run(
        [sys.executable, "-m", "bench"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=840, check=False
    )
    assert result.returncode == 0, result.stderr[-4000:]
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert [row["name"] for row in rows] == list(TARGETS)
    for row in rows:
        assert tuple(row)[: len(KEYS)] == KEYS
        assert row["target"] == TARGETS[row["name"]]
        assert row["n"] > 0 and row["seconds"] > 0
        assert isinstance(row["ok"], bool)
    by_name = {row["name"]: row for row in rows}
    for name in set(TARGETS) - {"memory"}:
        assert by_name[name]["baseline_seconds"] > 0 and by_name[name]["ratio"] > 0, name
    assert 0 < by_name["memory"]["peak_rss_mb"] <= 300
    assert by_name["visuel_page"]["queries"] <= 10
    # The CPU of every process of each export row: SFD's, PostgreSQL's backends', the stub's.
    assert by_name["export"]["cpu_ratio"] > 0
    for name in ("export", "export_erp_pace"):
        assert set(by_name[name]["cpu_seconds"]) == {"sfd", "postgres", "stub"}
        assert all(seconds is not None and seconds >= 0 for seconds in by_name[name]["cpu_seconds"].values())
        assert by_name[name]["cpu_seconds"]["sfd"] > 0
    assert set(by_name["export_workers"]["cpu_seconds"]) == {"workers", "postgres", "stub"}
    assert by_name["export_workers"]["cpu_seconds"]["workers"] > 0
    assert set(by_name["visuel_under_load"]["cpu_seconds"]) == {"gunicorn", "workers", "postgres", "stub"}


def test_the_rows_with_real_workers_require_redis():
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("BENCH_ONLY", "BENCH_KEEP_DB", "CELERY_BROKER_URL", "BENCH_REDIS_URL")
    }
    env |= {"BENCH_SCALE": "0.01", "BENCH_ONLY": "export_workers", "BENCH_DATABASE": f"sfd_bench_test_{os.getpid()}"}
    result = subprocess.run(
        [sys.executable, "-m", "bench"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Redis is required" in result.stderr
    assert "Traceback" not in result.stderr
    (row,) = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert (row["name"], row["ok"]) == ("export_workers", False)
