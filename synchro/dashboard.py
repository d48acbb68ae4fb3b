"""« Tableau de bord », the home page: per company, the invoices in each state (each a link to its list); the
entries integrated and refused per day over the last 30 days; the open anomalies by code; the last run of each
company and the next automatic one. Everything is scoped to the user's companies, and each part to its right.

Here, not in ``core``: the page reads every app, and ``core`` imports none.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from companies.selectors import visible_company_ids
from connectors.schedule import describe

from . import selectors
from .charts import daily_entries_chart

INVOICES = "invoices.view_invoices"
VISUEL = "synchro.view_synchronisations"
CONNECTORS = "connectors.manage_connectors"
DAYS = 30


@dataclass(frozen=True)
class Cell:
    """One count of the companies' table, with where it leads (empty: no list to show it, or no right to)."""

    value: int
    url: str = ""
    extra: int = 0  # the updates (BAP) in the same state, for « à exporter » and « en anomalie »
    extra_url: str = ""


def _url(name: str, **query) -> str:
    return f"{reverse(name)}?{urlencode({key: value for key, value in query.items() if value is not None})}"


def _cells(board: selectors.CompanyBoard, *, can_invoices: bool, can_visuel: bool) -> list[Cell]:
    company = board.company.pk if board.company else None
    invoices = "invoices:list" if can_invoices else None
    visuel = "synchro:list" if can_visuel else None

    def link(name, count, **query):
        return _url(name, company=company, **query) if name and count else ""

    return [
        Cell(board.to_complete, link(invoices, board.to_complete, status="to_complete")),
        Cell(board.to_validate, link(invoices, board.to_validate, status="to_validate")),
        Cell(
            board.to_export,
            link(visuel, board.to_export, type="creation", status="to_export"),
            board.updates_to_export,
            link(visuel, board.updates_to_export, type="update", status="to_export"),
        ),
        Cell(
            board.rejected,
            link(visuel, board.rejected, type="creation", status="rejected"),
            board.updates_rejected,
            link(visuel, board.updates_rejected, type="update", status="rejected"),
        ),
        Cell(
            board.integrated,
            link(invoices, board.integrated, status="integrated")
            or link(visuel, board.integrated, type="creation", status="done"),
        ),
    ]


COLUMNS = (_("À compléter"), _("À valider"), _("À exporter"), _("En anomalie"), _("Intégrées"))


@require_GET
@login_required
def home(request):
    user = request.user
    can_invoices, can_visuel = user.has_perm(INVOICES), user.has_perm(VISUEL)
    context = {"can_invoices": can_invoices, "can_visuel": can_visuel, "can_schedule": user.has_perm(CONNECTORS)}
    # The user's companies, read once for every part of the page.
    visible = visible_company_ids(user)
    last_day = timezone.localdate()
    first_day = last_day - dt.timedelta(days=DAYS - 1)
    if can_invoices or can_visuel:
        # The refused files are read in « Imports », a page of the invoices' right.
        since = dt.datetime.combine(first_day, dt.time.min, tzinfo=timezone.get_current_timezone())
        boards = selectors.dashboard_companies(
            visible, with_last_runs=can_visuel, refused_files_since=since if can_invoices else None
        )
        rights = {"can_invoices": can_invoices, "can_visuel": can_visuel}
        total = selectors.CompanyBoard.total(boards) if len(boards) > 1 else None
        context |= {
            "columns": COLUMNS,
            "rows": [(board, _cells(board, **rights)) for board in boards],
            "total": _cells(total, **rights) if total else None,
            "total_board": total,
            "refused_files_since": first_day,
        }
    if can_visuel:
        counts = selectors.dashboard_daily_entries(visible, first_day=first_day, last_day=last_day)
        schedule = selectors.schedule_state()
        context |= {
            "chart": daily_entries_chart(counts, first_day=first_day, last_day=last_day),
            "anomaly_codes": selectors.dashboard_anomaly_codes(visible),
            "schedule": schedule,
            "next_run": describe(schedule.next_run_at) if schedule and schedule.enabled else "",
        }
    return render(request, "synchro/dashboard.html", context)
