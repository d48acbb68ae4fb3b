"""Export of entries and updates to Sage FRP 1000, exactly once; runs; anomalies.

Exactly once: every version of an entry has a stable key (``SFD-<invoice>-V<version>``). Items are claimed
and committed *en cours* before the network call; when the outcome is unknown (timeout, reset, crash, 5xx),
they become *à vérifier* and are reconciled by looking the key up in Sage, never blindly resent. A company is
held by one sync at a time (a claim in the database, shared with the referential pull).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cached_property

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from companies.bulk import rows_copy, rows_update
from companies.models import Company
from companies.services import (
    CompanyBusy,
    company_referential_pull_claimed,
    company_sync_claimed,
    company_sync_renew,
)
from connectors.sage_frp1000.client import (
    SageAuthError,
    SageClient,
    SageError,
    SageRejected,
    SageUnavailable,
)
from connectors.services import schedule_claim
from core.logging import sync_logger
from core.services import audit_record, heartbeat_touch
from invoices.accounting import EntryError, SourceLine
from invoices.counters import state_count, state_counts_compact
from invoices.models import ExportState, Invoice, InvoiceEvent, InvoiceLine, entry_external_id
from invoices.validation import FACT_COLUMNS, LINE_COLUMNS, entry_from_facts, facts_from_row

from .hints import field_label, hint_for
from .models import Anomaly, SyncItem, SyncRun, SyncRunCompany, run_status
from .precheck import Referential

logger = logging.getLogger(__name__)

EXPORT_LABEL = "export vers Sage FRP 1000"
SIMULATION_LABEL = "simulation d'export"
# What « Exporter » may send: what waits, and what Sage refused (once fixed in Sage, it may pass).
MANUAL_STATES = (ExportState.TO_EXPORT, ExportState.REJECTED)
# What the schedule sends: only what waits; a refused entry waits for its correction in SFD.
AUTOMATIC_STATES = (ExportState.TO_EXPORT,)
# Seconds between two writes of a run line's counters while it runs (the screen polls every second).
TALLY_SECONDS = 1.0


# The columns of a new item, written by ``COPY`` (every value given).
ITEM_COLUMNS = [
    "invoice_id", "company_id", "kind", "version", "key", "status", "payload", "bap_version", "attempts",
    "last_attempt_at", "last_error", "piece_number", "run_id", "created_at", "updated_at",
]  # fmt: skip


class _Claim:
    """A new item of a batch as the exporter carries it: what it reads and writes of a ``SyncItem``, without a model
    instance per row (its row is written by ``COPY``)."""

    __slots__ = ("attempts", "bap_version", "invoice_id", "key", "last_error", "payload", "piece_number", "pk",
                 "status", "updated_at", "version")  # fmt: skip

    def __init__(self, invoice_id: int, version: int):
        self.pk = None
        self.invoice_id, self.version, self.key = invoice_id, version, entry_external_id(invoice_id, version)
        self.payload, self.bap_version, self.status, self.attempts = {}, 0, SyncItem.Status.PENDING, 0
        self.last_error, self.piece_number, self.updated_at = "", "", None


class _Flight:
    """A batch committed *en cours* whose send runs in the sending thread."""

    def __init__(self, items: list[SyncItem], size: int, future: Future | None):
        self.items, self.size, self.future = items, size, future

    @classmethod
    def launch(cls, sender: ThreadPoolExecutor, exporter: CompanyExporter, items: list[SyncItem], size: int) -> _Flight:
        future = None
        if items:
            payloads = [item.payload for item in items]
            future = sender.submit(exporter.client.post_entries, exporter.company.code, payloads)
        return cls(items, size, future)

    def outcome(self) -> tuple[list, SageError | None]:
        """Sage's results, or the failure of the send (waits for it)."""
        if self.future is None:
            return [], None
        try:
            return self.future.result(), None
        except SageError as failure:
            return [], failure


# --- selections -----------------------------------------------------------------------------------------


def selection_invoices(selection: dict, *, kind: str, company: Company, automatic: bool) -> QuerySet[Invoice]:
    """The invoices of one company that a run's selection designates, for one kind (creation or update)."""
    states = AUTOMATIC_STATES if automatic else MANUAL_STATES
    state_field = "export_state" if kind == SyncItem.Kind.CREATION else "update_state"
    invoices = Invoice.objects.filter(company=company, **{f"{state_field}__in": states})
    wanted_kind = selection.get("kind", "all")
    if wanted_kind not in ("all", kind):
        return invoices.none()
    if "invoices" in selection:
        return invoices.filter(pk__in=selection["invoices"])
    return apply_filters(invoices, selection.get("filters", {}), state_field=state_field)


