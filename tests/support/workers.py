"""Real Celery worker processes against the test database and the configured broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    """The URL of the database this test process uses (the test database, not the real one)."""
    info = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{info['NAME']}"
    user = info.get("USER") or ""
    password = f":{info['PASSWORD']}" if info.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    host = info.get("HOST") or "127.0.0.1"
    port = f":{info['PORT']}" if info.get("PORT") else ""
    return f"postgresql://{auth}{host}{port}/{info['NAME']}"


def celery_env(queue: str, extra_env: dict) -> dict:
    """The environment of a Celery process of a test: its database, and its own queue for everything it sends
    itself (a tick's run, a retry)."""
    return (
        os.environ
        | {"DATABASE_URL": database_url(), "PYTHONUNBUFFERED": "1", "CELERY_TASK_DEFAULT_QUEUE": queue}
        | extra_env
    )


class WorkerProcess:
    def __init__(self, queue: str, extra_env: dict | None = None, concurrency: int = 2, log_path: Path | None = None):
        self.queue = queue
        self.extra_env = extra_env or {}
        self.concurrency = concurrency
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        env = celery_env(self.queue, self.extra_env)
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "config", "worker",
                "--queues", self.queue, "--concurrency", str(self.concurrency),
                "--pool", "prefork", "--loglevel", "INFO", "--without-gossip", "--without-mingle",
                "--hostname", f"test-{uuid.uuid4().hex[:8]}@%h",
            ],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        return self

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and its children), as an OOM killer would."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def worker_queue(settings):
    """A queue of this test's own, so that no stale message of another run reaches its workers."""
    from config.celery import app

    queue = f"test-{uuid.uuid4().hex[:10]}"
    previous = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    yield queue
    app.conf.task_default_queue = previous


@pytest.fixture
def start_worker(transactional_db, worker_queue, tmp_path):
    """Start real workers: ``start_worker(extra_env={...})``; every one is stopped after the test."""
    workers: list[WorkerProcess] = []

    def start(extra_env: dict | None = None, concurrency: int = 2) -> WorkerProcess:
        log = tmp_path / f"worker-{len(workers)}.log"
        worker = WorkerProcess(worker_queue, extra_env, concurrency, log).start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
    connection.close()


@pytest.fixture
def worker(start_worker, stub_process):
    return start_worker()


class BeatProcess:
    """A real Celery beat, ticking on the test's queue with its own schedule file."""

    def __init__(self, queue: str, schedule_file: Path, log_path: Path, extra_env: dict | None = None):
        self.queue = queue
        self.schedule_file = schedule_file
        self.log_path = log_path
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen | None = None

    def start(self) -> BeatProcess:
        env = celery_env(self.queue, self.extra_env)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO",
             "--schedule", str(self.schedule_file)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


@pytest.fixture
def start_beat(transactional_db, worker_queue, tmp_path):
    beats: list[BeatProcess] = []

    def start(extra_env: dict | None = None) -> BeatProcess:
        index = len(beats)
        beat = BeatProcess(worker_queue, tmp_path / f"beat-{index}.db", tmp_path / f"beat-{index}.log", extra_env)
        beats.append(beat.start())
        return beat

    yield start
    for beat in beats:
        beat.stop()
