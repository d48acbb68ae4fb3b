"""Real Celery beat and worker: a schedule set to the coming minute runs once, with its history row."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from connectors.schedule import PARIS
from connectors.services import schedule_save
from core.models import Heartbeat
from synchro.models import SyncRun, SyncRunCompany
from tests.support.polling import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.slow]

FAST_TICK = {"SCHEDULER_TICK_SECONDS": "2"}


def test_the_coming_minute_runs_once_even_with_two_beats(start_worker, start_beat, sage, jno, multi):
    coming = (timezone.now().astimezone(PARIS) + dt.timedelta(minutes=1)).replace(second=0, microsecond=0)
    schedule_save(frequency="daily", weekday=None, time=coming.time(), actor=None)
    start_worker(extra_env=FAST_TICK)
    start_beat(extra_env=FAST_TICK)
    start_beat(extra_env=FAST_TICK)  # an accidental second beat must be harmless

    run = wait_for(
        lambda: SyncRun.objects.filter(trigger=SyncRun.Trigger.SCHEDULE, finished_at__isnull=False).first(),
        timeout=150,
        interval=1,
        message="the automatic run to happen and finish",
    )
    assert run.scheduled_for == coming
    assert run.status == SyncRun.Status.SUCCEEDED
    lines = SyncRunCompany.objects.filter(run=run)
    assert set(lines.values_list("company__code", flat=True)) == {"JNO", "MULTI"}
    assert all(line.pull_counts.get("suppliers", {}).get("created", 0) >= 42 for line in lines)
    # Both beats tick on after the run (every 2 s): none of their ticks starts the slot again.
    ticked_on = run.finished_at + dt.timedelta(seconds=3 * int(FAST_TICK["SCHEDULER_TICK_SECONDS"]))
    wait_for(
        lambda: Heartbeat.objects.get(name="beat").at >= ticked_on,
        timeout=60,
        interval=0.5,
        message="three more ticks of the beats after the run",
    )
    assert SyncRun.objects.filter(trigger=SyncRun.Trigger.SCHEDULE).count() == 1
    assert timezone.now() - Heartbeat.objects.get(name="beat").at < dt.timedelta(seconds=30)
