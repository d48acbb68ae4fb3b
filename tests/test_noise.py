"""Noise that alarms: a 403 logged as a crash, `curl: (7)` while `make run` waits for the stub, and task messages
that a test run left for the next `make run`'s worker."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.conf import settings
from kombu import Exchange, Queue

from config.celery import app
from core.logging import ClientErrorWithoutTraceback, JsonFormatter
from tests.support.production import production_env
from tests.support.stub import free_port

ROOT = Path(__file__).resolve().parents[1]
CLONE_VAR = ROOT / "var"


# --- a 403 is one warning line ------------------------------------------------------------------------


def test_a_403_is_one_warning_line_without_traceback(client, charlie, caplog):
    client.force_login(charlie)
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = client.get("/administration/connecteurs/")
    assert response.status_code == 403
    [record] = [record for record in caplog.records if record.name == "django.request"]
    assert record.levelname == "WARNING"
    assert record.getMessage() == "Forbidden (Permission denied): /administration/connecteurs/"
    assert record.exc_info is None and "Traceback" not in caplog.text
    assert "exception" not in json.loads(JsonFormatter().format(record))


def test_a_server_error_keeps_its_traceback():
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.LogRecord("django.request", logging.ERROR, __file__, 1, "Internal Server Error: /", (), None)
        record.exc_info = sys.exc_info()
    record.status_code = 500
    assert ClientErrorWithoutTraceback().filter(record) is True
    assert "RuntimeError: boom" in json.loads(JsonFormatter().format(record))["exception"]


def test_production_logs_a_403_as_one_json_line_without_exception(tmp_path):
    """``config.production`` writes JSON lines: the 403 that Django logs there carries no « exception » either."""
    code = (
        "import django, logging; django.setup()\n"
        "from django.core.exceptions import PermissionDenied\n"
        "from django.http import HttpResponseForbidden\n"
        "from django.test import RequestFactory\n"
        "from django.utils.log import log_response\n"
        "request = RequestFactory().get('/administration/droits/')\n"
        "try:\n"
        "    raise PermissionDenied\n"
        "except PermissionDenied as error:\n"
        "    log_response('Forbidden (Permission denied): %s', request.path, response=HttpResponseForbidden(),"
        " request=request, exception=error)\n"
    )
    env = production_env(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    [line] = [json.loads(line) for line in result.stdout.splitlines()]
    assert (line["level"], line["logger"]) == ("WARNING", "django.request")
    assert line["message"] == "Forbidden (Permission denied): /administration/droits/"
    assert "exception" not in line


# --- a test run has a broker of its own ---------------------------------------------------------------


def _waiting(queue_name: str) -> int:
    with app.connection_for_write() as connection:
        queue = Queue(queue_name, Exchange(queue_name, type="direct"), routing_key=queue_name)
        return queue(connection.default_channel).queue_declare().message_count


def test_a_test_run_sends_its_messages_to_a_broker_of_its_own():
    from synchro.tasks import run_company_task

    assert not Path(settings.VAR_DIR).is_relative_to(ROOT)
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    assert queue != "celery"  # the queue `make run`'s worker consumes
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        assert folder.is_relative_to(settings.VAR_DIR)
    before = _waiting(queue)
    run_company_task.delay(0)
    assert _waiting(queue) == before + 1
    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge(queue)


@pytest.mark.slow
def test_a_test_run_leaves_nothing_in_the_clone_nor_behind_it(tmp_path):
    """A whole pytest run on the embedded default, which enqueues a task: its var/ is gone at its end, and nothing
    reached the clone's var/."""
    before = sorted(CLONE_VAR.rglob("*")) if CLONE_VAR.exists() else None
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "SFD_REQUIRE_SERVICES"}
        and key not in {"SFD_TEST_VAR_DIR", "SFD_VAR_DIR", "CELERY_TASK_DEFAULT_QUEUE"}
    }
    env["TMPDIR"] = str(temporary)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/test_noise.py::test_a_test_run_sends_its_messages_to_a_broker_of_its_own"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "1 passed" in result.stdout
    assert list(temporary.iterdir()) == []
    assert (sorted(CLONE_VAR.rglob("*")) if CLONE_VAR.exists() else None) == before


# --- make run waits for the stub in silence ------------------------------------------------------------


class _Health(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_waiting_for_a_server_that_starts_late_prints_nothing():
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), _Health)
    thread = threading.Timer(1.0, server.serve_forever)
    thread.start()
    try:
        result = subprocess.run(
            ["bin/wait-for-url", f"http://127.0.0.1:{port}/api/v1/health", "10", "-H", "Authorization: Bearer k"],
            cwd=ROOT, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_a_server_that_never_answers_is_given_up_in_silence():
    started = time.monotonic()
    result = subprocess.run(
        ["bin/wait-for-url", f"http://127.0.0.1:{free_port()}/api/v1/health", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert (result.returncode, result.stdout, result.stderr) == (1, "", "")
    assert time.monotonic() - started < 5


READY_MARKS = (
    "Connexion   : admin",
    "Listening at: http://127.0.0.1:",
    "celery@",  # the worker's banner; "ready." below is its last line
    " ready.",
    "beat: Starting...",
    "Sage FRP 1000 stub on http://127.0.0.1:",
)


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_make_run_starts_without_a_curl_error(tmp_path):
    """`bin/run` (what `make run` runs) from a fresh var/ of its own: migrate, the demo from the stub, then the
    processes. Nothing on its way reads like an error, and it writes nothing in the clone's var/."""
    before = sorted(CLONE_VAR.rglob("*")) if CLONE_VAR.exists() else None
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
        and key not in {"SFD_TEST_VAR_DIR", "CELERY_TASK_DEFAULT_QUEUE"}
    }
    env |= {
        "SFD_VAR_DIR": str(tmp_path / "var"),
        "SAGE_STUB_PORT": str(free_port()),
        "WEB_PORT": str(free_port()),
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "run.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            ["bin/run"], cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + 360
            # Every process up, not only the banner: honcho stopped while it is still starting its processes
            # trips on its own race (KeyError 'pid' in _killall), a traceback that is honcho's, not ours.
            while not all(mark in log.read_text(errors="replace") for mark in READY_MARKS):
                assert process.poll() is None, log.read_text(errors="replace")[-3000:]
                assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
                time.sleep(0.5)
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
    text = log.read_text(errors="replace")
    assert "Chargement de la démonstration…" in text
    assert "curl:" not in text and "Failed to connect" not in text and "Traceback" not in text
    assert (tmp_path / "var" / "sage-stub.sqlite3").exists()
    assert (sorted(CLONE_VAR.rglob("*")) if CLONE_VAR.exists() else None) == before
