"""The export of entries (*créations*) to Sage FRP 1000, exactly once.

Over 450 lines, the exactly-once protocol reads as one: preparing, sending, reconciling and recording a batch share
their states.

The protocol (``CompanyExporter.export_creations``):

- every version of an entry has a stable key (``SFD-<invoice>-V<version>``), Sage's idempotency key;
- a batch is written *en cours* and committed (``_prepare``) before the network call: the items and their payloads
  are in the database before Sage hears of them;
- Sage's answer is recorded in one transaction (``_record``): integrated, or refused with its anomalies;
- an unknown outcome (timeout, reset, a 5xx, a crash) makes the items *à vérifier*; they are looked up by key in
  Sage (``_reconcile``) before anything is sent again, never blindly resent; only what Sage said it did not
  process is retried as is (``SageClient.retrying``);
- whatever interrupts the run, a batch prepared and never sent goes back to *à exporter* (``_abandon``), and a
  batch whose send had begun is recorded or left *en cours* for ``recover``;
- a company is held by one sync at a time: a lease in the database, shared with the referential pull, renewed as
  the export goes (``_heartbeat``); an export that lost it stops.

The BAP updates (``updates``) and the simulation (``simulation``) have their own modules.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from companies.lease import company_lease_renew
from connectors.sage_frp1000.client import ErrorTriple, SageClient, SageError, SageUnavailable, error_triples
from core.bulk import JsonText, rows_copy, rows_update
from core.lookups import array_param
from core.services import actor_label
from invoices.models import ExportState, Invoice, InvoiceEvent, entry_external_id

from . import anomalies
from .batches import batch_payloads, batch_rows
from .models import Anomaly, SyncItem, SyncRunCompany
from .precheck import Referential
from .selection import selection_invoices, sendable_states
from .selectors import run_line_counts

logger = logging.getLogger(__name__)

# Seconds between two writes of a run line's counters while it runs (the screen polls every second).
TALLY_SECONDS = 1.0


# The columns of a new item, written by ``COPY`` (every value given).
ITEM_COLUMNS = [
    "invoice_id", "company_id", "kind", "version", "key", "status", "payload", "bap_version", "attempts",
    "last_attempt_at", "last_error", "piece_number", "run_id", "created_at", "updated_at",
]  # fmt: skip


class _PendingWrite:
    """A pending write: a new item of a batch as the exporter carries it, what it reads and writes of a ``SyncItem``,
    without a model instance per row (its row is written by ``COPY``)."""

    __slots__ = ("attempts", "bap_version", "encoded", "invoice_id", "key", "last_error", "payload", "piece_number",
                 "pk", "status", "updated_at", "version")  # fmt: skip

    def __init__(self, invoice_id: int, version: int):
        self.pk = None
        self.invoice_id, self.version, self.key = invoice_id, version, entry_external_id(invoice_id, version)
        self.payload, self.bap_version, self.status, self.attempts = {}, 0, SyncItem.Status.TO_EXPORT, 0
        self.last_error, self.piece_number, self.updated_at, self.encoded = "", "", None, None


class _Flight:
    """A batch committed *en cours* whose send runs in the sending thread."""

    def __init__(self, items: list[SyncItem], size: int, future: Future | None):
        self.items, self.size, self.future = items, size, future

    @classmethod
    def launch(cls, sender: ThreadPoolExecutor, exporter: CompanyExporter, items: list[SyncItem], size: int) -> _Flight:
        future = None
        if items:
            payloads = [item.payload for item in items]
            encoded = [item.encoded for item in items]
            future = sender.submit(exporter.client.post_entries, exporter.company.code, payloads, encoded=encoded)
        return cls(items, size, future)

    def outcome(self) -> tuple[list, SageError | None]:
        """Sage's results, or the failure of the send (waits for it)."""
        if self.future is None:
            return [], None
        try:
            return self.future.result(), None
        except SageError as failure:
            return [], failure