def apply_filters(invoices: QuerySet[Invoice], filters: dict, *, state_field: str) -> QuerySet[Invoice]:
    """The filters of the Visuel Synchronisations screen, as stored in a run's selection."""
    if filters.get("company"):
        invoices = invoices.filter(company_id=filters["company"])
    if filters.get("status"):
        invoices = invoices.filter(**{state_field: filters["status"]})
    if filters.get("date_from"):
        invoices = invoices.filter(invoice_date__gte=filters["date_from"])
    if filters.get("date_to"):
        invoices = invoices.filter(invoice_date__lte=filters["date_to"])
    if filters.get("supplier"):
        text = filters["supplier"]
        invoices = invoices.filter(Q(supplier__code__iexact=text) | Q(supplier__label__icontains=text))
    if filters.get("anomaly"):
        open_of_code = Anomaly.objects.filter(
            invoice=OuterRef("pk"), code=filters["anomaly"], cleared_at__isnull=True, simulated=False
        )
        invoices = invoices.filter(Exists(open_of_code))
    return invoices


# --- runs -------------------------------------------------------------------------------------------------


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


def run_line_counts(*, run_id: int, company_id: int) -> dict[str, int]:
    """A line's counters as its run's items say them: an attempt redelivered after its worker died, or a run line
    dispatched again by the reaper, counts nothing twice (an item is one per invoice version, its status written in
    the transaction that records Sage's answer). *traitées*: every item the run has an outcome for, or gave up on
    (back to *à exporter*): all but those *en cours*."""
    counts = {"done": 0, "integrated": 0, "updated": 0, "rejected": 0, "update_rejected": 0}
    rows = (
        SyncItem.objects.filter(run_id=run_id, company_id=company_id)
        .order_by()
        .values_list("kind", "status")
        .annotate(n=Count("pk"))
    )
    for kind, status, n in rows:
        if status != SyncItem.Status.SENDING:
            counts["done"] += n
        if status == SyncItem.Status.REJECTED:
            counts["rejected" if kind == SyncItem.Kind.CREATION else "update_rejected"] += n
        elif status == SyncItem.Status.INTEGRATED:
            counts["integrated" if kind == SyncItem.Kind.CREATION else "updated"] += n
    return counts


def run_company_execute(*, run_company_id: int, token: str | None = None) -> SyncRunCompany:
    """One company of a run: referential pull (automatic runs), then export of entries and updates.

    ``token`` identifies this attempt in the company's claim (a task passes its own id, so that the same message
    redelivered after its worker died takes its claim back). Raises ``CompanyBusy`` when another sync holds the
    company; the caller decides to wait or to say so.
    """
    line = SyncRunCompany.objects.select_related("run", "company__connector", "run__user").get(pk=run_company_id)
    if line.finished:
        return line
    run, company = line.run, line.company
    token = token or uuid.uuid4().hex
    log = sync_logger(logger, run_id=run.pk, company=company.code)
    if run.is_simulation:
        # Claimed like an export: one sync per company, and a simulation that lasts is alive, not reaped.
        with company_sync_claimed(company, token=token, label=SIMULATION_LABEL):
            _simulate(line, log)
        run_finalize(run.pk)
        line.refresh_from_db()
        return line
    with company_sync_claimed(company, token=token, label=EXPORT_LABEL):
        SyncRunCompany.objects.filter(pk=line.pk).update(
            status=SyncRunCompany.Status.RUNNING, started_at=timezone.now()
        )
        status, error = SyncRunCompany.Status.SUCCEEDED, ""
        try:
            if run.include_pull:
                outcome = company_referential_pull_claimed(company=company, token=token, actor=run.user)
                SyncRunCompany.objects.filter(pk=line.pk).update(pull_counts=outcome.counts)
                if outcome.error:
                    raise SageError(_("Référentiel : %(error)s") % {"error": outcome.error})
                company.refresh_from_db()
            exporter = CompanyExporter(line, token)
            with exporter.client:
                exporter.recover()
                exporter.export_creations()
                exporter.export_updates()
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


# --- the exporter -----------------------------------------------------------------------------------------


