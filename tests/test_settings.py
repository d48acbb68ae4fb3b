"""Settings come from the environment, fail loudly, and the Celery names that matter are really read."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.celery import app
from config.env import env_bool, env_int, env_list


def test_env_helpers_fail_loudly(monkeypatch):
    monkeypatch.setenv("X_BOOL", "peut-être")
    monkeypatch.setenv("X_INT", "douze")
    monkeypatch.setenv("X_SMALL", "2")
    with pytest.raises(ImproperlyConfigured, match="X_BOOL must be a boolean"):
        env_bool("X_BOOL")
    with pytest.raises(ImproperlyConfigured, match="X_INT must be an integer"):
        env_int("X_INT", 1)
    with pytest.raises(ImproperlyConfigured, match="at least 5"):
        env_int("X_SMALL", 10, minimum=5)
    monkeypatch.setenv("X_LIST", "a, b,,c")
    assert env_list("X_LIST") == ["a", "b", "c"]


def test_a_bad_value_stops_the_start():
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "SYNC_LEASE_SECONDS": "bientôt",
            "PATH": "/usr/bin",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "SYNC_LEASE_SECONDS must be an integer" in result.stderr


def test_celery_reads_the_settings_that_matter(settings):
    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"
    assert conf.task_time_limit > conf.task_soft_time_limit
    assert conf.broker_transport_options["visibility_timeout"] > conf.task_time_limit
    assert conf.timezone == "Europe/Paris"


def test_france_is_the_default(settings):
    assert (settings.TIME_ZONE, settings.LANGUAGE_CODE, settings.USE_TZ) == ("Europe/Paris", "fr", True)


def test_the_embedded_sqlite_is_configured_for_concurrent_writers(tmp_path):
    code = (
        "import django; django.setup()\n"
        "from django.db import connection\n"
        "cursor = connection.cursor()\n"
        "print(cursor.execute('PRAGMA journal_mode').fetchone()[0])\n"
        "print(cursor.execute('PRAGMA busy_timeout').fetchone()[0])\n"
        "print(connection.settings_dict['OPTIONS']['transaction_mode'])\n"
    )
    env = {"DJANGO_SETTINGS_MODULE": "config.settings", "SFD_VAR_DIR": str(tmp_path), "PATH": "/usr/bin"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    journal, timeout, mode = result.stdout.split()
    assert (journal, mode) == ("wal", "IMMEDIATE")
    assert int(timeout) >= 5000
