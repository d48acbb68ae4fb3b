"""The load test, at a small size, so that it cannot rot: users browse while an automatic run exports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_users_browse_while_an_automatic_run_exports(settings):
    database = settings.DATABASES["default"]
    host, port = database["HOST"] or "127.0.0.1", database["PORT"] or 5432
    url = f"postgres://{database['USER'] or 'postgres'}@{host}:{port}/postgres"
    env = os.environ | {"DATABASE_URL": url}
    env.pop("SFD_VAR_DIR", None)
    result = subprocess.run(
        [sys.executable, "-m", "loadtest", "--users", "10", "--entries", "500",
         "--min-seconds", "5", "--timeout", "240"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=400, check=False,
    )  # fmt: skip
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert result.returncode == 0, (report, result.stderr[-2000:])
    assert report["errors"] == 0 and report["exactly_once"] and report["booked"] == 500
    assert report["requests"] > 20 and report["p95_ms"] > 0