class CompanyExporter:
    """Sends one company's selected entries and updates, batch by batch, and records every outcome."""

    def __init__(self, line: SyncRunCompany, token: str):
        self.line = line
        self.run = line.run
        self.company = line.company
        self.token = token
        self.automatic = self.run.trigger in (SyncRun.Trigger.SCHEDULE, SyncRun.Trigger.MANUAL)
        self.client: SageClient = self.company.connector.client()
        self.referential = Referential(self.company)
        self.batch_size = settings.SYNC_BATCH_SIZE
        self.rounds = settings.SYNC_SEND_ROUNDS
        # The claim was taken (or renewed) just before the exporter was made.
        self._renewed = time.monotonic()
        self._totals = {kind: 0 for kind in SyncItem.Kind}
        self._tallied = 0.0

    # The line's counters: derived from the run's items (``run_line_counts``), the total from what this attempt
    # selects plus what the run already handled. Written at most every ``TALLY_SECONDS``, and at the end of each kind.
    def _tally(self, *, force: bool = False) -> None:
        if not force and time.monotonic() - self._tallied < TALLY_SECONDS:
            return
        self._tallied = time.monotonic()
        SyncRunCompany.objects.filter(pk=self.line.pk).update(
            total=sum(self._totals.values()), **run_line_counts(run_id=self.run.pk, company_id=self.company.pk)
        )

    def _selection(self, kind: str) -> list[int]:
        """What this attempt sends of ``kind``, in key order; the line's total for the kind counts it with what the run
        already handled (an attempt after a dead one). What the run already saw refused is not sent again."""
        version = "accounting_version" if kind == SyncItem.Kind.CREATION else "bap_version"
        refused_here = SyncItem.objects.filter(
            run=self.run, invoice=OuterRef("pk"), kind=kind, version=OuterRef(version), status=SyncItem.Status.REJECTED
        )
        invoices = selection_invoices(self.run.selection, kind=kind, company=self.company, automatic=self.automatic)
        ids = list(invoices.exclude(Exists(refused_here)).order_by("pk").values_list("pk", flat=True))
        handled = SyncItem.objects.filter(run=self.run, company=self.company, kind=kind).values_list("invoice_id")
        self._totals[kind] = len(set(ids).union(invoice_id for (invoice_id,) in handled))
        self._tally(force=True)
        return ids

    def _heartbeat(self) -> None:
        """Renew the claim on the company once a tenth of its lease has passed (not on every batch): a sync that has
        stalled for a whole lease finds out here that it lost the company, and stops."""
        if time.monotonic() - self._renewed < settings.SYNC_LEASE_SECONDS / 10:
            return
        if not company_sync_renew(company_id=self.company.pk, token=self.token):
            raise SageError(_("La synchronisation a perdu la main sur la société (délai dépassé) : elle sera reprise."))
        self._renewed = time.monotonic()

    # --- recovery ---

    def recover(self) -> None:
        """What a dead attempt left behind: *en cours* becomes *à vérifier*, then everything *à vérifier* is
        looked up in Sage before anything is sent again."""
        now = timezone.now()
        with transaction.atomic():
            stuck = SyncItem.objects.filter(company=self.company, status=SyncItem.Status.SENDING)
            creation_ids = list(stuck.filter(kind=SyncItem.Kind.CREATION).values_list("invoice_id", flat=True))
            stuck.update(status=SyncItem.Status.UNKNOWN, updated_at=now)
            Invoice.objects.filter(pk__in=creation_ids, export_state=ExportState.SENDING).update(
                export_state=ExportState.UNKNOWN
            )
            # A BAP update carries its own idempotent key: it is simply sent again.
            updates = SyncItem.objects.filter(
                company=self.company, kind=SyncItem.Kind.UPDATE, status=SyncItem.Status.UNKNOWN
            )
            Invoice.objects.filter(pk__in=updates.values("invoice_id")).update(update_state=ExportState.TO_EXPORT)
            updates.update(status=SyncItem.Status.PENDING, updated_at=now)
        to_check = SyncItem.objects.filter(
            company=self.company, kind=SyncItem.Kind.CREATION, status=SyncItem.Status.UNKNOWN
        )
        # This run answers for them now: they count among what it handled, whoever sent them first.
        to_check.update(run=self.run)
        unknown = list(to_check.order_by("pk"))
        for start in range(0, len(unknown), self.batch_size):
            to_resend = self._reconcile(unknown[start : start + self.batch_size])
            self._release(to_resend, _("Absente de Sage FRP 1000 après vérification : elle sera renvoyée."))

    def _reconcile(self, items: list[SyncItem]) -> list[SyncItem]:
        """Look each key up in Sage: found → integrated; absent → returned, to be sent again."""
        absent, found = [], []
        for item in items:
            booked = self.client.get_entry(self.company.code, item.key)
            if booked is None:
                absent.append(item)
            else:
                found.append((item, booked["piece_number"]))
        if found:
            self._integrate(found, reconciled=True)
        return absent

    # --- creations ---

    def export_creations(self) -> None:
        """Batch after batch, each committed *en cours* before it is sent (``_prepare``).

        While Sage books one batch, the next one is prepared and the previous one recorded: the network call runs in
        a thread of its own that touches nothing but the connection to Sage, one call at a time; every database
        write stays in this thread, in order. Whatever interrupts the run, a batch prepared and never sent goes back
        to *à exporter*, and a batch whose send had begun is recorded or left *en cours* for ``recover`` (looked up
        by key before anything is sent again).
        """
        ids = self._selection(SyncItem.Kind.CREATION)
        chunks = [ids[start : start + self.batch_size] for start in range(0, len(ids), self.batch_size)]
        flight: _Flight | None = None
        ready: tuple[list[SyncItem], int] | None = None
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sage-send") as sender:
            try:
                # One more turn after the last chunk, to land the last batch.
                for chunk in [*chunks, None]:
                    if chunk is not None:
                        self._heartbeat()
                        ready = (self._prepare(chunk), len(chunk))
                    if flight is not None:
                        results, failure = flight.outcome()
                        landing, flight = flight, None
                        if failure is None:
                            if ready is not None:
                                # The next batch leaves before this one is recorded.
                                flight, ready = _Flight.launch(sender, self, *ready), None
                            self._record(landing.items, results)
                        else:
                            self._send_batch(landing.items, failure=failure)
                        self._tally()
                    if ready is not None:
                        flight, ready = _Flight.launch(sender, self, *ready), None
            except BaseException:
                self._abandon(flight, ready)
                raise
        self._tally(force=True)

    def _abandon(self, flight: _Flight | None, ready: tuple[list[SyncItem], int] | None) -> None:
        """The run stops: what was prepared and never sent is released; what was sent is recorded if its answer
        came, else marked *à vérifier*. If even that fails (the database is gone), the items stay *en cours*, and
        ``recover`` finds them next time: nothing is sent twice, nothing is lost."""
        try:
            if ready is not None:
                self._release(ready[0], _("Envoi interrompu avant son départ : elle sera renvoyée."))
            if flight is not None:
                results, failure = flight.outcome()
                if failure is None:
                    self._record(flight.items, results)
                elif isinstance(failure, SageUnavailable) and not failure.outcome_unknown:
                    self._release(flight.items, failure.message)
                else:
                    self._mark_unknown(flight.items, failure.message)
        except Exception:
            logger.exception("export of %s interrupted: batches left en cours for recovery", self.company.code)

    def _prepare(self, invoice_ids: list[int]) -> list[SyncItem]:
        """Claim a batch: committed *en cours* (with their keys and payloads) before the network call.

        The invoices are locked in key order and read as plain rows (``_batch_rows``, ``_batch_payloads``).
        """
        states = AUTOMATIC_STATES if self.automatic else MANUAL_STATES
        now = timezone.now()
        with transaction.atomic():
            rows = _batch_rows(
                Invoice.objects.select_for_update(of=("self",)).filter(
                    pk__in=invoice_ids, company=self.company, export_state__in=states
                )
            )
            # Changed since the selection (corrected, exported by another run): not this run's any more.
            self._totals[SyncItem.Kind.CREATION] -= len(invoice_ids) - len(rows)
            existing = {
                (item.invoice_id, item.version): item
                for item in SyncItem.objects.filter(
                    invoice_id__in=[row[0] for row in rows], kind=SyncItem.Kind.CREATION
                )
            }
            # Sent before and confirmed absent from Sage: the same accounting content again (a late copy of the first
            # send is then a « duplicate », never a conflict).
            sent_before = {
                pk: item.payload
                for pk, version, *_ in rows
                if (item := existing.get((pk, version))) and item.payload and item.status == SyncItem.Status.PENDING
            }
            payloads, local_errors = _batch_payloads(self.company, self.referential, rows, sent_before=sent_before)
            sending, new_items, changed_items, rejected = [], [], [], []
            for pk, version, bap_version, *_facts in rows:
                item = existing.get((pk, version))
                if item is None:
                    item = _Claim(pk, version)
                    new_items.append(item)
                else:
                    changed_items.append(item)
                    item.run = self.run
                    item.last_attempt_at = now
                item.payload = payloads.get(pk, {})
                item.bap_version = bap_version
                item.updated_at = now
                if pk in local_errors:
                    item.status = SyncItem.Status.REJECTED
                    item.last_error = local_errors[pk][0][2]
                    rejected.append((item, local_errors[pk]))
                else:
                    item.status = SyncItem.Status.SENDING
                    item.attempts += 1
                    item.last_error = ""
                    sending.append(item)
            self._insert_items(new_items)
            SyncItem.objects.bulk_update(
                changed_items,
                ["payload", "bap_version", "run", "last_attempt_at", "status", "attempts", "last_error", "updated_at"],
            )
            Invoice.objects.filter(pk__in=[item.invoice_id for item in sending]).update(
                export_state=ExportState.SENDING, last_attempt_at=now
            )
            Invoice.objects.filter(pk__in=[item.invoice_id for item, _errors in rejected]).update(last_attempt_at=now)
            if rejected:
                self._record_rejections(rejected, source="sfd")
        return sending

    def _insert_items(self, items: list[_Claim]) -> None:
        """New items in one ``COPY``, their keys read back."""
        if not items:
            return
        now, company_id, run_id = items[0].updated_at, self.company.pk, self.run.pk
        rows_copy(
            SyncItem,
            ITEM_COLUMNS,
            [
                (item.invoice_id, company_id, SyncItem.Kind.CREATION.value, item.version, item.key, item.status,
                 item.payload, item.bap_version, item.attempts, now, item.last_error, "", run_id, now, now)
                for item in items
            ],
        )  # fmt: skip
        pks = dict(SyncItem.objects.filter(key__in=[item.key for item in items]).values_list("key", "pk"))
        for item in items:
            item.pk = pks[item.key]

    def _send_batch(self, items: list[SyncItem], *, failure: SageError | None = None) -> None:
        """Send a batch until its outcome is known (``failure``: how its first send, made elsewhere, ended)."""
        for round_number in range(1, self.rounds + 1):
            if not items:
                return
            try:
                results = self._post(items, failure=failure)
            except SageUnavailable as error:
                if not error.outcome_unknown:
                    self._release(items, error.message)
                    raise
                # It may have been booked: look every key up before sending anything again.
                self._mark_unknown(items, error.message)
                absent = self._reconcile(items)
                if round_number == self.rounds:
                    # Confirmed absent, and no send left: back to *à exporter*, and the run says why.
                    self._release(absent, error.message)
                    raise
                items = self._resend(absent)
                continue
            except SageError as error:
                # The batch itself was refused (or the key): nothing was booked.
                self._release(items, error.message)
                raise
            finally:
                failure = None
            self._record(items, results)
            return

    def _record(self, items: list[SyncItem], results: list) -> None:
        """Sage's answer to a batch, in one transaction: what it booked, what it refused."""
        accepted = [
            (item, result.piece_number)
            for item, result in zip(items, results, strict=True)
            if result.status != "rejected"
        ]
        refused = [
            (item, [(e.get("code", "?"), e.get("field") or "", e.get("message", "")) for e in result.errors])
            for item, result in zip(items, results, strict=True)
            if result.status == "rejected"
        ]
        with transaction.atomic():
            if accepted:
                self._integrate(accepted)
            if refused:
                self._record_rejections(refused, source="sage")

    def _post(self, items: list[SyncItem], *, failure: SageError | None = None):
        attempt = 0
        while True:
            try:
                if failure is not None:
                    # The first send was made by the sending thread: its failure is handled as if it were ours.
                    error, failure = failure, None
                    raise error
                return self.client.post_entries(self.company.code, [item.payload for item in items])
            except SageUnavailable as error:
                # Only what Sage said it did not process (503, 429, refused connection) is retried as is.
                if error.outcome_unknown or attempt >= settings.SAGE_RETRIES:
                    raise
                delay = (
                    error.retry_after if error.retry_after is not None else settings.SAGE_BACKOFF_SECONDS * 2**attempt
                )
                time.sleep(min(delay + random.uniform(0, delay / 2), 60))  # noqa: S311 - jitter
                attempt += 1
                self._heartbeat()

    def _mark_unknown(self, items: list[SyncItem], message: str) -> None:
        with transaction.atomic():
            SyncItem.objects.filter(pk__in=[i.pk for i in items]).update(
                status=SyncItem.Status.UNKNOWN, last_error=message, updated_at=timezone.now()
            )
            Invoice.objects.filter(pk__in=[i.invoice_id for i in items]).update(export_state=ExportState.UNKNOWN)
        for item in items:
            item.status = SyncItem.Status.UNKNOWN

    def _resend(self, items: list[SyncItem]) -> list[SyncItem]:
        now = timezone.now()
        with transaction.atomic():
            SyncItem.objects.filter(pk__in=[i.pk for i in items]).update(
                status=SyncItem.Status.SENDING, attempts=F("attempts") + 1, last_attempt_at=now, updated_at=now
            )
            Invoice.objects.filter(pk__in=[i.invoice_id for i in items]).update(
                export_state=ExportState.SENDING, last_attempt_at=now
            )
        return items

    def _release(self, items: list[SyncItem], message: str) -> None:
        """Known not to be in Sage: back to *à exporter*, with why."""
        if not items:
            return
        with transaction.atomic():
            SyncItem.objects.filter(pk__in=[i.pk for i in items]).update(
                status=SyncItem.Status.PENDING, last_error=message, updated_at=timezone.now()
            )
            Invoice.objects.filter(pk__in=[i.invoice_id for i in items]).update(export_state=ExportState.TO_EXPORT)

    @transaction.atomic
    def _integrate(self, accepted: list[tuple[SyncItem, str]], *, reconciled: bool = False) -> None:
        now = timezone.now()
        items = {item.invoice_id: (item, piece) for item, piece in accepted}
        _invoices_integrated(
            sorted((item.invoice_id, piece, item.version, item.bap_version) for item, piece in accepted), now
        )
        for item, piece in accepted:
            item.status = SyncItem.Status.INTEGRATED
            item.piece_number = piece
            item.last_error = ""
            item.updated_at = now
        rows_update(
            SyncItem,
            ["status", "piece_number", "last_error", "updated_at"],
            sorted((item.pk, item.status, item.piece_number, item.last_error, now) for item, _piece in accepted),
        )
        Anomaly.objects.filter(invoice_id__in=items.keys(), cleared_at__isnull=True, simulated=False).update(
            cleared_at=now, cleared_reason="intégrée"
        )
        message = _("Intégrée dans Sage FRP 1000 : pièce %(piece)s.")
        if reconciled:
            message = _("Retrouvée dans Sage FRP 1000 après vérification : pièce %(piece)s.")
        rows_copy(
            InvoiceEvent,
            ["invoice", "at", "actor", "actor_label", "kind", "message"],
            [
                (item.invoice_id, now, None, self._actor_label, "integrated", message % {"piece": piece})
                for item, piece in accepted
            ],
        )

    @cached_property
    def _actor_label(self) -> str:
        user = self.run.user
        if user is None:
            return _("automatique")
        return (user.get_full_name() or user.get_username())[:150]

    def _record_rejections(
        self, refused: list[tuple[SyncItem, list[tuple]]], *, source: str, state_field: str = "export_state"
    ) -> None:
        now = timezone.now()
        anomalies, events = [], []
        for item, errors in refused:
            item.status = SyncItem.Status.REJECTED
            item.last_error = errors[0][2] if errors else _("Refusée par Sage FRP 1000.")
            item.updated_at = now
            for code, field, message in errors or [("REJECTED", "", item.last_error)]:
                anomalies.append(
                    Anomaly(
                        item_id=item.pk, invoice_id=item.invoice_id, company=self.company, run=self.run, source=source,
                        code=code[:40], field=field_label(field)[:100], message=message[:500],
                        hint=hint_for(code, item.payload, field)[:500],
                    )
                )  # fmt: skip
            codes = ", ".join(sorted({code for code, *_ in errors}))
            events.append(
                InvoiceEvent(
                    invoice_id=item.invoice_id,
                    actor_label=self._actor_label,
                    kind="rejected",
                    message=(
                        _("Refusée avant envoi (contrôle SFD) : %(codes)s.")
                        if source == "sfd"
                        else _("Refusée par Sage FRP 1000 : %(codes)s.")
                    )
                    % {"codes": codes},
                )
            )
        ids = [item.invoice_id for item, _ in refused]
        # An earlier version's anomalies of the same invoice were cleared when it was corrected; a re-export of
        # the same version replaces its own.
        Anomaly.objects.filter(invoice_id__in=ids, cleared_at__isnull=True, simulated=False).update(
            cleared_at=now, cleared_reason="remplacée"
        )
        rows_update(
            SyncItem,
            ["status", "last_error", "updated_at"],
            sorted((item.pk, item.status, item.last_error, item.updated_at) for item, _ in refused),
        )
        Anomaly.objects.bulk_create(anomalies)
        InvoiceEvent.objects.bulk_create(events)
        Invoice.objects.filter(pk__in=ids).update(**{state_field: ExportState.REJECTED})

    # --- updates (BAP) ---

    def export_updates(self) -> None:
        for invoice_id in self._selection(SyncItem.Kind.UPDATE):
            self._send_update(invoice_id)
            self._tally()
            self._heartbeat()
        self._tally(force=True)

    def _send_update(self, invoice_id: int) -> None:
        states = AUTOMATIC_STATES if self.automatic else MANUAL_STATES
        now = timezone.now()
        with transaction.atomic():
            invoice = (
                Invoice.objects.select_for_update(of=("self",)).filter(pk=invoice_id, update_state__in=states).first()
            )
            if invoice is None:
                self._totals[SyncItem.Kind.UPDATE] -= 1
                return
            payload = {
                "update_id": invoice.update_id,
                "bap": invoice.bap,
                "bap_date": invoice.bap_date.isoformat() if invoice.bap_date else None,
            }
            item, _created = SyncItem.objects.get_or_create(
                invoice=invoice,
                kind=SyncItem.Kind.UPDATE,
                version=invoice.bap_version,
                defaults={"company": self.company, "key": invoice.update_id},
            )
            item.payload = payload
            item.status = SyncItem.Status.SENDING
            item.attempts += 1
            item.last_attempt_at = now
            item.run = self.run
            item.save()
            Invoice.objects.filter(pk=invoice.pk).update(update_state=ExportState.SENDING, last_attempt_at=now)
            piece = invoice.sage_piece_number
        try:
            self.client.patch_entry(self.company.code, piece, payload)
        except SageRejected as error:
            errors = [(e.get("code", "?"), e.get("field") or "", e.get("message", "")) for e in error.errors]
            with transaction.atomic():
                self._record_rejections(
                    [(item, errors or [("REJECTED", "", error.message)])], source="sage", state_field="update_state"
                )
            return
        except (SageUnavailable, SageAuthError) as error:
            # The update is idempotent (its update_id): back to *à exporter*, sent again next time.
            with transaction.atomic():
                SyncItem.objects.filter(pk=item.pk).update(status=SyncItem.Status.PENDING, last_error=error.message)
                Invoice.objects.filter(pk=invoice_id).update(update_state=ExportState.TO_EXPORT)
            raise
        with transaction.atomic():
            fresh = Invoice.objects.select_for_update(of=("self",)).get(pk=invoice_id)
            fresh.bap_pushed_version = max(fresh.bap_pushed_version, item.version)
            fresh.update_state = ExportState.DONE if fresh.bap_version == item.version else ExportState.TO_EXPORT
            fresh.save(update_fields=["bap_pushed_version", "update_state", "updated_at"])
            SyncItem.objects.filter(pk=item.pk).update(
                status=SyncItem.Status.INTEGRATED, piece_number=piece, last_error=""
            )
            Anomaly.objects.filter(
                item__invoice_id=invoice_id, item__kind=SyncItem.Kind.UPDATE, cleared_at__isnull=True
            ).update(cleared_at=timezone.now(), cleared_reason="mise à jour appliquée")
            InvoiceEvent.objects.create(
                invoice_id=invoice_id,
                actor_label=self._actor_label,
                kind="updated",
                message=_("BAP transmis à Sage FRP 1000 (pièce %(piece)s).") % {"piece": piece},
            )