class CompanyExporter:
    """Sends one company's selected entries and updates, batch by batch, and records every outcome."""

    def __init__(self, line: SyncRunCompany, token: str):
        self.line = line
        self.run = line.run
        self.company = line.company
        self.token = token
        self.automatic = self.run.is_automatic
        self.client: SageClient = self.company.connector.client()
        self.referential = Referential(self.company)
        self.batch_size = settings.SYNC_BATCH_SIZE
        self.rounds = settings.SYNC_SEND_ROUNDS
        # The lease was taken (or renewed) just before the exporter was made.
        self._renewed = time.monotonic()
        self._totals = {kind: 0 for kind in SyncItem.Kind}
        self._tallied = 0.0
        self.actor = actor_label(self.run.user)

    # The line's counters: derived from the run's items (``run_line_counts``), the total from what this attempt
    # selects plus what the run already handled. Written at most every ``TALLY_SECONDS``, and at the end of each kind.
    def tally(self, *, force: bool = False) -> None:
        if not force and time.monotonic() - self._tallied < TALLY_SECONDS:
            return
        self._tallied = time.monotonic()
        SyncRunCompany.objects.filter(pk=self.line.pk).update(
            total=sum(self._totals.values()), **run_line_counts(run_id=self.run.pk, company_id=self.company.pk)
        )

    def selected(self, kind: str) -> list[int]:
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
        self.tally(force=True)
        return ids

    def unselect(self, kind: str) -> None:
        """One selected invoice of ``kind`` changed since the selection (corrected, exported by another run): not
        this run's any more."""
        self._totals[kind] -= 1

    def heartbeat(self) -> None:
        """Renew the lease on the company once a tenth of its lease has passed (not on every batch): a sync that has
        stalled for a whole lease finds out here that it lost the company, and stops."""
        if time.monotonic() - self._renewed < settings.SYNC_LEASE_SECONDS / 10:
            return
        if not company_lease_renew(company_id=self.company.pk, token=self.token):
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
            Invoice.objects.filter(pk__any=creation_ids, export_state=ExportState.SENDING).update(
                export_state=ExportState.UNKNOWN
            )
            # A BAP update carries its own idempotent key: it is simply sent again.
            updates = SyncItem.objects.filter(
                company=self.company, kind=SyncItem.Kind.UPDATE, status=SyncItem.Status.UNKNOWN
            )
            Invoice.objects.filter(pk__in=updates.values("invoice_id")).update(update_state=ExportState.TO_EXPORT)
            updates.update(status=SyncItem.Status.TO_EXPORT, updated_at=now)
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
        ids = self.selected(SyncItem.Kind.CREATION)
        chunks = [ids[start : start + self.batch_size] for start in range(0, len(ids), self.batch_size)]
        flight: _Flight | None = None
        ready: tuple[list[SyncItem], int] | None = None
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sage-send") as sender:
            try:
                # One more turn after the last chunk, to land the last batch.
                for chunk in [*chunks, None]:
                    if chunk is not None:
                        self.heartbeat()
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
                        self.tally()
                    if ready is not None:
                        flight, ready = _Flight.launch(sender, self, *ready), None
            except BaseException:
                self._abandon(flight, ready)
                raise
        self.tally(force=True)

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
        """Prepare a batch: committed *en cours* (with their keys and payloads) before the network call.

        The invoices are locked in key order and read as plain rows (``batch_rows``, ``batch_payloads``).
        """
        states = sendable_states(automatic=self.automatic)
        now = timezone.now()
        with transaction.atomic():
            rows = batch_rows(
                Invoice.objects.select_for_update(of=("self",)).filter(
                    pk__any=invoice_ids, company=self.company, export_state__in=states
                )
            )
            # Changed since the selection (corrected, exported by another run): not this run's any more.
            self._totals[SyncItem.Kind.CREATION] -= len(invoice_ids) - len(rows)
            existing = {
                (item.invoice_id, item.version): item
                for item in SyncItem.objects.filter(
                    invoice_id__any=[row[0] for row in rows], kind=SyncItem.Kind.CREATION
                )
            }
            # Sent before and confirmed absent from Sage: the same accounting content again (a late copy of the first
            # send is then a « duplicate », never a conflict).
            sent_before = {
                pk: item.payload
                for pk, version, *_ in rows
                if (item := existing.get((pk, version))) and item.payload and item.status == SyncItem.Status.TO_EXPORT
            }
            payloads, local_errors = batch_payloads(self.company, self.referential, rows, sent_before=sent_before)
            sending, new_items, changed_items, rejected = [], [], [], []
            for pk, version, bap_version, *_facts in rows:
                item = existing.get((pk, version))
                if item is None:
                    item = _PendingWrite(pk, version)
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
                    # Encoded once: the item's payload written by ``COPY`` and the body of the send are this text.
                    item.encoded = JsonText(json.dumps(item.payload, allow_nan=False))
                    sending.append(item)
            self._insert_items(new_items)
            SyncItem.objects.bulk_update(
                changed_items,
                ["payload", "bap_version", "run", "last_attempt_at", "status", "attempts", "last_error", "updated_at"],
            )
            Invoice.objects.filter(pk__any=[item.invoice_id for item in sending]).update(
                export_state=ExportState.SENDING, last_attempt_at=now
            )
            if rejected:
                Invoice.objects.filter(pk__any=[item.invoice_id for item, _errors in rejected]).update(
                    last_attempt_at=now
                )
                self.rejections_record(rejected, source=Anomaly.Source.SFD)
        return sending

    def _insert_items(self, items: list[_PendingWrite]) -> None:
        """New items in one ``COPY``, their keys read back."""
        if not items:
            return
        now, company_id, run_id = items[0].updated_at, self.company.pk, self.run.pk
        rows_copy(
            SyncItem,
            ITEM_COLUMNS,
            [
                (item.invoice_id, company_id, SyncItem.Kind.CREATION.value, item.version, item.key, item.status,
                 item.encoded or item.payload, item.bap_version, item.attempts, now, item.last_error, "", run_id, now,
                 now)
                for item in items
            ],
        )  # fmt: skip
        pks = dict(SyncItem.objects.filter(key__any=[item.key for item in items]).order_by().values_list("key", "pk"))
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
            (item, error_triples(result.errors))
            for item, result in zip(items, results, strict=True)
            if result.status == "rejected"
        ]
        with transaction.atomic():
            if accepted:
                self._integrate(accepted)
            if refused:
                self.rejections_record(refused, source=Anomaly.Source.SAGE)

    def _post(self, items: list[SyncItem], *, failure: SageError | None = None):
        """Post a batch through the gateway's retry loop: only what Sage said it did not process (503, 429, refused
        connection) is sent again as is; the hold on the company is renewed between two tries. ``failure``: how the
        first send, made by the sending thread, ended."""
        if failure is not None and not isinstance(failure, SageUnavailable):
            raise failure
        return self.client.retrying(
            lambda: self.client.post_entries(self.company.code, [item.payload for item in items]),
            unknown_too=False,
            failure=failure,
            between=self.heartbeat,
        )

    def _mark_unknown(self, items: list[SyncItem], message: str) -> None:
        with transaction.atomic():
            SyncItem.objects.filter(pk__any=[i.pk for i in items]).update(
                status=SyncItem.Status.UNKNOWN, last_error=message, updated_at=timezone.now()
            )
            Invoice.objects.filter(pk__any=[i.invoice_id for i in items]).update(export_state=ExportState.UNKNOWN)
        for item in items:
            item.status = SyncItem.Status.UNKNOWN

    def _resend(self, items: list[SyncItem]) -> list[SyncItem]:
        now = timezone.now()
        with transaction.atomic():
            SyncItem.objects.filter(pk__any=[i.pk for i in items]).update(
                status=SyncItem.Status.SENDING, attempts=F("attempts") + 1, last_attempt_at=now, updated_at=now
            )
            Invoice.objects.filter(pk__any=[i.invoice_id for i in items]).update(
                export_state=ExportState.SENDING, last_attempt_at=now
            )
        return items

    def _release(self, items: list[SyncItem], message: str) -> None:
        """Known not to be in Sage: back to *à exporter*, with why."""
        if not items:
            return
        with transaction.atomic():
            SyncItem.objects.filter(pk__any=[i.pk for i in items]).update(
                status=SyncItem.Status.TO_EXPORT, last_error=message, updated_at=timezone.now()
            )
            Invoice.objects.filter(pk__any=[i.invoice_id for i in items]).update(export_state=ExportState.TO_EXPORT)

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
        Anomaly.objects.filter(invoice_id__any=items.keys(), cleared_at__isnull=True, simulated=False).update(
            cleared_at=now, cleared_reason=Anomaly.ClearedReason.INTEGRATED
        )
        message = _("Intégrée dans Sage FRP 1000 : pièce %(piece)s.")
        if reconciled:
            message = _("Retrouvée dans Sage FRP 1000 après vérification : pièce %(piece)s.")
        rows_copy(
            InvoiceEvent,
            ["invoice", "at", "actor", "actor_label", "kind", "message"],
            [
                (item.invoice_id, now, None, self.actor, InvoiceEvent.Kind.INTEGRATED.value, message % {"piece": piece})
                for item, piece in accepted
            ],
        )

    def rejections_record(
        self, refused: list[tuple[SyncItem, list[ErrorTriple]]], *, source: str, state_field: str = "export_state"
    ) -> None:
        anomalies.rejections_record(
            refused, company=self.company, run=self.run, actor=self.actor, source=source, state_field=state_field
        )


