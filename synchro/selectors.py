"""Reads of the « Visuel Synchronisations » screen and of the history, scoped to the user's companies."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import TruncDate
from django.shortcuts import get_object_or_404
from django.utils import timezone

from companies.models import Company
from companies.selectors import companies_for_user, visible_company_ids
from connectors.models import SyncSchedule
from invoices.counters import state_count, state_counts
from invoices.models import ExportState, IntakeFile, Invoice

from .hints import code_headline
from .models import Anomaly, SyncItem, SyncRun, SyncRunCompany, run_status
from .selection import selection_filtered

PAGE_SIZE = 50
KINDS = {SyncItem.Kind.CREATION: "export_state", SyncItem.Kind.UPDATE: "update_state"}


def state_field(kind: str) -> str:
    return KINDS.get(kind, "export_state")


def visuel_rows(user, *, kind: str, filters: dict) -> QuerySet[Invoice]:
    """Every invoice with something to say about the notion (entry or update), filtered."""
    return _visuel_rows(visible_company_ids(user), kind=kind, filters=filters)


def _visuel_rows(visible: list[int] | None, *, kind: str, filters: dict) -> QuerySet[Invoice]:
    field = state_field(kind)
    rows = Invoice.objects.exclude(**{field: ExportState.NONE})
    if visible is not None:
        # The ids themselves, not a subquery: a count over the rows (dates, supplier) reads only these companies'.
        rows = rows.filter(company_id__in=visible)
    # Otherwise every company is visible, and every invoice has a company: no condition at all.
    return selection_filtered(rows, filters, state_field=field)


# Filters the counter of invoices per company and state answers; any other (dates, supplier) counts the rows.
COUNTED_FILTERS = frozenset({"company", "status"})


def _visuel_count(visible: list[int] | None, *, kind: str, filters: dict) -> int | None:
    """The exact count of ``_visuel_rows`` from the counter (``invoices.counters``), whatever the number of rows;
    None when a filter needs the rows themselves."""
    if any(value for name, value in filters.items() if name not in COUNTED_FILTERS):
        return None
    company_ids = visible
    if filters.get("company"):
        company = int(filters["company"])
        company_ids = [company] if visible is None or company in visible else []
    return state_count(field=state_field(kind), company_ids=company_ids, state=filters.get("status") or "")


def visuel_page(user, *, kind: str, filters: dict, after: str = "", before: str = "", last: bool = False) -> Page:
    """One page of the Visuel list; its count from the counter when the filters allow (no date, no supplier)."""
    visible = visible_company_ids(user)
    rows = _visuel_rows(visible, kind=kind, filters=filters)
    count = _visuel_count(visible, kind=kind, filters=filters)
    return keyset_page(rows, after=after, before=before, last=last, count=count)


def companies_with_rows(user, rows: QuerySet[Invoice]) -> list[Company]:
    """The companies among the user's that have at least one of ``rows``: one probe per company, not a scan."""
    return list(
        companies_for_user(user).filter(Exists(rows.filter(company=OuterRef("pk")))).select_related("connector")
    )


@dataclass
class Page:
    rows: list[Invoice]
    count: int
    has_next: bool
    has_previous: bool
    next_cursor: str | None
    previous_cursor: str | None


def _cursor(invoice: Invoice) -> str:
    return f"{invoice.invoice_date.isoformat() if invoice.invoice_date else ''}_{invoice.pk}"


def _parse_cursor(value: str) -> tuple[dt.date | None, int] | None:
    try:
        date_text, pk = value.rsplit("_", 1)
        return (dt.date.fromisoformat(date_text) if date_text else None), int(pk)
    except ValueError:
        return None


def keyset_page(
    rows: QuerySet[Invoice], *, after: str = "", before: str = "", last: bool = False, count: int | None = None
) -> Page:
    """Newest first, by (date, id): the first and the last page cost the same whatever the number of rows.
    ``count``: the number of ``rows`` when the caller knows it, else counted here."""
    rows = rows.select_related("company", "supplier")
    newest_first = rows.order_by("-invoice_date", "-id")
    oldest_first = rows.order_by("invoice_date", "id")
    after_key, before_key = _parse_cursor(after) if after else None, _parse_cursor(before) if before else None
    if after_key and after_key[0]:
        date, pk = after_key
        chunk = list(newest_first.filter(Q(invoice_date__lt=date) | Q(invoice_date=date, pk__lt=pk))[: PAGE_SIZE + 1])
        has_more, page_rows = len(chunk) > PAGE_SIZE, chunk[:PAGE_SIZE]
        has_next, has_previous = has_more, True
    elif before_key and before_key[0]:
        date, pk = before_key
        chunk = list(oldest_first.filter(Q(invoice_date__gt=date) | Q(invoice_date=date, pk__gt=pk))[: PAGE_SIZE + 1])
        has_more, page_rows = len(chunk) > PAGE_SIZE, list(reversed(chunk[:PAGE_SIZE]))
        has_next, has_previous = True, has_more
    elif last:
        chunk = list(oldest_first[: PAGE_SIZE + 1])
        has_more, page_rows = len(chunk) > PAGE_SIZE, list(reversed(chunk[:PAGE_SIZE]))
        has_next, has_previous = False, has_more
    else:
        chunk = list(newest_first[: PAGE_SIZE + 1])
        has_more, page_rows = len(chunk) > PAGE_SIZE, chunk[:PAGE_SIZE]
        has_next, has_previous = has_more, False
    return Page(
        rows=page_rows,
        count=rows.count() if count is None else count,
        has_next=has_next and bool(page_rows),
        has_previous=has_previous and bool(page_rows),
        next_cursor=_cursor(page_rows[-1]) if page_rows else None,
        previous_cursor=_cursor(page_rows[0]) if page_rows else None,
    )


