"""Which external services this run has, and what to do when one is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

REQUIRED = os.environ.get("SFD_REQUIRE_SERVICES") == "1"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def redis_url() -> str | None:
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if broker.startswith("redis://"):
        return broker
    return os.environ.get("REDIS_URL")


def _postgres() -> str | None:
    from django.db import connection

    if connection.vendor != "postgresql":
        return "DATABASE_URL does not point at PostgreSQL (the embedded default is SQLite)"
    return None


def _redis() -> str | None:
    url = redis_url()
    if not url:
        return "neither CELERY_BROKER_URL nor REDIS_URL is a redis:// URL"
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        return f"Redis at {url} does not answer ({exc})"
    return None


def _redis_server() -> str | None:
    if not shutil.which("redis-server"):
        return "no redis-server binary (apt-get install -y redis-server)"
    return None


def _chromium() -> str | None:
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    return None


def _tesseract() -> str | None:
    program = shutil.which("tesseract")
    if not program:
        return "no tesseract (apt-get install -y tesseract-ocr tesseract-ocr-fra tesseract-ocr-eng)"
    listed = subprocess.run([program, "--list-langs"], capture_output=True, text=True, timeout=30, check=False)
    if "fra" not in listed.stdout.split():
        return "Tesseract has no French data (apt-get install -y tesseract-ocr-fra)"
    try:
        import pytesseract  # noqa: F401
    except ImportError:
        return "the pytesseract package is not installed"
    return None


# The public e-invoice samples (CEN's examples, the factur-x library's fixtures) live beside the project, never in it.
EINVOICE_SAMPLES = os.environ.get(
    "SFD_EINVOICE_SAMPLES", str(Path(__file__).resolve().parents[2].parent / "shared" / "einvoice-samples")
)


def _einvoice_samples() -> str | None:
    if not os.path.isdir(EINVOICE_SAMPLES):
        return f"no e-invoice samples at {EINVOICE_SAMPLES} (set SFD_EINVOICE_SAMPLES to their folder)"
    return None


@dataclass(frozen=True)
class Service:
    group: str
    check: Callable[[], str | None]


SERVICES = {
    "postgres": Service("PostgreSQL tests (concurrency, killed connections)", _postgres),
    "redis": Service("Redis broker tests (real worker on Redis, broker loss)", _redis),
    "chromium": Service("browser journeys (Playwright driving Chromium)", _chromium),
    "redis-server": Service("tests that start and kill a Redis of their own (broker loss)", _redis_server),
    "tesseract": Service("scan reading by OCR (Tesseract)", _tesseract),
    "einvoice-samples": Service(
        "public e-invoice samples (CEN, factur-x) and their expected outcomes", _einvoice_samples
    ),
}


# service → why it is missing, for the summary at the end of the run
SKIPPED: dict[str, str] = {}


def require_or_skip(name: str) -> None:
    reason = SERVICES[name].check()
    if reason is None:
        return
    if REQUIRED:
        pytest.fail(f"{name} is required (SFD_REQUIRE_SERVICES=1): {reason}", pytrace=False)
    SKIPPED[name] = reason
    pytest.skip(f"{name} missing: {reason}")
