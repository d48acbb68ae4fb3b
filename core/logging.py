"""Logs as JSON lines, one object per record, for a log collector reading the containers' stdout.

Sync code logs through ``sync_logger(logger, run_id=..., company=...)`` so that every line of a run can be
found by its run id and company code. Credentials that slip into a message (a URL's password, a bearer
token) are masked before the line is written.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from celery import current_task

EXTRA_FIELDS = ("run_id", "company", "task_id")

_SECRETS = (
    # scheme://user:password@host: keep the user and the host, mask the password.
    (re.compile(r"(?P<keep>\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+(?=@)", re.IGNORECASE), r"\g<keep>***"),
    (re.compile(r"(?P<keep>\bBearer\s+)[^\s'\",]+", re.IGNORECASE), r"\g<keep>***"),
)


def redact(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601, UTC), level, logger, message, exception, sync extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for name in EXTRA_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if "task_id" not in entry:
            # Inside a Celery task every line carries the task id, without the task having to pass it.
            task = current_task
            if task and task.request.id:
                entry["task_id"] = task.request.id
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class ClientErrorWithoutTraceback(logging.Filter):
    """A 4xx answer on one line, without the exception that produced it.

    Django logs « Forbidden (Permission denied): /path » with the ``PermissionDenied`` that the rights check raised,
    so every refused click printed a whole traceback, which reads like a crash. A 4xx is the client's doing (a right
    it lacks, a page that does not exist): the line says it at WARNING. A 5xx keeps its traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500:
            record.exc_info = None
            record.exc_text = None
        return True


class SyncLoggerAdapter(logging.LoggerAdapter):
    """Adds the run id and company code to every line, merged with the ``extra`` of the call itself."""

    def process(self, msg, kwargs):
        kwargs["extra"] = {**self.extra, **kwargs.get("extra", {})}
        return msg, kwargs


def sync_logger(
    logger: logging.Logger | str, *, run_id: object = None, company: str | None = None
) -> SyncLoggerAdapter:
    if isinstance(logger, str):
        logger = logging.getLogger(logger)
    extra = {name: value for name, value in (("run_id", run_id), ("company", company)) if value is not None}
    return SyncLoggerAdapter(logger, extra)