def open_anomalies_for(user, invoice_pk: int) -> tuple[Invoice, list[Anomaly]]:
    invoice = get_object_or_404(
        Invoice.objects.filter(company__in=companies_for_user(user)).select_related("company", "supplier"),
        pk=invoice_pk,
    )
    anomalies = list(
        Anomaly.objects.filter(invoice=invoice, cleared_at__isnull=True, simulated=False).select_related("item")
    )
    return invoice, anomalies


def runs_for_user(user) -> QuerySet[SyncRun]:
    """Runs that touched at least one company the user may see."""
    visible = companies_for_user(user)
    return (
        SyncRun.objects.filter(Exists(SyncRunCompany.objects.filter(run=OuterRef("pk"), company__in=visible)))
        .select_related("user")
        .order_by("-started_at", "-id")
    )


@dataclass(frozen=True)
class RunRow:
    """A run as a user sees it: the lines of his companies, and the status they make."""

    run: SyncRun
    lines: list[SyncRunCompany]
    status: str

    @property
    def status_label(self) -> str:
        return str(SyncRun.Status(self.status).label)


def run_rows_for_user(user, runs: list[SyncRun]) -> list[RunRow]:
    lines_by_run: dict[int, list[SyncRunCompany]] = {run.pk: [] for run in runs}
    for line in SyncRunCompany.objects.filter(run__in=runs, company__in=companies_for_user(user)).select_related(
        "company"
    ):
        lines_by_run[line.run_id].append(line)
    return [RunRow(run, lines_by_run[run.pk], shown_run_status(run, lines_by_run[run.pk])) for run in runs]


def shown_run_status(run: SyncRun, lines: list[SyncRunCompany]) -> str:
    # A run that has no line of the user's companies (its lines were purged) keeps its own status.
    return run_status(line.status for line in lines) if lines else run.status


def run_for_user(user, pk: int) -> tuple[SyncRun, list[SyncRunCompany]]:
    run = get_object_or_404(runs_for_user(user), pk=pk)
    lines = list(
        SyncRunCompany.objects.filter(run=run, company__in=companies_for_user(user))
        .select_related("company")
        .order_by("company__name")
    )
    return run, lines


def run_items(run: SyncRun, lines: list[SyncRunCompany]) -> QuerySet[SyncItem]:
    return (
        SyncItem.objects.filter(run=run, company_id__in=[line.company_id for line in lines])
        .select_related("invoice__supplier", "company")
        .order_by("company__name", "invoice__number")
    )


def run_simulated_anomalies(run: SyncRun, lines: list[SyncRunCompany]) -> QuerySet[Anomaly]:
    return (
        Anomaly.objects.filter(run=run, simulated=True, company_id__in=[line.company_id for line in lines])
        .select_related("invoice__supplier", "company")
        .order_by("company__name", "invoice__number", "id")
    )


def run_progress(lines: list[SyncRunCompany]) -> dict:
    total = sum(line.total for line in lines)
    done = sum(line.done for line in lines)
    return {
        "total": total,
        "done": done,
        "percent": int(done * 100 / total) if total else (100 if all(line.finished for line in lines) else 0),
        "finished": all(line.finished for line in lines),
        "integrated": sum(line.integrated for line in lines),
        "updated": sum(line.updated for line in lines),
        "rejected": sum(line.rejected + line.update_rejected for line in lines),
        "unknown": sum(line.unknown for line in lines),
        "open_anomalies": sum(line.open_anomalies or 0 for line in lines),
    }


# --- « Tableau de bord » -----------------------------------------------------------------------------------
# A constant number of queries whatever the number of invoices: the states of the entries come from the Visuel
# counter; « à compléter » and « à valider », the accountants' work in hand, are counted on the (company, status)
# index; the chart reads run lines, the anomalies their open rows.


@dataclass
class CompanyBoard:
    """One company's line of the dashboard: its invoices per state, and its last run."""

    company: Company | None
    to_complete: int = 0
    to_validate: int = 0
    to_export: int = 0
    updates_to_export: int = 0
    rejected: int = 0
    updates_rejected: int = 0
    integrated: int = 0
    # Files its scan folder refused: those nobody has seen yet, and all of those received since the chart's first day.
    refused_files_unseen: int = 0
    refused_files_recent: int = 0
    last_line: SyncRunCompany | None = None

    COUNTS = (
        "to_complete", "to_validate", "to_export", "updates_to_export", "rejected", "updates_rejected", "integrated",
        "refused_files_unseen", "refused_files_recent",
    )  # fmt: skip

    @classmethod
    def total(cls, boards: list[CompanyBoard]) -> CompanyBoard:
        return cls(None, **{name: sum(getattr(board, name) for board in boards) for name in cls.COUNTS})


