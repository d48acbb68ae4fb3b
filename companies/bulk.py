"""Set-based writes of the referential: the upsert of one kind (the generic ``COPY`` and ``UPDATE … FROM unnest`` are
``core.bulk``'s).

A referential kind takes a constant number of statements whatever the number of items. The first pull of a kind
copies the items straight into its table (``COPY`` on PostgreSQL, one ``executemany`` on SQLite). Later pulls load
them into a temporary table, then one ``INSERT … SELECT … ON CONFLICT DO UPDATE … WHERE … IS DISTINCT FROM …``
writes what is new or changed and leaves unchanged rows untouched. What Sage no longer lists (the codes SFD holds,
compared in Python with the listing) becomes inactive in one ``UPDATE``. Nothing is deleted.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection

from core.bulk import quote_name, rows_load, tables_drop, temp_table_create, value_preparer

from .models import ReferentialItem

# Types whose values leave ``clean_item`` ready for the driver (``core.bulk.value_preparer`` passes them as they are).
_READY_TYPES = frozenset({"CharField", "TextField", "BooleanField", "IntegerField", "PositiveIntegerField"})


@dataclass
class UpsertCounts:
    received: int = 0
    created: int = 0
    updated: int = 0
    deactivated: int = 0
    unchanged: int = 0
    # Among ``updated``: items SFD had marked gone from Sage, listed again.
    reactivated: int = 0

    def as_dict(self) -> dict:
        return {
            "received": self.received,
            "created": self.created,
            "updated": self.updated,
            "deactivated": self.deactivated,
            "unchanged": self.unchanged,
            "reactivated": self.reactivated,
        }


def _row_maker(model: type[ReferentialItem], fields: list, company_id: int) -> Callable[[dict], list]:
    """A function turning a cleaned item into its row: Sage's fields from the item, the others constant."""
    from_item = set(model.SAGE_FIELDS) | {"code"}
    constants = {f.attname: f.get_default() for f in fields} | {"company_id": company_id, "gone_upstream_at": None}
    # Each column read by name from the item laid over the defaults, the columns SFD sets laid over both; then the
    # few that need Django's preparation (timestamps, decimals) prepared, the others being ready as they are.
    defaults = {f.attname: constants[f.attname] for f in fields if f.attname in from_item}
    forced = {f.attname: value_preparer(f)(constants[f.attname]) for f in fields if f.attname not in from_item}
    getter = operator.itemgetter(*(f.attname for f in fields))
    preparers = tuple(
        (index, value_preparer(f))
        for index, f in enumerate(fields)
        if f.attname in from_item and f.get_internal_type() not in _READY_TYPES
    )

    def row(item: dict) -> list:
        merged = defaults | item
        merged.update(forced)
        values = list(getter(merged))
        for index, prepare in preparers:
            values[index] = prepare(values[index])
        return values

    return row


def referential_codes_held(model: type[ReferentialItem], company_id: int) -> tuple[set[str], set[str]]:
    """The codes of one kind SFD holds for a company: ``(still in Sage, marked gone)``, in one query (the codes as two
    texts, as ``_deactivate_gone`` reads them)."""
    meta = model._meta
    q = quote_name
    company_column = meta.get_field("company").column
    code_column = meta.get_field("code").column
    joined = "string_agg" if connection.vendor == "postgresql" else "group_concat"
    gone = q("gone_upstream_at")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {joined}(CASE WHEN {gone} IS NULL THEN {q(code_column)} END, %s),"
            f" {joined}(CASE WHEN {gone} IS NOT NULL THEN {q(code_column)} END, %s)"
            f" FROM {q(meta.db_table)} WHERE {q(company_column)} = %s",
            ["\n", "\n", company_id],
        )
        present, marked = cursor.fetchone()
    return set(present.split("\n")) if present else set(), set(marked.split("\n")) if marked else set()