def _invoices_integrated(rows: list[tuple[int, str, int, int]], now: dt.datetime) -> None:
    """Mark invoices integrated, each row ``(invoice id, piece number, version, BAP version sent)``, in key order.

    A BAP changed while the entry was on its way (the invoice's BAP version is now above the one sent) becomes an
    update to push. The first statement holds each row's lock until the transaction ends: a BAP changed meanwhile
    waits for it, then finds the invoice integrated and asks for the update itself."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        rows_update(
            Invoice,
            ["status", "export_state", "integrated_at", "sage_piece_number", "integrated_version",
             "bap_pushed_version"],
            [
                (pk, Invoice.Status.INTEGRATED.value, ExportState.INTEGRATED.value, now, piece, version, bap)
                for pk, piece, version, bap in rows
            ],
        )  # fmt: skip
        Invoice.objects.filter(pk__any=[row[0] for row in rows], bap_version__gt=F("bap_pushed_version")).update(
            update_state=ExportState.TO_EXPORT
        )
        return
    # One statement on PostgreSQL: each invoice written (and counted by the state-count trigger) once. The update to
    # push is decided on the row as locked, as the second statement above does.
    keys, pieces, versions, baps = (list(column) for column in zip(*rows, strict=True))
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE invoices_invoice SET status = %(status)s, export_state = %(state)s, integrated_at = %(now)s,"
            " sage_piece_number = v.piece, integrated_version = v.version, bap_pushed_version = v.bap,"
            " update_state = CASE WHEN invoices_invoice.bap_version > v.bap THEN %(to_push)s"
            " ELSE invoices_invoice.update_state END"
            " FROM unnest(%(keys)s::bigint[], %(pieces)s::varchar[], %(versions)s::integer[], %(baps)s::integer[])"
            " AS v(id, piece, version, bap)"
            " WHERE invoices_invoice.id = v.id AND invoices_invoice.id = ANY(%(keys)s::bigint[])",
            {
                "status": Invoice.Status.INTEGRATED.value, "state": ExportState.INTEGRATED.value, "now": now,
                "to_push": ExportState.TO_EXPORT.value, "keys": array_param(keys), "pieces": pieces,
                "versions": array_param(versions), "baps": array_param(baps),
            },
        )  # fmt: skip
