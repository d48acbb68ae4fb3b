"""Runs: an export from the Visuel screen, « Synchroniser maintenant », or the schedule; one line per company.

A run is started with its lines (``run_start``), each line executed by a worker (``run_company_execute``: referential
pull for an automatic run, then the export of entries and updates, or the simulation), and the run closed by
whoever finishes last (``run_finalize``).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from companies.lease import CompanyBusy, company_leased
from companies.models import Company
from companies.selectors import companies_for_user
from companies.services import company_referential_pull_leased
from connectors.sage_frp1000.client import SageError
from core.logging import sync_logger
from core.services import audit_record
from invoices.counters import state_count
from invoices.models import ExportState

from .export import CompanyExporter
from .models import SyncItem, SyncRun, SyncRunCompany, run_status
from .selectors import run_line_counts
from .simulation import simulation_run
from .updates import updates_export

logger = logging.getLogger(__name__)

EXPORT_LABEL = "export vers Sage FRP 1000"
SIMULATION_LABEL = "simulation d'export"


@transaction.atomic
def run_start(
    *,
    trigger: str,
    user,
    companies: Iterable[Company],
    selection: dict | None = None,
    include_pull: bool = False,
    scheduled_for: dt.datetime | None = None,
    dispatch: bool = True,
) -> SyncRun:
    """Create a run and one line per company; each line is dispatched to the workers after commit (unless the
    caller runs the lines itself: ``dispatch=False``)."""
    from .tasks import run_company_task

    run = SyncRun.objects.create(
        trigger=trigger,
        user=user if getattr(user, "is_authenticated", False) else None,
        selection=selection or {"kind": "all"},
        include_pull=include_pull,
        scheduled_for=scheduled_for,
    )
    lines = SyncRunCompany.objects.bulk_create([SyncRunCompany(run=run, company=c) for c in companies])
    for line in lines if dispatch else ():
        run_company_task.delay_on_commit(line.pk)
    if not lines:
        SyncRun.objects.filter(pk=run.pk).update(status=SyncRun.Status.SUCCEEDED, finished_at=timezone.now())
    audit_record(
        actor=user,
        action=f"synchro.{trigger}",
        summary=_("%(what)s lancée pour %(codes)s")
        % {"what": run.get_trigger_display().capitalize(), "codes": ", ".join(line.company.code for line in lines)},
        details={"run": run.pk, "selection": run.selection},
    )
    return run


def run_finalize(run_id: int) -> SyncRun | None:
    """Close the run once every company is done (exactly once, whoever finishes last)."""
    status = run_status(SyncRunCompany.objects.filter(run_id=run_id).values_list("status", flat=True))
    if status == SyncRun.Status.RUNNING:
        return None
    closed = SyncRun.objects.filter(pk=run_id, finished_at__isnull=True).update(
        status=status, finished_at=timezone.now()
    )
    run = SyncRun.objects.get(pk=run_id)
    if closed:
        from .notifications import run_notify

        transaction.on_commit(lambda: run_notify(run_id=run_id))
    return run


def run_company_execute(*, run_company_id: int, token: str | None = None) -> SyncRunCompany:
    """One company of a run: referential pull (automatic runs), then export of entries and updates.

    ``token`` identifies this attempt in the company's lease (a task passes its own id, so that the same message
    redelivered after its worker died takes its lease back). Raises ``CompanyBusy`` when another sync holds the
    company; the caller decides to wait or to say so.
    """
    line = SyncRunCompany.objects.select_related("run", "company__connector", "run__user").get(pk=run_company_id)
    if line.finished:
        return line
    run, company = line.run, line.company
    token = token or uuid.uuid4().hex
    log = sync_logger(logger, run_id=run.pk, company=company.code)
    if run.is_simulation:
        # Leased like an export: one sync per company, and a simulation that lasts is alive, not reaped.
        with company_leased(company, token=token, label=SIMULATION_LABEL):
            simulation_run(line, log)
        run_finalize(run.pk)
        line.refresh_from_db()
        return line
    with company_leased(company, token=token, label=EXPORT_LABEL):
        SyncRunCompany.objects.filter(pk=line.pk).update(
            status=SyncRunCompany.Status.RUNNING, started_at=timezone.now()
        )
        status, error = SyncRunCompany.Status.SUCCEEDED, ""
        try:
            if run.include_pull:
                outcome = company_referential_pull_leased(company=company, token=token, actor=run.user)
                SyncRunCompany.objects.filter(pk=line.pk).update(pull_counts=outcome.counts)
                if outcome.error:
                    raise SageError(_("Référentiel : %(error)s") % {"error": outcome.error})
                company.refresh_from_db()
            exporter = CompanyExporter(line, token)
            with exporter.client:
                exporter.recover()
                exporter.export_creations()
                updates_export(exporter)
        except SageError as failure:
            status, error = SyncRunCompany.Status.FAILED, failure.message
            log.warning("sync failed: %s", failure.message)
        unknown = SyncItem.objects.filter(company=company, status=SyncItem.Status.UNKNOWN).count()
        SyncRunCompany.objects.filter(pk=line.pk).update(
            unknown=unknown,
            open_anomalies=entries_in_anomaly(company),
            **run_line_counts(run_id=run.pk, company_id=company.pk),
        )
        line.refresh_from_db()
        # Entries left in anomaly make the line « terminée avec anomalies », even when this run refused none of them
        # (an automatic run does not send again what Sage refused: it waits for its correction).
        if status == SyncRunCompany.Status.SUCCEEDED and (
            line.rejected or line.update_rejected or line.unknown or line.open_anomalies
        ):
            status = SyncRunCompany.Status.PARTIAL
        SyncRunCompany.objects.filter(pk=line.pk).update(status=status, error=error, finished_at=timezone.now())
        log.info("sync of %s: %s (%s integrated, %s rejected)", company.code, status, line.integrated, line.rejected)
    run_finalize(run.pk)
    line.refresh_from_db()
    return line


def entries_in_anomaly(company: Company) -> int:
    """How many entries and updates of the company stand in anomaly now (the Visuel counter: no count of rows)."""
    return sum(
        state_count(field=field, company_ids=[company.pk], state=ExportState.REJECTED)
        for field in ("export_state", "update_state")
    )


def run_company_busy(*, run_company_id: int, busy: CompanyBusy) -> None:
    SyncRunCompany.objects.filter(pk=run_company_id).update(
        status=SyncRunCompany.Status.BUSY, error=str(busy), finished_at=timezone.now()
    )
    run_finalize(SyncRunCompany.objects.get(pk=run_company_id).run_id)


def sync_now_start(*, user) -> SyncRun:
    """« Synchroniser maintenant »: the automatic run, at once, on the user's active companies."""
    companies = list(companies_for_user(user).filter(active=True).select_related("connector"))
    return run_start(trigger=SyncRun.Trigger.SYNC_NOW, user=user, companies=companies, include_pull=True)
