"""The broker of a worker test: the embedded default's file-system broker (in a folder of the test's own) or Redis.

The test process publishes to it too (an HTTP request to the app enqueues, the reaper re-dispatches), so the Celery
app of this process is pointed at it for the test, then back.
"""

from __future__ import annotations

import pytest
from django.conf import settings

from tests.support.services import redis_url


def _point_app_at(app, url: str | None, options: dict) -> None:
    # Not ``broker_url``: Celery reads it from the environment first (CELERY_BROKER_URL), before any setting.
    app.conf.broker_write_url = app.conf.broker_read_url = url
    app.conf.broker_transport_options = options
    # The connection and producer pools were made for the previous broker.
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture(params=["embedded", pytest.param("redis", marks=pytest.mark.redis)])
def broker(request, tmp_path, worker_queue) -> dict:
    """The environment that points a worker at this test's broker (``start_worker(extra_env=broker | ...)``)."""
    from config.celery import app

    if request.param == "redis":
        url = redis_url()
        options = {"visibility_timeout": settings.CELERY_TASK_TIME_LIMIT + 600}
        env = {"CELERY_BROKER_URL": url}
    else:
        var = tmp_path / "var"
        # The worker derives the same folders from SFD_VAR_DIR, as ``make run`` does from var/.
        queue, control = var / "broker" / "queue", var / "broker" / "control"
        for folder in (queue, control):
            folder.mkdir(parents=True)
        url = "filesystem://"
        options = {
            "data_folder_in": str(queue),
            "data_folder_out": str(queue),
            "control_folder": str(control),
            "store_processed": False,
        }
        # A worker started by a test loads the test settings, which take their var/ from SFD_TEST_VAR_DIR.
        env = {"CELERY_BROKER_URL": url, "SFD_VAR_DIR": str(var), "SFD_TEST_VAR_DIR": str(var)}
    previous = app.conf.broker_transport_options
    _point_app_at(app, url, options)
    yield env
    _point_app_at(app, None, previous)
