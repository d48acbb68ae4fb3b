"""Thin Celery tasks: load by id, call the service."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from .lease import CompanyBusy
from .models import Company
from .services import company_referential_pull

BUSY_RETRIES = 40
BUSY_COUNTDOWN = 15


@shared_task(bind=True, max_retries=BUSY_RETRIES)
def company_pull(self, company_id: int, full: bool = False) -> str:
    company = Company.objects.select_related("connector").filter(pk=company_id).first()
    if company is None:
        return "missing"
    if not company.pull_in_progress:
        # A second message for a request already served (the reaper replaced a message that was only late).
        return "served"
    try:
        # The task id is the lease token: a task redelivered after its worker died takes its lease back.
        return company_referential_pull(company=company, token=self.request.id, full=full).status
    except CompanyBusy as busy:
        if self.request.retries < BUSY_RETRIES:
            Company.objects.filter(pk=company_id).update(pull_progress=busy.waiting()[:200])
            raise self.retry(countdown=BUSY_COUNTDOWN) from None
        Company.objects.filter(pk=company_id).update(
            pull_status=Company.PullStatus.FAILED,
            pull_finished_at=timezone.now(),
            pull_progress="",
            pull_error=str(busy),
        )
        return "busy"
