"""Exact counts of invoices per company, notion (entry or update) and state, without counting the invoices.

The database keeps them (migration 0004): triggers on ``invoices_invoice`` append rows of deltas to
``InvoiceStateCount`` in the transaction of the statement that inserts, deletes, or changes the state or the
company of invoices; the count of (company, notion, state) is the sum of ``n`` over its rows. A reader sums a
handful of rows where ``COUNT(*)`` read one index entry per invoice (23 ms for a million).

Why the sum is exact, under READ COMMITTED (PostgreSQL's default, and Django's):

- A delta commits or rolls back with the change it counts: same transaction, written by the database whatever
  the writer (the ORM, ``bulk_update``, ``UPDATE … FROM unnest``, ``COPY``, a hand-written fix). A statement's
  snapshot therefore sees, for every committed transaction, both its invoices and its deltas, and for every other
  one neither: the sum over that snapshot equals ``COUNT(*)`` over the same snapshot.
- Deltas are appended, never updated: no unique key, no shared counter row, so concurrent writers never wait on
  one another nor deadlock over the counter (a counter row per state would serialise every export batch of a
  company behind the previous one's commit).
- Compaction (below) replaces rows by their sum in one statement of one transaction: a reader sees all of the
  rows or their sum, never both or neither. Under READ COMMITTED its ``DELETE`` removes the rows committed
  before its snapshot, and the ``INSERT`` writes the sum of exactly the rows that ``DELETE`` returned — the rows it
  has itself deleted. A delta committed meanwhile is not visible to it, so it is neither deleted nor summed: it
  stays, and still counts. A row another transaction deleted first (a concurrent compaction that got past the
  lock, a ``TRUNCATE``) is skipped by the ``DELETE`` after waiting, so not returned, so not summed twice. The sum
  over the table is thus the same before and after, whatever runs alongside.
- The advisory lock keeps two compactions from doing the same work and waiting on each other's row locks
  (``pg_try_advisory_xact_lock``: the second one returns at once). It is also what ``TRUNCATE invoices_invoice``'s
  trigger takes, blocking, before it empties the counter: without it, that ``DELETE`` could run on a snapshot taken
  before a compaction's commit and miss the sum row the compaction inserted. The lock is taken by a statement
  before the compaction's, so that the compaction's snapshot is taken once it holds the lock.

On SQLite there is one writer at a time: the compaction is three statements in one transaction that holds the
write lock (``transaction_mode`` IMMEDIATE in settings), bounded by the highest id it saw in any case.

SQLite drops a table's triggers with the table, and Django rebuilds a table on SQLite for most schema changes (a
migration that alters an invoice's field does). After every ``migrate`` (``post_migrate``, see ``apps.py``),
``sqlite_triggers_ensure`` re-creates any trigger missing or different from ``SQLITE_TRIGGERS`` and recounts from
the invoices in the same transaction. PostgreSQL keeps its triggers through ``ALTER TABLE``: migration 0004's.
"""

# ruff: noqa: S608 - constant SQL: the counter's table and columns; every value is a parameter.
from __future__ import annotations

import re

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import Sum

from .models import ExportState, InvoiceStateCount

# The advisory lock of compaction, also taken by the TRUNCATE trigger (a copy lives in migration 0004).
COMPACTION_LOCK = 1607826046

NOTIONS = {"export_state": InvoiceStateCount.Notion.EXPORT, "update_state": InvoiceStateCount.Notion.UPDATE}

_TABLE = InvoiceStateCount._meta.db_table
_GROUP = "company_id, notion, state"
# What is worth folding: a (company, notion, state) with more than one row, or whose rows sum to nothing.
_FOLDABLE = f"SELECT {_GROUP} FROM {_TABLE}{{where}} GROUP BY {_GROUP} HAVING COUNT(*) > 1 OR SUM(n) = 0"

_COMPACT_POSTGRES = f"""
    WITH gone AS (
        DELETE FROM {_TABLE} WHERE ({_GROUP}) IN ({_FOLDABLE.format(where="")})
        RETURNING {_GROUP}, n
    ), folded AS (
        INSERT INTO {_TABLE} ({_GROUP}, n)
        SELECT {_GROUP}, SUM(n) FROM gone GROUP BY {_GROUP} HAVING SUM(n) <> 0
        RETURNING 1
    )
    SELECT (SELECT COUNT(*) FROM gone), (SELECT COUNT(*) FROM folded)
"""


_BACKFILL = f"""
    INSERT INTO {_TABLE} ({_GROUP}, n)
    SELECT company_id, 'export', export_state, COUNT(*) FROM invoices_invoice WHERE export_state <> ''
    GROUP BY company_id, export_state
    UNION ALL
    SELECT company_id, 'update', update_state, COUNT(*) FROM invoices_invoice WHERE update_state <> ''
    GROUP BY company_id, update_state
"""


def _sqlite_deltas(row: str, sign: int, *, on_update: bool = False) -> str:
    """One delta per notion of ``row`` (NEW or OLD) whose state is not empty (and, on UPDATE, that moved)."""
    parts = []
    for notion, column in (("export", "export_state"), ("update", "update_state")):
        condition = f"{row}.{column} <> ''"
        if on_update:
            condition += f" AND (OLD.company_id IS NOT NEW.company_id OR OLD.{column} IS NOT NEW.{column})"
        parts.append(f"SELECT {row}.company_id, '{notion}', {row}.{column}, {sign} WHERE {condition}")
    return f"INSERT INTO {_TABLE} ({_GROUP}, n) " + " UNION ALL ".join(parts) + ";"