def _invoices_integrated(rows: list[tuple[int, str, int, int]], now: dt.datetime) -> None:
    """Mark invoices integrated, each row ``(invoice id, piece number, version, BAP version sent)``, in one
    statement that reads and writes each row under its lock, in key order: a BAP changed while the entry was on its
    way (the invoice's BAP version is now above the one sent) becomes an update to push."""
    table = Invoice._meta.db_table
    integrated_at = Invoice._meta.get_field("integrated_at").get_db_prep_save(now, connection)
    constants = [Invoice.Status.INTEGRATED.value, ExportState.DONE.value, integrated_at, ExportState.TO_EXPORT.value]
    assignments = (
        "status = %s, export_state = %s, integrated_at = %s, sage_piece_number = {piece},"
        " integrated_version = {version}, bap_pushed_version = {bap},"
        " update_state = CASE WHEN {table}.bap_version > {bap} THEN %s ELSE {table}.update_state END"
    )
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            statement = assignments.format(piece="v.piece", version="v.version", bap="v.bap", table=table)
            cursor.execute(
                f"UPDATE {table} SET {statement}"  # noqa: S608 - names from the model, values bound
                " FROM unnest(%s::bigint[], %s::varchar[], %s::integer[], %s::integer[]) AS v(id, piece, version, bap)"
                # The ids twice: as a join, and as a condition that reads them through the primary key (without it,
                # a join with an unnest of unknown size may read the whole table).
                f" WHERE {table}.id = v.id AND {table}.id = ANY(%s::bigint[])",
                [*constants, *(list(column) for column in zip(*rows, strict=True)), [row[0] for row in rows]],
            )
        else:
            statement = assignments.format(piece="%s", version="%s", bap="%s", table=table)
            # The placeholders in the order of the statement: constants, piece, version, BAP (twice), id.
            cursor.executemany(
                f"UPDATE {table} SET {statement} WHERE id = %s",  # noqa: S608 - names from the model, values bound
                [
                    [constants[0], constants[1], constants[2], piece, version, bap, bap, constants[3], pk]
                    for pk, piece, version, bap in rows
                ],
            )


