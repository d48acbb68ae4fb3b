"""Set-based upsert of one referential kind: a constant number of statements whatever the number of items.

The rows go into a temporary table (``COPY`` on PostgreSQL, one ``executemany`` on SQLite), then one
``INSERT … SELECT … ON CONFLICT DO UPDATE … WHERE … IS DISTINCT FROM …`` writes what is new or changed and
leaves unchanged rows untouched, and one ``UPDATE`` deactivates what Sage no longer has. Nothing is deleted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection

from .models import ReferentialItem


@dataclass
class UpsertCounts:
    received: int = 0
    created: int = 0
    updated: int = 0
    deactivated: int = 0
    unchanged: int = 0

    def as_dict(self) -> dict:
        return {
            "received": self.received,
            "created": self.created,
            "updated": self.updated,
            "deactivated": self.deactivated,
            "unchanged": self.unchanged,
        }


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def _load(table: str, columns: list[str], rows: Iterable[tuple]) -> None:
    column_list = ", ".join(_quote(c) for c in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {_quote(table)} ({column_list}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            placeholders = ", ".join(["%s"] * len(columns))
            cursor.executemany(f"INSERT INTO {_quote(table)} ({column_list}) VALUES ({placeholders})", list(rows))


def _create_temp(table: str, source: str, columns: list[str]) -> None:
    column_list = ", ".join(_quote(c) for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {_quote(table)}")
        source_sql = f"SELECT {column_list} FROM {_quote(source)} WHERE 1 = 0"
        cursor.execute(f"CREATE TEMPORARY TABLE {_quote(table)} AS {source_sql}")


def _drop(*tables: str) -> None:
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"DROP TABLE IF EXISTS {_quote(table)}")


def referential_upsert(
    model: type[ReferentialItem],
    *,
    company_id: int,
    items: list[dict],
    present_codes: set[str],
    now: dt.datetime,
) -> UpsertCounts:
    """Write ``items`` (cleaned by the gateway) and deactivate what is not in ``present_codes``.

    Must run inside a transaction. ``present_codes`` is every code Sage still has (a full listing), including
    the codes of items too malformed to store: those exist upstream and must not be deactivated.
    """
    meta = model._meta
    target = meta.db_table
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    columns = [f.column for f in fields]
    sage_columns = [meta.get_field(name).column for name in model.SAGE_FIELDS]
    staging = f"tmp_pull_{target}"
    present = f"tmp_present_{target}"
    company_column = meta.get_field("company").column
    code_column = meta.get_field("code").column
    q = _quote

    defaults = {f.attname: f.get_default() for f in fields}

    def prepared(item: dict) -> tuple:
        values = defaults | {"company_id": company_id, "gone_upstream_at": None}
        values.update({name: item[name] for name in model.SAGE_FIELDS if name in item})
        values["code"] = item["code"]
        return tuple(f.get_db_prep_save(values[f.attname], connection) for f in fields)

    counts = UpsertCounts(received=len(items))
    try:
        _create_temp(staging, target, columns)
        _load(staging, columns, (prepared(item) for item in items))
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT"
                f" (SELECT COUNT(*) FROM {q(staging)} s WHERE NOT EXISTS (SELECT 1 FROM {q(target)} t"
                f"   WHERE t.{q(company_column)} = %s AND t.{q(code_column)} = s.{q(code_column)})),"
                f" (SELECT COUNT(*) FROM {q(staging)} s JOIN {q(target)} t"
                f"   ON t.{q(company_column)} = %s AND t.{q(code_column)} = s.{q(code_column)}"
                f"   WHERE t.{q('active')} AND NOT s.{q('active')})",
                [company_id, company_id],
            )
            counts.created, switched_off = cursor.fetchone()
            distinct = "IS DISTINCT FROM"
            changed = " OR ".join(f"{q(target)}.{q(c)} {distinct} excluded.{q(c)}" for c in sage_columns)
            assignments = ", ".join(f"{q(c)} = excluded.{q(c)}" for c in [*sage_columns, "gone_upstream_at"])
            column_list = ", ".join(q(c) for c in columns)
            cursor.execute(
                f"INSERT INTO {q(target)} ({column_list}) SELECT {column_list} FROM {q(staging)} WHERE 1 = 1"
                f" ON CONFLICT ({q(company_column)}, {q(code_column)}) DO UPDATE SET {assignments}"
                f" WHERE {changed} OR {q(target)}.{q('gone_upstream_at')} IS NOT NULL"
            )
            written = cursor.rowcount
        counts.updated = written - counts.created

        _create_temp(present, target, [code_column])
        _load(present, [code_column], ((code,) for code in present_codes))
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {q(target)} SET {q('active')} = %s, {q('gone_upstream_at')} = %s"
                f" WHERE {q(company_column)} = %s AND {q('gone_upstream_at')} IS NULL"
                f" AND {q(code_column)} NOT IN (SELECT {q(code_column)} FROM {q(present)})",
                [False, connection.ops.adapt_datetimefield_value(now), company_id],
            )
            gone = cursor.rowcount
    finally:
        _drop(staging, present)
    counts.deactivated = switched_off + gone
    counts.unchanged = counts.received - counts.created - counts.updated
    return counts
