"""The automatic synchronisation: Europe/Paris across daylight-saving changes, one run per slot, catch-up once."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail

from connectors.models import SyncSchedule
from connectors.schedule import describe, next_occurrence
from connectors.services import schedule_disable, schedule_enable, schedule_save
from core.models import AuditEvent, Heartbeat
from synchro.beat import schedule_tick
from synchro.models import SyncRun, SyncRunCompany

PARIS = ZoneInfo("Europe/Paris")


def paris(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=PARIS)


def local(moment: dt.datetime) -> tuple:
    value = moment.astimezone(PARIS)
    return value.date().isoformat(), value.strftime("%H:%M"), value.utcoffset().total_seconds() / 3600


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (paris(2026, 3, 28, 12, 30), ("2026-03-29", "12:00", 2.0)),  # the night the clocks go forward
        (paris(2026, 3, 29, 12, 30), ("2026-03-30", "12:00", 2.0)),
        (paris(2026, 10, 24, 12, 30), ("2026-10-25", "12:00", 1.0)),  # the night the clocks go back
        (paris(2026, 10, 25, 12, 30), ("2026-10-26", "12:00", 1.0)),
    ],
)
def test_noon_stays_noon_across_daylight_saving_changes(after, expected):
    assert local(next_occurrence(after, frequency="daily", time=dt.time(12), weekday=None)) == expected


def test_a_time_that_does_not_exist_runs_once_an_hour_later():
    slot = next_occurrence(paris(2026, 3, 28, 23, 0), frequency="daily", time=dt.time(2, 30), weekday=None)
    assert slot == dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC)  # 03:30 summer time
    assert local(slot) == ("2026-03-29", "03:30", 2.0)
    following = next_occurrence(slot, frequency="daily", time=dt.time(2, 30), weekday=None)
    assert local(following) == ("2026-03-30", "02:30", 2.0)


def test_a_time_that_exists_twice_runs_at_its_first_occurrence_only():
    slot = next_occurrence(paris(2026, 10, 24, 23, 0), frequency="daily", time=dt.time(2, 30), weekday=None)
    assert slot == dt.datetime(2026, 10, 25, 0, 30, tzinfo=dt.UTC)  # 02:30 summer time, the first one
    following = next_occurrence(slot, frequency="daily", time=dt.time(2, 30), weekday=None)
    assert local(following) == ("2026-10-26", "02:30", 1.0)  # not the second 02:30 of the same night


def test_weekly_lands_on_its_day():
    slot = next_occurrence(paris(2026, 11, 28, 10, 0), frequency="weekly", time=dt.time(12), weekday=0)
    assert local(slot)[:2] == ("2026-11-30", "12:00")
    assert describe(slot) == "lundi 30 novembre 2026 à 12:00"


@pytest.fixture
def active(connector, jno):
    return jno


def _set(frequency="daily", time=dt.time(12), weekday=None):
    return schedule_save(frequency=frequency, weekday=weekday, time=time, actor=None)


def test_a_due_slot_starts_one_automatic_run_with_the_pull(active, db):
    with time_machine.travel(paris(2026, 11, 28, 11, 0), tick=False):
        _set()
    with time_machine.travel(paris(2026, 11, 28, 12, 0, 20), tick=False):
        run = schedule_tick()
        again = schedule_tick()
    assert run is not None and again is None
    assert (run.trigger, run.include_pull, run.user) == (SyncRun.Trigger.SCHEDULE, True, None)
    assert run.scheduled_for == paris(2026, 11, 28, 12, 0)
    assert list(SyncRunCompany.objects.filter(run=run).values_list("company__code", flat=True)) == ["JNO"]
    schedule = SyncSchedule.objects.get()
    assert local(schedule.next_run_at)[:2] == ("2026-11-29", "12:00")
    assert Heartbeat.objects.get(name="beat").at is not None


def test_the_tick_folds_the_visuel_counter(active, db):
    from invoices.counters import state_counts
    from invoices.models import ExportState, Invoice, InvoiceStateCount

    created = Invoice.objects.bulk_create(
        Invoice(company=active, number=f"C{index}", export_state=ExportState.TO_EXPORT) for index in range(6)
    )
    ids = [invoice.pk for invoice in created]
    for state in (ExportState.SENDING, ExportState.INTEGRATED):
        Invoice.objects.filter(pk__in=ids[:4]).update(export_state=state)
    before = state_counts()
    assert InvoiceStateCount.objects.count() > len(before)
    schedule_tick()
    assert state_counts() == before
    assert before[(active.pk, "export", ExportState.INTEGRATED)] == 4
    assert before[(active.pk, "export", ExportState.TO_EXPORT)] == 2
    assert InvoiceStateCount.objects.count() == len(before)


def test_nothing_runs_before_its_time_or_when_disabled(active, db):
    with time_machine.travel(paris(2026, 11, 28, 11, 0), tick=False):
        _set()
    with time_machine.travel(paris(2026, 11, 28, 11, 59), tick=False):
        assert schedule_tick() is None
    with time_machine.travel(paris(2026, 11, 28, 11, 59, 30), tick=False):
        schedule_disable(actor=None)
    with time_machine.travel(paris(2026, 11, 28, 12, 1), tick=False):
        assert schedule_tick() is None
    assert not SyncRun.objects.exists()


def test_saving_a_schedule_switches_it_on(active, db):
    with time_machine.travel(paris(2026, 11, 28, 11, 0), tick=False):
        schedule = schedule_save(frequency="weekly", weekday=0, time=dt.time(12), actor=None)
    assert schedule.enabled
    assert local(SyncSchedule.objects.get().next_run_at)[:2] == ("2026-11-30", "12:00")


def test_switched_off_then_on_it_runs_again_at_its_saved_day_and_time(active, db):
    with time_machine.travel(paris(2026, 11, 28, 11, 0), tick=False):
        schedule_save(frequency="weekly", weekday=0, time=dt.time(12), actor=None)
        schedule, changed = schedule_disable(actor=None)
        assert changed and not schedule.enabled and schedule.next_run_at is None
        assert schedule_disable(actor=None)[1] is False  # already off: nothing to do, no audit line
    with time_machine.travel(paris(2026, 11, 30, 12, 0, 20), tick=False):
        assert schedule_tick() is None
    with time_machine.travel(paris(2026, 12, 1, 9, 0), tick=False):
        schedule, changed = schedule_enable(actor=None)
    assert changed and (schedule.frequency, schedule.weekday, schedule.time) == ("weekly", 0, dt.time(12))
    assert local(schedule.next_run_at)[:2] == ("2026-12-07", "12:00")
    with time_machine.travel(paris(2026, 12, 7, 12, 0, 20), tick=False):
        assert schedule_tick() is not None
    assert [event.action for event in AuditEvent.objects.order_by("pk")] == [
        "schedule.changed", "schedule.disabled", "schedule.enabled", "synchro.schedule",
    ]  # fmt: skip


def test_after_downtime_one_catch_up_run_not_several(active, db):
    with time_machine.travel(paris(2026, 11, 20, 11, 0), tick=False):
        _set()
    with time_machine.travel(paris(2026, 11, 28, 15, 0), tick=False):  # eight slots were missed
        assert schedule_tick() is not None
        assert schedule_tick() is None
    assert SyncRun.objects.count() == 1
    assert local(SyncSchedule.objects.get().next_run_at)[:2] == ("2026-11-29", "12:00")


def test_an_edit_takes_effect_at_the_next_tick(active, db):
    with time_machine.travel(paris(2026, 11, 28, 9, 0), tick=False):
        _set(time=dt.time(12))
        _set(time=dt.time(9, 30))
    with time_machine.travel(paris(2026, 11, 28, 9, 30, 5), tick=False):
        assert schedule_tick() is not None


def test_two_beats_ticking_at_once_start_the_slot_once(active, transactional_db):
    import threading

    from django.db import connection

    with time_machine.travel(paris(2026, 11, 28, 11, 0), tick=False):
        _set()
    runs = []

    def tick():
        with time_machine.travel(paris(2026, 11, 28, 12, 0, 10), tick=False):
            runs.append(schedule_tick())
        connection.close()

    threads = [threading.Thread(target=tick) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len([run for run in runs if run]) == 1
    assert SyncRun.objects.count() == 1


def test_an_automatic_run_with_anomalies_mails_the_holders_of_the_right(active, db, bob, charlie, multi):
    from django.contrib.auth.models import Group

    from tests.conftest import give_companies

    bob.groups.add(Group.objects.get(name="Comptable"))
    give_companies(bob, active)
    charlie.groups.add(Group.objects.get(name="Comptable"))
    give_companies(charlie, multi)  # holds the right, but not for JNO
    run = SyncRun.objects.create(trigger=SyncRun.Trigger.SCHEDULE, status=SyncRun.Status.PARTIAL)
    SyncRunCompany.objects.create(
        run=run, company=active, status="partial", integrated=4, rejected=2, update_rejected=1, open_anomalies=3
    )
    from synchro.notifications import run_notify

    assert run_notify(run_id=run.pk) == 1
    assert run_notify(run_id=run.pk) == 0  # once
    [message] = mail.outbox
    assert message.to == ["bob@example.com"]
    assert (
        "4 écritures intégrées, 2 refusées ; 1 mise à jour refusée ; 3 écritures en anomalie à corriger" in message.body
    )
    assert "Visuel Synchronisations" in message.body