def _batch_rows(invoices: QuerySet[Invoice]) -> list[tuple]:
    """A batch of invoices as plain rows, in key order: ``(pk, accounting_version, bap_version, *FACT_COLUMNS)``
    (their suppliers joined): one query, no model per row."""
    return list(invoices.order_by("pk").values_list("pk", "accounting_version", "bap_version", *FACT_COLUMNS))


def _batch_payloads(
    company: Company, referential: Referential, rows: list[tuple], *, sent_before: dict[int, dict] | None = None
) -> tuple[dict[int, dict], dict[int, list[tuple[str, str, str]]]]:
    """The entry of each invoice of ``rows`` (``_batch_rows``) as Sage's payload, and what SFD already knows Sage
    would refuse: ``(payloads, errors)``, errors being ``(code, field, message)`` per invoice — the entry's own
    problems (``ENTRY_INVALID``) or the pre-check's, with Sage's codes.

    The lines are read in one query with their codes; each entry is computed by the function the screens use.
    ``sent_before``: payloads already sent once for an invoice, sent again as they were, with the BAP as it is now
    (the BAP is outside what Sage compares)."""
    sent_before = sent_before or {}
    lines: dict[int, list[SourceLine]] = defaultdict(list)
    batch_lines = (
        InvoiceLine.objects.filter(invoice_id__in=[row[0] for row in rows])
        .order_by("invoice_id", "position", "id")
        .values_list("invoice_id", *LINE_COLUMNS)
    )
    for invoice_id, *values in batch_lines:
        lines[invoice_id].append(SourceLine(*values))
    payloads: dict[int, dict] = {}
    errors: dict[int, list[tuple[str, str, str]]] = {}
    for pk, version, _bap_version, *columns in rows:
        facts = facts_from_row(company.purchase_journal_code, company.analytic_required, columns)
        if pk in sent_before:
            bap_date = facts.bap_date.isoformat() if facts.bap_date else None
            payloads[pk] = sent_before[pk] | {"bap": facts.bap, "bap_date": bap_date}
            continue
        try:
            payloads[pk] = entry_from_facts(facts, lines[pk]).payload(entry_external_id(pk, version))
        except EntryError as error:
            errors[pk] = [("ENTRY_INVALID", problem.field, problem.message) for problem in error.problems]
    referential.load_for(list(payloads.values()))
    for pk, payload in payloads.items():
        found = referential.check(payload)
        if found:
            errors[pk] = [(e.code, e.field, e.message) for e in found]
    return payloads, errors