def _deactivate_gone(
    model: type[ReferentialItem],
    company_id: int,
    present_codes: set[str],
    now: dt.datetime,
    *,
    staging: str,
    stored: set[str] | None = None,
) -> int:
    """Mark inactive and gone what SFD holds and Sage no longer lists; how many.

    The difference is taken in Python on the codes SFD holds: one linear read whatever the planner thinks, where an
    anti-join chose a nested loop on a table loaded moments ago and not yet analysed (minutes for 100 000 codes).
    The codes come as one text (a code holds no control character: the gateway refuses them), a third quicker
    than 100 000 rows. ``stored``: the codes not marked gone, when the caller knows them already (read under the
    company's lease, which no other writer of the referential holds): not read a second time.
    """
    meta = model._meta
    q = quote_name
    target = meta.db_table
    company_column = meta.get_field("company").column
    code_column = meta.get_field("code").column
    if stored is None:
        joined = "string_agg" if connection.vendor == "postgresql" else "group_concat"
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {joined}({q(code_column)}, %s) FROM {q(target)}"
                f" WHERE {q(company_column)} = %s AND {q('gone_upstream_at')} IS NULL",
                ["\n", company_id],
            )
            (codes,) = cursor.fetchone()
        stored = set(codes.split("\n")) if codes else set()
    if present_codes.issuperset(stored):
        return 0
    gone = stored.difference(present_codes)
    temp_table_create(staging, target, [code_column])
    try:
        rows_load(staging, [code_column], ((code,) for code in gone))
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {q(target)} SET {q('active')} = %s, {q('gone_upstream_at')} = %s"
                f" WHERE {q(company_column)} = %s AND {q('gone_upstream_at')} IS NULL"
                f" AND {q(code_column)} IN (SELECT {q(code_column)} FROM {q(staging)})",
                [False, connection.ops.adapt_datetimefield_value(now), company_id],
            )
            return cursor.rowcount
    finally:
        tables_drop(staging)


def referential_upsert(
    model: type[ReferentialItem],
    *,
    company_id: int,
    items: list[dict],
    present_codes: set[str],
    now: dt.datetime,
    held_codes: set[str] | None = None,
) -> UpsertCounts:
    """Write ``items`` (cleaned by the gateway) and deactivate what is not in ``present_codes``.

    Must run inside a transaction. ``present_codes`` is every code Sage still has (a full listing), including
    the codes of items too malformed to store: those exist upstream and must not be deactivated. ``held_codes``:
    the codes of this kind SFD held not marked gone, read by a caller that holds the company's lease
    (``referential_codes_held``); without them they are read again after the items are written.
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
    q = quote_name
    row = _row_maker(model, fields, company_id)

    counts = UpsertCounts(received=len(items))
    switched_off = gone = 0
    # The company has none of this kind yet (its first pull): every item is new, straight into the table. When
    # nothing changed upstream there is nothing to write, and no need to ask.
    first = bool(items) and not model.objects.filter(company_id=company_id).exists()
    staging_created = False
    try:
        if first:
            rows_load(target, columns, (row(item) for item in items))
            counts.created = len(items)
        elif items:
            staging_created = True
            temp_table_create(staging, target, columns)
            rows_load(staging, columns, (row(item) for item in items))
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT"
                    f" (SELECT COUNT(*) FROM {q(staging)} s WHERE NOT EXISTS (SELECT 1 FROM {q(target)} t"
                    f"   WHERE t.{q(company_column)} = %s AND t.{q(code_column)} = s.{q(code_column)})),"
                    f" (SELECT COUNT(*) FROM {q(staging)} s JOIN {q(target)} t"
                    f"   ON t.{q(company_column)} = %s AND t.{q(code_column)} = s.{q(code_column)}"
                    f"   WHERE t.{q('active')} AND NOT s.{q('active')}),"
                    f" (SELECT COUNT(*) FROM {q(staging)} s JOIN {q(target)} t"
                    f"   ON t.{q(company_column)} = %s AND t.{q(code_column)} = s.{q(code_column)}"
                    f"   WHERE t.{q('gone_upstream_at')} IS NOT NULL)",
                    [company_id, company_id, company_id],
                )
                counts.created, switched_off, counts.reactivated = cursor.fetchone()
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

        # After a first pull, the table holds exactly the items: none can be missing from Sage's listing.
        if not first or not present_codes.issuperset(item["code"] for item in items):
            # What SFD holds once the items are written: what it held, and every item (new, or no longer gone).
            stored = None if held_codes is None else held_codes.union(item["code"] for item in items)
            gone = _deactivate_gone(model, company_id, present_codes, now, staging=present, stored=stored)
    finally:
        if staging_created:
            tables_drop(staging)
    counts.deactivated = switched_off + gone
    counts.unchanged = counts.received - counts.created - counts.updated
    return counts