# (notion, state) of the counter → the board's count
_STATE_COUNTS = {
    ("export", ExportState.TO_EXPORT): "to_export",
    ("update", ExportState.TO_EXPORT): "updates_to_export",
    ("export", ExportState.REJECTED): "rejected",
    ("update", ExportState.REJECTED): "updates_rejected",
    ("export", ExportState.INTEGRATED): "integrated",
}


def dashboard_companies(
    visible: list[int] | None, *, with_last_runs: bool, refused_files_since: dt.datetime | None = None
) -> list[CompanyBoard]:
    """The active companies among ``visible`` (``visible_company_ids`` of the user: None for every company), by name,
    each with its invoices per state (and its last run, not a simulation, when ``with_last_runs``; the files its scan
    folder refused, when ``refused_files_since`` says from when)."""
    companies = Company.objects.filter(active=True).order_by("name")
    if visible is not None:
        companies = companies.filter(pk__in=visible)
    if with_last_runs:
        last = (
            SyncRunCompany.objects.filter(company=OuterRef("pk"))
            .exclude(run__trigger=SyncRun.Trigger.SIMULATION)
            .order_by("-queued_at", "-pk")
            .values("pk")[:1]
        )
        companies = companies.annotate(last_line_id=Subquery(last))
    boards = {company.pk: CompanyBoard(company) for company in companies}
    work = (
        Invoice.objects.filter(
            company_id__in=list(boards), status__in=[Invoice.Status.TO_COMPLETE, Invoice.Status.TO_VALIDATE]
        )
        .values_list("company_id", "status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for company_id, status, n in work:
        setattr(boards[company_id], status, n)
    for (company_id, notion, state), n in state_counts(company_ids=list(boards)).items():
        name = _STATE_COUNTS.get((notion, state))
        if name:
            setattr(boards[company_id], name, n)
    if refused_files_since is not None:
        unseen, recent = Q(seen_at__isnull=True), Q(received_at__gte=refused_files_since)
        refused = (
            IntakeFile.objects.filter(company_id__in=list(boards), outcome=IntakeFile.Outcome.REFUSED)
            .filter(unseen | recent)
            .values("company_id")
            .annotate(unseen=Count("pk", filter=unseen), recent=Count("pk", filter=recent))
            .order_by()
        )
        for row in refused:
            board = boards[row["company_id"]]
            board.refused_files_unseen, board.refused_files_recent = row["unseen"], row["recent"]
    if with_last_runs:
        line_ids = [board.company.last_line_id for board in boards.values() if board.company.last_line_id]
        for line in SyncRunCompany.objects.filter(pk__in=line_ids).select_related("run"):
            boards[line.company_id].last_line = line
    return list(boards.values())


def dashboard_daily_entries(
    visible: list[int] | None, *, first_day: dt.date, last_day: dt.date
) -> dict[dt.date, tuple[int, int]]:
    """Entries integrated and refused per day (Europe/Paris) by the runs of the companies ``visible`` — simulations
    aside — that ended between ``first_day`` and ``last_day``: {day: (integrated, refused)}."""
    paris = timezone.get_current_timezone()
    start = dt.datetime.combine(first_day, dt.time.min, tzinfo=paris)
    end = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time.min, tzinfo=paris)
    lines = SyncRunCompany.objects.filter(finished_at__gte=start, finished_at__lt=end).exclude(
        run__trigger=SyncRun.Trigger.SIMULATION
    )
    if visible is not None:
        lines = lines.filter(company_id__in=visible)
    per_day = (
        lines.annotate(day=TruncDate("finished_at", tzinfo=paris))
        .values("day")
        .annotate(integrated=Sum("integrated"), rejected=Sum("rejected"))
        .order_by("day")
    )
    return {row["day"]: (row["integrated"] or 0, row["rejected"] or 0) for row in per_day}


@dataclass(frozen=True)
class AnomalyCode:
    code: str
    entries: int
    headline: str


def dashboard_anomaly_codes(visible: list[int] | None) -> list[AnomalyCode]:
    """The open anomalies of the companies ``visible`` per code, the most frequent first: how many entries have
    one."""
    anomalies = Anomaly.objects.filter(cleared_at__isnull=True, simulated=False)
    if visible is not None:
        anomalies = anomalies.filter(company_id__in=visible)
    codes = anomalies.values("code").annotate(entries=Count("invoice", distinct=True)).order_by("-entries", "code")
    return [AnomalyCode(row["code"], row["entries"], code_headline(row["code"])) for row in codes]


def schedule_state() -> SyncSchedule | None:
    """The automatic synchronisation's schedule, as it stands (None: never saved)."""
    return SyncSchedule.objects.order_by("pk").first()


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
