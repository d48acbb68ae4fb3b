"""``visuel_page`` and ``select_all_export``: the Visuel Synchronisations screen on a large table, through Django's
test ``Client`` (middleware, session, templates: the whole request).

Each measure is taken twice in the same database: first with the baseline's number of rows, then after the table
has grown to the benchmark's, so that the ratio is the cost of the rows alone. The rows spread like a living
table: most entries integrated, a fifth waiting, some refused, a few unknown or on their way, some invoices not yet
validated (not listed), BAP updates on some integrated ones.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

from .data import create_invoices
from .support import Row, Stub, close_database_connections, counting, median_seconds, note, scaled, sql, vacuum_analyze

# Few enough that every filtered page of the baseline is a full page too (the same rendering work).
COMPANIES = 2
PAGE_ROWS, PAGE_BASELINE_ROWS = 1_000_000, 1_000
EXPORT_ROWS, EXPORT_BASELINE_ROWS = 100_000, 100
REPEAT = 5

# Out of every 100 invoices: 65 integrated, 20 waiting, 10 refused, 2 to check, 1 on its way, 2 not yet validated;
# a BAP changed after integration on 5 of them, pushed on 2 more. Spread by a hash of the number, not by its
# remainder, so that no state sticks to some dates.
_BUCKET = "((hashtext(i::text)::bigint %% 100 + 100) %% 100)"
EXPORT_STATE = (
    f"CASE WHEN {_BUCKET} < 65 THEN 'done' WHEN {_BUCKET} < 85 THEN 'to_export' WHEN {_BUCKET} < 95 THEN 'rejected'"
    f" WHEN {_BUCKET} < 97 THEN 'unknown' WHEN {_BUCKET} < 98 THEN 'sending' ELSE '' END"
)
STATUS = f"CASE WHEN {_BUCKET} < 65 THEN 'integrated' WHEN {_BUCKET} < 98 THEN 'validated' ELSE 'to_complete' END"
UPDATE_STATE = f"CASE WHEN {_BUCKET} < 5 THEN 'to_export' WHEN {_BUCKET} < 7 THEN 'done' ELSE '' END"
COUNT_TEXT = re.compile(r"Tout cocher \((\d+) écritures?")


def _companies(stub: Stub, connector) -> list:
    from .export import _company

    return [_company(stub, connector, f"BENCHV{index:02d}") for index in range(COMPANIES)]


def _fill(companies: list, total: int, *, prefix: str, states: bool = True) -> None:
    """``total`` more invoices, spread evenly over ``companies``."""
    from invoices.counters import state_counts_compact

    for index, company in enumerate(companies):
        count = total // len(companies) + (1 if index < total % len(companies) else 0)
        if not count:
            continue
        if states:
            create_invoices(
                company.pk, count, prefix=f"{prefix}{index}", lines=0, export_state_sql=EXPORT_STATE,
                status_sql=STATUS, update_state_sql=UPDATE_STATE,
            )  # fmt: skip
        else:
            create_invoices(company.pk, count, prefix=f"{prefix}{index}", lines=0)
    # The triggers appended the counter's deltas (invoices/counters.py); beat folds them within a minute.
    state_counts_compact()
    vacuum_analyze("invoices_invoice", "invoices_invoicestatecount")
    # The pages are then read by a session that did not load a million rows, as a web worker's would: the loading
    # session counts a third slower (measured), which is the benchmark's doing, not the application's.
    close_database_connections()


def _empty_invoices() -> None:
    sql("TRUNCATE invoices_invoice CASCADE")


def _admin():
    from django.contrib.auth import get_user_model
    from django.test import Client

    user = get_user_model().objects.filter(username="bench-admin").first()
    if user is None:
        user = get_user_model().objects.create_superuser("bench-admin", "bench@example.com", "bench-admin-password")
    client = Client()
    client.force_login(user)
    return client


def _expected_count(query: dict) -> int:
    """The count the page must show, by plain SQL, independently of the selectors."""
    kind_column = "update_state" if query.get("type") == "update" else "export_state"
    where, params = [f"{kind_column} <> ''"], []
    if query.get("company"):
        where.append("company_id = %s")
        params.append(query["company"])
    if query.get("status"):
        where.append(f"{kind_column} = %s")
        params.append(query["status"])
    return sql(f"SELECT COUNT(*) FROM invoices_invoice WHERE {' AND '.join(where)}", params)[0][0]


def _page_variants(companies: list) -> dict[str, dict]:
    waiting = {"company": companies[0].pk, "status": "to_export"}
    refused = {"status": "rejected"}
    updates = {"type": "update"}
    return {
        "unfiltered, first page": {},
        "unfiltered, last page": {"last": "1"},
        "company + status, first page": waiting,
        "company + status, last page": waiting | {"last": "1"},
        "status, first page": refused,
        "status, last page": refused | {"last": "1"},
        "BAP updates, first page": updates,
        "BAP updates, last page": updates | {"last": "1"},
    }


def _measure_pages(client, variants: dict[str, dict], row: Row) -> dict[str, tuple[float, int]]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    url = reverse("synchro:list")
    measured = {}
    for name, query in variants.items():
        address = f"{url}?{urlencode(query)}"
        with CaptureQueriesContext(connection) as captured:
            response = client.get(address)
        # Read now: every request empties the log (request_started resets it).
        queries = len(captured.captured_queries)
        if response.status_code != 200:
            row.checks.append(f"{name}: HTTP {response.status_code}")
            continue
        shown = COUNT_TEXT.search(response.content.decode())
        expected = _expected_count(query)
        if shown is None or int(shown.group(1)) != expected:
            row.checks.append(f"{name}: the page says {shown and shown.group(1)}, the table holds {expected}")
        seconds = median_seconds(lambda address=address: client.get(address), repeat=REPEAT)
        measured[name] = (seconds, queries)
    return measured


def _page_row(stub: Stub, scale: float, companies: list) -> Row:
    rows = max(scaled(PAGE_ROWS, scale), PAGE_BASELINE_ROWS)
    row = Row(name="visuel_page", n=rows, limit_ratio=2, limit_queries=10)
    client = _admin()
    variants = _page_variants(companies)
    _empty_invoices()
    _fill(companies, PAGE_BASELINE_ROWS, prefix="VS")
    small = _measure_pages(client, variants, row)
    _fill(companies, rows - PAGE_BASELINE_ROWS, prefix="VB")
    big = _measure_pages(client, variants, row)
    worst = None
    for name in variants:
        if name not in small or name not in big:
            continue
        (base, _), (seconds, queries) = small[name], big[name]
        note(f"visuel_page, {name}: {seconds * 1000:.1f} ms, {queries} queries; {base * 1000:.1f} ms on the baseline")
        row.queries = max(row.queries or 0, queries)
        if worst is None or seconds / base > worst[0] / worst[1]:
            worst = (seconds, base)
    if worst:
        # The row reports the page that grew the most: every page must hold the target, not their sum.
        row.seconds, row.baseline_seconds = worst
    return row


def _select_all_row(stub: Stub, scale: float, companies: list) -> Row:
    from django.urls import reverse

    from synchro.models import SyncRun

    rows = max(scaled(EXPORT_ROWS, scale), EXPORT_BASELINE_ROWS)
    row = Row(name="select_all_export", n=rows, limit_ratio=3)
    client = _admin()
    form = {"type": "creation", "action": "export", "select_all": "1", "status": "to_export"}
    url = reverse("synchro:export")

    def export() -> None:
        response = client.post(url, form)
        if response.status_code != 302 or "run=" not in response.get("Location", ""):
            row.checks.append(f"« Exporter » answered HTTP {response.status_code}")

    def queries() -> int:
        with counting() as executed:
            export()
        return executed()

    _empty_invoices()
    _fill(companies, EXPORT_BASELINE_ROWS, prefix="XS", states=False)
    row.baseline_seconds = median_seconds(export, repeat=REPEAT)
    small_queries = queries()
    _fill(companies, rows - EXPORT_BASELINE_ROWS, prefix="XB", states=False)
    runs = SyncRun.objects.count()
    row.seconds = median_seconds(export, repeat=REPEAT)
    row.queries = queries()
    latest = SyncRun.objects.order_by("-pk").first()
    if SyncRun.objects.count() != runs + REPEAT + 2 or latest.selection.get("filters", {}).get("status") != "to_export":
        row.checks.append(f"« Tout cocher » did not store its filter: {latest and latest.selection}")
    if row.queries != small_queries:
        # The selection is the filter, never the rows: as many statements for 100 rows as for 100 000.
        row.checks.append(f"{row.queries} queries on {rows} rows, {small_queries} on {EXPORT_BASELINE_ROWS}")
    note(f"select_all_export: {row.seconds * 1000:.1f} ms on {rows} rows, {row.baseline_seconds * 1000:.1f} ms on 100")
    return row


def run(stub: Stub, scale: float, connector, *, only: set[str]) -> list[Row]:
    companies = _companies(stub, connector)
    select_all = _select_all_row(stub, scale, companies) if "select_all_export" in only else None
    page = _page_row(stub, scale, companies) if "visuel_page" in only else None
    return [row for row in (page, select_all) if row is not None]
