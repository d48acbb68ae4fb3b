"""The settings of a test run: ``config.settings`` on a var/ directory of the run's own.

The clone's var/ belongs to ``make run``: its file-system broker, its SQLite database, its scan folders. The task
messages a test run left in its broker were drained by the next ``make run``'s worker (29 of them after a ``make
test``), so a test run writes in a temporary directory instead, removed at its end (``tests/conftest.py``), and
sends what no worker of its own consumes to a queue of its own. The processes a test starts (Celery workers, a
nested pytest) inherit ``SFD_TEST_VAR_DIR``: a worker reads the very queue its test writes to.
"""

from __future__ import annotations

import os
import tempfile
import uuid

CREATED_VAR_DIR: str | None = None
if not os.environ.get("SFD_TEST_VAR_DIR"):
    CREATED_VAR_DIR = os.environ["SFD_TEST_VAR_DIR"] = tempfile.mkdtemp(prefix="sfd-tests-")
os.environ["SFD_VAR_DIR"] = os.environ["SFD_TEST_VAR_DIR"]
# On Redis too, whatever ``make run`` consumes (the « celery » queue) never receives a test's message.
os.environ.setdefault("CELERY_TASK_DEFAULT_QUEUE", f"tests-{uuid.uuid4().hex[:10]}")

from config.settings import *  # noqa: E402, F403
