"""Set-based writes: the upsert of one referential kind, and the rows an export writes a batch at a time.

A referential kind takes a constant number of statements whatever the number of items. The first pull of a kind
copies the items straight into its table (``COPY`` on PostgreSQL, one ``executemany`` on SQLite). Later pulls load
them into a temporary table, then one ``INSERT … SELECT … ON CONFLICT DO UPDATE … WHERE … IS DISTINCT FROM …``
writes what is new or changed and leaves unchanged rows untouched. What Sage no longer lists (the codes SFD holds,
compared in Python with the listing) becomes inactive in one ``UPDATE``. Nothing is deleted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, connection, connections, models

from .models import ReferentialItem


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


# Types whose values leave ``clean_item`` (and the exporter) ready for the driver, and types whose values repeat.
_READY_TYPES = frozenset(
    {
        "CharField", "TextField", "BooleanField", "ForeignKey",
        "IntegerField", "SmallIntegerField", "BigIntegerField", "PositiveIntegerField", "PositiveSmallIntegerField",
    }
)  # fmt: skip
_HASHABLE_TYPES = frozenset({"DateTimeField", "DateField", "DecimalField"})


def _preparer(field: models.Field) -> Callable[[object], object]:
    """How a value of ``field`` reaches the driver: ``get_db_prep_save``, skipped where it is the identity for clean
    values (1.5 million calls for 100 000 suppliers were most of a large pull) and remembered for values that repeat
    (a batch's timestamps are one ``now``)."""
    real = connections[DEFAULT_DB_ALIAS]
    kind = field.get_internal_type()
    if kind in _READY_TYPES:
        return lambda value: value
    if kind in _HASHABLE_TYPES:
        cache: dict = {}

        def remembered(value):
            if value not in cache:
                cache[value] = field.get_db_prep_save(value, real)
            return cache[value]

        return remembered
    return lambda value: field.get_db_prep_save(value, real)


def _row_maker(model: type[ReferentialItem], fields: list, company_id: int) -> Callable[[dict], list]:
    """A function turning a cleaned item into its row: Sage's fields from the item, the others constant."""
    from_item = set(model.SAGE_FIELDS) | {"code"}
    constants = {f.attname: f.get_default() for f in fields} | {"company_id": company_id, "gone_upstream_at": None}
    plan = []
    for f in fields:
        if f.attname in from_item:
            plan.append((f.attname, _preparer(f)))
        else:
            plan.append((f.attname, None))
            constants[f.attname] = _preparer(f)(constants[f.attname])

    def row(item: dict) -> list:
        return [constants[name] if prep is None else prep(item.get(name, constants[name])) for name, prep in plan]

    return row


def referential_codes_held(model: type[ReferentialItem], company_id: int) -> tuple[set[str], set[str]]:
    """The codes of one kind SFD holds for a company: ``(still in Sage, marked gone)``, in one query (the codes as two
    texts, as ``_deactivate_gone`` reads them)."""
    meta = model._meta
    q = _quote
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
    model: type[ReferentialItem], company_id: int, present_codes: set[str], now: dt.datetime, *, staging: str
) -> int:
    """Mark inactive and gone what SFD holds and Sage no longer lists; how many.

    The difference is taken in Python on the codes SFD holds: one linear read whatever the planner thinks, where an
    anti-join chose a nested loop on a table loaded moments ago and not yet analysed (minutes for 100 000 codes).
    The codes come as one text (a code holds no control character: the gateway refuses them), a third quicker
    than 100 000 rows.
    """
    meta = model._meta
    q = _quote
    target = meta.db_table
    company_column = meta.get_field("company").column
    code_column = meta.get_field("code").column
    joined = "string_agg" if connection.vendor == "postgresql" else "group_concat"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {joined}({q(code_column)}, %s) FROM {q(target)}"
            f" WHERE {q(company_column)} = %s AND {q('gone_upstream_at')} IS NULL",
            ["\n", company_id],
        )
        (codes,) = cursor.fetchone()
    stored = codes.split("\n") if codes else []
    if present_codes.issuperset(stored):
        return 0
    gone = set(stored).difference(present_codes)
    _create_temp(staging, target, [code_column])
    _load(staging, [code_column], ((code,) for code in gone))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {q(target)} SET {q('active')} = %s, {q('gone_upstream_at')} = %s"
            f" WHERE {q(company_column)} = %s AND {q('gone_upstream_at')} IS NULL"
            f" AND {q(code_column)} IN (SELECT {q(code_column)} FROM {q(staging)})",
            [False, connection.ops.adapt_datetimefield_value(now), company_id],
        )
        return cursor.rowcount


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
    row = _row_maker(model, fields, company_id)

    counts = UpsertCounts(received=len(items))
    switched_off = gone = 0
    # The company has none of this kind yet (its first pull): every item is new, straight into the table. When
    # nothing changed upstream there is nothing to write, and no need to ask.
    first = bool(items) and not model.objects.filter(company_id=company_id).exists()
    try:
        if first:
            _load(target, columns, (row(item) for item in items))
            counts.created = len(items)
        elif items:
            _create_temp(staging, target, columns)
            _load(staging, columns, (row(item) for item in items))
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
            gone = _deactivate_gone(model, company_id, present_codes, now, staging=present)
    finally:
        _drop(staging, present)
    counts.deactivated = switched_off + gone
    counts.unchanged = counts.received - counts.created - counts.updated
    return counts


