"""A real Celery worker process runs the referential pull that the Société screen enqueues."""

from __future__ import annotations

import pytest

from companies.models import Company, Supplier
from companies.tasks import company_pull
from tests.support.polling import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def test_a_real_worker_pulls_the_company(worker, jno, multi):
    for company in (jno, multi):
        Company.objects.filter(pk=company.pk).update(pull_status=Company.PullStatus.QUEUED)
        company_pull.delay(company.pk)

    def done():
        statuses = set(Company.objects.filter(pk__in=[jno.pk, multi.pk]).values_list("pull_status", flat=True))
        return statuses == {Company.PullStatus.SUCCEEDED}

    wait_for(done, timeout=60, message="both pulls to succeed in the worker")
    assert Supplier.objects.filter(company=jno).count() >= 42
    assert Supplier.objects.filter(company=multi).count() >= 42
    jno.refresh_from_db()
    assert jno.sync_lease_token == "" and jno.pull_progress == ""