# SQLite's triggers, as they must be now (migration 0004 created the first ones). Row-level: SQLite has no other.
SQLITE_TRIGGERS = {
    "invoices_state_count_insert": (
        "CREATE TRIGGER invoices_state_count_insert AFTER INSERT ON invoices_invoice"
        f" BEGIN {_sqlite_deltas('NEW', 1)} END"
    ),
    # Django's flush deletes the tables in any order: an invoice whose company is already gone (and its counter
    # rows with it, below) writes nothing, so the counter ends empty whatever the order.
    "invoices_state_count_delete": (
        "CREATE TRIGGER invoices_state_count_delete AFTER DELETE ON invoices_invoice"
        " WHEN EXISTS (SELECT 1 FROM companies_company WHERE id = OLD.company_id)"
        f" BEGIN {_sqlite_deltas('OLD', -1)} END"
    ),
    "invoices_state_count_update": (
        "CREATE TRIGGER invoices_state_count_update AFTER UPDATE OF company_id, export_state, update_state"
        " ON invoices_invoice WHEN OLD.company_id IS NOT NEW.company_id"
        " OR OLD.export_state IS NOT NEW.export_state OR OLD.update_state IS NOT NEW.update_state"
        f" BEGIN {_sqlite_deltas('OLD', -1, on_update=True)} {_sqlite_deltas('NEW', 1, on_update=True)} END"
    ),
    "invoices_state_count_company_delete": (
        "CREATE TRIGGER invoices_state_count_company_delete AFTER DELETE ON companies_company"
        f" BEGIN DELETE FROM {_TABLE} WHERE company_id = OLD.id; END"
    ),
}


def _normalized(statement: str | None) -> str:
    return re.sub(r"\s+", " ", statement or "").strip()


def state_count(*, field: str, company_ids: list[int] | None = None, state: str = "") -> int:
    """How many invoices have ``field`` (``export_state`` or ``update_state``) not empty — or equal to ``state`` —
    among the companies ``company_ids`` (None: every company). One query on a table of a few rows per company."""
    rows = InvoiceStateCount.objects.filter(notion=NOTIONS[field]).exclude(state=ExportState.NONE)
    if state:
        rows = rows.filter(state=state)
    if company_ids is not None:
        if not company_ids:
            return 0
        rows = rows.filter(company_id__in=company_ids)
    return rows.aggregate(total=Sum("n"))["total"] or 0


def state_counts(*, company_ids: list[int] | None = None) -> dict[tuple[int, str, str], int]:
    """Every non-zero count: {(company id, notion, state): invoices}, of the companies ``company_ids`` (None: every
    company). One query on a table of a few rows per company."""
    rows = (
        InvoiceStateCount.objects.all()
        if company_ids is None
        else InvoiceStateCount.objects.filter(company_id__in=company_ids)
    )
    totals = rows.values_list("company_id", "notion", "state").annotate(total=Sum("n"))
    return {(company, notion, state): total for company, notion, state, total in totals.order_by() if total}


def state_counts_compact() -> int | None:
    """Fold the deltas into one row per (company, notion, state), dropping those that sum to zero; how many rows
    fewer the counter holds, or None when another compaction is running (PostgreSQL). Exact under concurrent
    writers and compactions (see the module's docstring); safe to call at any time, e.g. every minute."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [COMPACTION_LOCK])
            if not cursor.fetchone()[0]:
                return None
            cursor.execute(_COMPACT_POSTGRES)
            deleted, written = cursor.fetchone()
            return deleted - written
        cursor.execute(f"SELECT MAX(id) FROM {_TABLE}")
        (last,) = cursor.fetchone()
        if last is None:
            return 0
        bounded = " WHERE id <= %s"
        cursor.execute(
            f"INSERT INTO {_TABLE} ({_GROUP}, n) SELECT {_GROUP}, SUM(n) FROM {_TABLE}{bounded}"
            f" GROUP BY {_GROUP} HAVING COUNT(*) > 1 AND SUM(n) <> 0",
            [last],
        )
        written = cursor.rowcount
        cursor.execute(
            f"DELETE FROM {_TABLE}{bounded} AND ({_GROUP}) IN ({_FOLDABLE.format(where=bounded)})", [last, last]
        )
        return cursor.rowcount - written


def state_counts_rebuild(using: str = DEFAULT_DB_ALIAS) -> None:
    """Recount from the invoices, in one transaction: on PostgreSQL with the invoices locked against writers and
    compaction kept out (the same lock as the TRUNCATE trigger's), on SQLite under its single writer's lock."""
    db = connections[using]
    with transaction.atomic(using=using), db.cursor() as cursor:
        if db.vendor == "postgresql":
            cursor.execute("LOCK TABLE invoices_invoice IN SHARE ROW EXCLUSIVE MODE")
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [COMPACTION_LOCK])
        cursor.execute(f"DELETE FROM {_TABLE}")
        cursor.execute(_BACKFILL)


def sqlite_triggers_ensure(using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """SQLite: create again the triggers that a rebuild of ``invoices_invoice`` or ``companies_company`` dropped (or
    that differ from ``SQLITE_TRIGGERS``), and recount in the same transaction, since writes made without them were
    not counted; the names of the triggers it (re)created. Nothing to do elsewhere, nor before migration 0004."""
    db = connections[using]
    if db.vendor != "sqlite" or _TABLE not in db.introspection.table_names():
        return []
    with transaction.atomic(using=using), db.cursor() as cursor:
        cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'invoices_state_count%'"
        )
        installed = {name: _normalized(sql) for name, sql in cursor.fetchall()}
        stale = [name for name, sql in SQLITE_TRIGGERS.items() if installed.get(name) != _normalized(sql)]
        if not stale:
            return []
        for name in stale:
            cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
            cursor.execute(SQLITE_TRIGGERS[name])
        state_counts_rebuild(using)
    return stale
