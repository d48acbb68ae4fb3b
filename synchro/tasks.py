"""Thin Celery tasks: load by id, call the service."""

from __future__ import annotations

from celery import shared_task

from companies.lease import CompanyBusy

from . import beat
from .models import SyncRunCompany
from .runs import run_company_busy, run_company_execute

BUSY_RETRIES = 30
BUSY_COUNTDOWN = 10


@shared_task(bind=True, max_retries=BUSY_RETRIES)
def run_company_task(self, run_company_id: int) -> str:
    if not SyncRunCompany.objects.filter(pk=run_company_id).exists():
        return "missing"
    try:
        # The task id is the lease token: the same message redelivered after its worker died takes it back.
        return run_company_execute(run_company_id=run_company_id, token=f"task-{self.request.id}").status
    except CompanyBusy as busy:
        if self.request.retries < BUSY_RETRIES:
            SyncRunCompany.objects.filter(pk=run_company_id).update(error=busy.waiting())
            raise self.retry(countdown=BUSY_COUNTDOWN) from None
        run_company_busy(run_company_id=run_company_id, busy=busy)
        return "busy"


@shared_task
def reap() -> dict:
    return beat.orphans_reap()


@shared_task(ignore_result=True)
def schedule_tick() -> int | None:
    """Beat's only synchronisation entry: every minute. Takes its slot in the database, so a second beat is
    harmless."""
    run = beat.schedule_tick()
    return run.pk if run else None