# --- simulation -------------------------------------------------------------------------------------------


def _simulate(line: SyncRunCompany, log) -> None:
    """« Simuler »: Sage's simulation mode on the selection; anomalies are recorded for the run, nothing else.

    Nothing it does outlives it, so an attempt after a dead one starts again from the beginning: what the dead one
    recorded is replaced, and the counters start from zero (each batch's anomalies and counts in one transaction).
    """
    company, run = line.company, line.run
    invoices = selection_invoices(run.selection, kind=SyncItem.Kind.CREATION, company=company, automatic=False)
    ids = list(invoices.order_by("pk").values_list("pk", flat=True))
    with transaction.atomic():
        Anomaly.objects.filter(run=run, company=company, simulated=True).delete()
        SyncRunCompany.objects.filter(pk=line.pk).update(
            status=SyncRunCompany.Status.RUNNING,
            started_at=timezone.now(),
            total=len(ids),
            done=0,
            integrated=0,
            rejected=0,
        )
    referential = Referential(company)
    status, error_message, refused = SyncRunCompany.Status.SUCCEEDED, "", 0
    try:
        with company.connector.client() as client:
            for start in range(0, len(ids), settings.SYNC_BATCH_SIZE):
                rows = _batch_rows(Invoice.objects.filter(pk__in=ids[start : start + settings.SYNC_BATCH_SIZE]))
                payloads, local = _batch_payloads(company, referential, rows)
                anomalies = [
                    _simulated(run, company, pk, code, field, message, payloads.get(pk, {}), "sfd")
                    for pk, found in local.items()
                    for code, field, message in found
                ]
                to_send = [(pk, payload) for pk, payload in payloads.items() if pk not in local]
                if to_send:
                    results = client.post_entries(company.code, [p for _, p in to_send], simulate=True)
                    for (pk, payload), result in zip(to_send, results, strict=True):
                        for e in result.errors:
                            anomalies.append(
                                _simulated(
                                    run, company, pk, e.get("code", "?"), e.get("field") or "", e.get("message", ""),
                                    payload,
                                )
                            )  # fmt: skip
                refused_ids = {anomaly.invoice_id for anomaly in anomalies}
                refused += len(refused_ids)
                with transaction.atomic():
                    Anomaly.objects.bulk_create(anomalies)
                    SyncRunCompany.objects.filter(pk=line.pk).update(
                        done=F("done") + len(rows),
                        integrated=F("integrated") + len(rows) - len(refused_ids),
                        rejected=F("rejected") + len(refused_ids),
                    )
    except SageError as failure:
        status, error_message = SyncRunCompany.Status.FAILED, failure.message
        log.warning("simulation failed: %s", failure.message)
    if status == SyncRunCompany.Status.SUCCEEDED and refused:
        status = SyncRunCompany.Status.PARTIAL
    SyncRunCompany.objects.filter(pk=line.pk).update(status=status, error=error_message, finished_at=timezone.now())


