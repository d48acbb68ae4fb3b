"""What Celery beat drives: the tick every minute (the due automatic run, once per schedule slot) and the reaper."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from companies.models import Company
from connectors.services import schedule_slot_take
from core.services import heartbeat_touch
from invoices.counters import state_counts_compact

from .models import SyncRun, SyncRunCompany
from .runs import run_start

logger = logging.getLogger(__name__)


def orphans_reap() -> dict:
    """Finish what a lost message or a dead worker left: the database is the source of truth, not the broker.

    - a run line *en cours* whose company is no longer held (its worker died: a live sync renews its lease) is
      dispatched again at once; a line *en attente* whose company is free, once ``SYNC_REAP_SECONDS`` have passed
      (its message may only be waiting behind others);
    - a referential pull *en cours* whose company is no longer held is dispatched again, and so is a pull *en
      attente* for longer than ``SYNC_REAP_SECONDS``.
    A lease runs out ``SYNC_LEASE_SECONDS`` after its holder's last renewal, so a sync that is alive is never touched.
    """
    from companies.tasks import company_pull

    from .tasks import run_company_task

    now = timezone.now()
    quiet = now - dt.timedelta(seconds=settings.SYNC_REAP_SECONDS)
    free = Q(company__sync_lease_until__isnull=True) | Q(company__sync_lease_until__lt=now)
    open_lines = SyncRunCompany.objects.filter(status__in=[SyncRunCompany.Status.QUEUED, SyncRunCompany.Status.RUNNING])
    lines = list(
        open_lines.filter(free)
        .filter(
            Q(status=SyncRunCompany.Status.RUNNING)
            | Q(started_at__lt=quiet)
            | Q(started_at__isnull=True, queued_at__lt=quiet)
        )
        .values_list("pk", flat=True)
    )
    for pk in lines:
        # Touch the line so that the next reap leaves it alone while this dispatch is on its way.
        SyncRunCompany.objects.filter(pk=pk).update(queued_at=now, started_at=None, status=SyncRunCompany.Status.QUEUED)
        run_company_task.delay_on_commit(pk)
    company_free = Q(sync_lease_until__isnull=True) | Q(sync_lease_until__lt=now)
    pulls = list(
        Company.objects.filter(company_free)
        .filter(
            Q(pull_status=Company.PullStatus.QUEUED, pull_requested_at__lt=quiet)
            # A pull inside an automatic run comes back with its run line.
            | Q(pull_status=Company.PullStatus.RUNNING) & ~Q(pk__in=open_lines.values("company_id"))
        )
        .values_list("pk", flat=True)
    )
    for pk in pulls:
        Company.objects.filter(pk=pk).update(pull_status=Company.PullStatus.QUEUED, pull_requested_at=now)
        company_pull.delay_on_commit(pk)
    if lines or pulls:
        logger.warning("reaper dispatched again: run lines %s, pulls %s", len(lines), len(pulls))
    return {"lines": len(lines), "pulls": len(pulls)}


def schedule_tick(*, now: dt.datetime | None = None) -> SyncRun | None:
    """What Celery beat runs every minute: a heartbeat, the due automatic run (its slot taken once), the reaper, and the
    folding of the Visuel counter's deltas (``invoices.counters``)."""
    now = now or timezone.now()
    heartbeat_touch("beat")
    run = None
    slot = schedule_slot_take(now=now)
    if slot is not None:
        companies = list(Company.objects.filter(active=True).select_related("connector"))
        try:
            with transaction.atomic():
                run = run_start(
                    trigger=SyncRun.Trigger.SCHEDULE,
                    user=None,
                    companies=companies,
                    include_pull=True,
                    scheduled_for=slot,
                )
        except IntegrityError:
            logger.warning("the slot %s already has its run", slot)
    orphans_reap()
    state_counts_compact()
    return run