def rows_update(model: type[models.Model], fields: list[str], rows: Iterable[tuple]) -> None:
    """Set ``fields`` row by row, each row being ``(pk, *values)``, where ``bulk_update``'s ``CASE … WHEN`` spent
    seconds compiling a few hundred rows: one ``UPDATE … FROM unnest(…)`` on PostgreSQL (one array per column, so
    that the statement stays short and the driver does not parse thousands of placeholders), ``executemany``
    elsewhere.

    Like ``bulk_update``, it neither calls ``save()`` nor touches ``auto_now`` fields that are not named.
    """
    meta = model._meta
    targets = [meta.get_field(name) for name in fields]
    preparers = [_preparer(field) for field in targets]
    prepared = [
        [pk, *(prepare(value) for prepare, value in zip(preparers, values, strict=True))] for pk, *values in rows
    ]
    if not prepared:
        return
    table, pk = _quote(meta.db_table), _quote(meta.pk.column)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            types = [meta.pk.db_type(connection), *(field.db_type(connection) for field in targets)]
            arrays = ", ".join(f"%s::{kind.split('(')[0]}[]" for kind in types)
            names = ", ".join(f"c{index}" for index in range(len(types)))
            assignments = ", ".join(f"{_quote(field.column)} = v.c{index + 1}" for index, field in enumerate(targets))
            columns = [list(column) for column in zip(*prepared, strict=True)]
            # The keys twice: as a join, and as a condition that reads the rows through the primary key (without
            # it, a join with an unnest of unknown size may read the whole table).
            cursor.execute(
                f"UPDATE {table} SET {assignments} FROM unnest({arrays}) AS v({names})"
                f" WHERE {table}.{pk} = v.c0 AND {table}.{pk} = ANY(%s::{types[0].split('(')[0]}[])",
                [*columns, columns[0]],
            )
        else:
            assignments = ", ".join(f"{_quote(field.column)} = %s" for field in targets)
            statement = f"UPDATE {table} SET {assignments} WHERE {pk} = %s"
            cursor.executemany(statement, [[*values, pk_value] for pk_value, *values in prepared])


def rows_copy(model: type[models.Model], fields: list[str], rows: Iterable[tuple]) -> None:
    """Insert plain tuples, the values of ``fields`` in order: one ``COPY`` on PostgreSQL, ``executemany``
    elsewhere. No model instance per row, no ``pre_save``: every value is given. (``bulk_create`` escapes every text of
    a batch in Python for its ``UNNEST`` arrays: 30 ms for the 200 JSON payloads of an export batch.)"""
    meta = model._meta
    targets = [meta.get_field(name) for name in fields]
    preparers = [_preparer(field) for field in targets]
    _load(
        meta.db_table,
        [field.column for field in targets],
        ([prepare(value) for prepare, value in zip(preparers, row, strict=True)] for row in rows),
    )