def _simulated(run, company, invoice_id, code, field, message, payload, source="sage") -> Anomaly:
    return Anomaly(
        invoice_id=invoice_id, company=company, run=run, simulated=True, source=source, code=code[:40],
        field=field_label(field)[:100], message=message[:500], hint=hint_for(code, payload, field)[:500],
    )  # fmt: skip


# --- the reaper -------------------------------------------------------------------------------------------


def synchro_reap() -> dict:
    """Finish what a lost message or a dead worker left: the database is the source of truth, not the broker.

    - a run line *en cours* whose company is no longer held (its worker died: a live sync renews its claim) is
      dispatched again at once; a line *en attente* whose company is free, once ``SYNC_REAP_SECONDS`` have passed
      (its message may only be waiting behind others);
    - a referential pull *en cours* whose company is no longer held is dispatched again, and so is a pull *en
      attente* for longer than ``SYNC_REAP_SECONDS``.
    A claim runs out ``SYNC_LEASE_SECONDS`` after its holder's last renewal, so a sync that is alive is never touched.
    """
    from companies.tasks import company_pull

    from .tasks import run_company_task

    now = timezone.now()
    quiet = now - dt.timedelta(seconds=settings.SYNC_REAP_SECONDS)
    free = Q(company__sync_claim_until__isnull=True) | Q(company__sync_claim_until__lt=now)
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
    company_free = Q(sync_claim_until__isnull=True) | Q(sync_claim_until__lt=now)
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


# --- the schedule ----------------------------------------------------------------------------------------


def schedule_tick(*, now: dt.datetime | None = None) -> SyncRun | None:
    """What Celery beat runs every minute: a heartbeat, the due automatic run (claimed once), the reaper, and the
    folding of the Visuel counter's deltas (``invoices.counters``)."""
    now = now or timezone.now()
    heartbeat_touch("beat")
    run = None
    slot = schedule_claim(now=now)
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
    synchro_reap()
    state_counts_compact()
    return run


def sync_now(*, user) -> SyncRun:
    """« Synchroniser maintenant »: the automatic run, at once, on the user's active companies."""
    from companies.selectors import companies_for_user

    companies = list(companies_for_user(user).filter(active=True).select_related("connector"))
    return run_start(trigger=SyncRun.Trigger.MANUAL, user=user, companies=companies, include_pull=True)
