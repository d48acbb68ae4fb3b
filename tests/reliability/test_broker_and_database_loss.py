"""The database is the source of truth, not the broker: Redis restarted empty in the middle of an automatic run,
or the worker's database connection killed mid-export — the run still finishes, each entry once in Sage."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from companies.services import company_referential_pull
from connectors.models import SyncSchedule
from connectors.services import schedule_save
from invoices.models import ExportState, Invoice
from synchro.models import SyncRun, SyncRunCompany
from synchro.runs import run_start
from tests.conftest import make_company
from tests.support.exports import assert_exactly_once, reap_until_finished
from tests.support.invoices import bulk_validated_invoices
from tests.support.polling import wait_for
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.worker, pytest.mark.slow]

FAST = {
    "SYNC_LEASE_SECONDS": "3",
    "SYNC_REAP_SECONDS": "2",
    "SCHEDULER_TICK_SECONDS": "1",
    "SAGE_BACKOFF_SECONDS": "0.05",
}


def assert_each_entry_once(sage, ids_by_company: dict[str, list[int]]) -> None:
    for code, ids in ids_by_company.items():
        assert_exactly_once(sage, ids, company=code)


@pytest.mark.redis_server
def test_redis_restarted_empty_mid_run_loses_nothing(start_worker, start_beat, sage, connector, tmp_path, settings):
    settings.SYNC_LEASE_SECONDS = 3
    settings.SYNC_REAP_SECONDS = 2
    # More companies than worker processes: when Redis dies, some lines are still waiting in it.
    companies = [make_company(connector, code) for code in ("JNO", "S1", "S2", "AKAO")]
    ids = {}
    for company in companies:
        company_referential_pull(company=company)
        ids[company.code] = bulk_validated_invoices(company, 250)
    sage.faults({"match": "POST /companies/*/entries", "fault": "latency", "delay": 1.0})
    schedule_save(frequency="daily", weekday=None, time=dt.time(3), actor=None)
    SyncSchedule.objects.update(next_run_at=timezone.now() - dt.timedelta(seconds=1))

    redis = RedisServer(tmp_path).start()
    env = FAST | {"CELERY_BROKER_URL": redis.url}
    try:
        start_worker(extra_env=env, concurrency=1)
        start_worker(extra_env=env, concurrency=1)
        start_beat(extra_env=env)
        wait_for(
            lambda: Invoice.objects.filter(export_state=ExportState.SENDING).exists(), timeout=60, message="the run"
        )
        redis.restart()  # every queued message, every unacknowledged one: gone
        run = SyncRun.objects.get(trigger=SyncRun.Trigger.SCHEDULE)
        wait_for(
            lambda: SyncRun.objects.filter(pk=run.pk, finished_at__isnull=False).exists(),
            timeout=180,
            interval=1,
            message="the automatic run to finish after the broker loss",
        )
    finally:
        redis.kill()
    logs = "".join(path.read_text(errors="replace") for path in tmp_path.glob("worker-*.log"))
    assert "reaper dispatched again" in logs  # the lost messages were replaced from the database
    assert SyncRun.objects.filter(trigger=SyncRun.Trigger.SCHEDULE).count() == 1
    assert set(SyncRunCompany.objects.filter(run=run).values_list("status", flat=True)) <= {"succeeded", "partial"}
    assert_each_entry_once(sage, ids)


@pytest.mark.postgres
def test_the_database_connection_killed_mid_export(start_worker, sage, jno, settings):
    settings.SYNC_LEASE_SECONDS = 3
    settings.SYNC_REAP_SECONDS = 2
    company_referential_pull(company=jno)
    ids = bulk_validated_invoices(jno, 600)
    sage.faults({"match": "POST /companies/*/entries", "fault": "latency", "delay": 1.0})
    start_worker(extra_env=FAST, concurrency=1)
    run = run_start(trigger=SyncRun.Trigger.EXPORT, user=None, companies=[jno], selection={"kind": "all"})
    wait_for(lambda: Invoice.objects.filter(export_state=ExportState.SENDING).exists(), timeout=60, message="a batch")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchone()[0] >= 1
    sage.clear_faults()
    line = SyncRunCompany.objects.get(run=run)

    reap_until_finished(line, timeout=120, interval=1, message="the export to finish after the killed connection")
    assert_each_entry_once(sage, {"JNO": ids})
