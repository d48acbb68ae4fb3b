"""Generic set-based SQL, below every app: ``COPY`` and ``UPDATE … FROM unnest`` on PostgreSQL, ``executemany``
elsewhere. No model of any app is named here: the callers pass theirs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

from django.db import DEFAULT_DB_ALIAS, connection, connections, models

from .lookups import array_param


def quote_name(name: str) -> str:
    return connection.ops.quote_name(name)


def rows_load(table: str, columns: list[str], rows: Iterable[tuple]) -> None:
    column_list = ", ".join(quote_name(c) for c in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {quote_name(table)} ({column_list}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            placeholders = ", ".join(["%s"] * len(columns))
            cursor.executemany(f"INSERT INTO {quote_name(table)} ({column_list}) VALUES ({placeholders})", list(rows))


def temp_table_create(table: str, source: str, columns: list[str]) -> None:
    column_list = ", ".join(quote_name(c) for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {quote_name(table)}")
        source_sql = f"SELECT {column_list} FROM {quote_name(source)} WHERE 1 = 0"
        cursor.execute(f"CREATE TEMPORARY TABLE {quote_name(table)} AS {source_sql}")


def tables_drop(*tables: str) -> None:
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"DROP TABLE IF EXISTS {quote_name(table)}")


# Types whose values leave ``clean_item`` (and the exporter) ready for the driver, and types whose values repeat.
_READY_TYPES = frozenset(
    {
        "CharField", "TextField", "BooleanField", "ForeignKey",
        "IntegerField", "SmallIntegerField", "BigIntegerField", "PositiveIntegerField", "PositiveSmallIntegerField",
    }
)  # fmt: skip
_HASHABLE_TYPES = frozenset({"DateTimeField", "DateField", "DecimalField"})


class JsonText(str):
    """A JSON value already encoded (the exporter encodes each entry once, for its item and for the HTTP body):
    written into a JSON column as it is."""

    __slots__ = ()


def _ready(value):
    return value


def value_preparer(field: models.Field) -> Callable[[object], object]:
    """How a value of ``field`` reaches the driver: ``get_db_prep_save``, skipped where it is the identity for clean
    values (1.5 million calls for 100 000 suppliers were most of a large pull) and remembered for values that repeat
    (a batch's timestamps are one ``now``)."""
    real = connections[DEFAULT_DB_ALIAS]
    kind = field.get_internal_type()
    if kind in _READY_TYPES:
        return _ready
    if kind == "JSONField":
        return lambda value: value if isinstance(value, JsonText) else field.get_db_prep_save(value, real)
    if kind in _HASHABLE_TYPES:
        cache: dict = {}

        def remembered(value):
            if value not in cache:
                cache[value] = field.get_db_prep_save(value, real)
            return cache[value]

        return remembered
    return lambda value: field.get_db_prep_save(value, real)


# Values that are the same whatever their type's equality says only when their types match too (``1 == True``); a
# ``Decimal`` is left out (``1.0 == 1.00``, but its text is not the same).
_CONSTANT_TYPES = (str, int, bool, dt.datetime, dt.date, type(None))


def _constant(column: list) -> bool:
    first = column[0]
    kind = type(first)
    return kind in _CONSTANT_TYPES and all(type(value) is kind and value == first for value in column)


def rows_update(model: type[models.Model], fields: list[str], rows: Iterable[tuple]) -> None:
    """Set ``fields`` row by row, each row being ``(pk, *values)``, where ``bulk_update``'s ``CASE … WHEN`` spent
    seconds compiling a few hundred rows: one ``UPDATE … FROM unnest(…)`` on PostgreSQL (one array per column, so
    that the statement stays short and the driver does not parse thousands of placeholders), ``executemany``
    elsewhere.

    Like ``bulk_update``, it neither calls ``save()`` nor touches ``auto_now`` fields that are not named.
    """
    meta = model._meta
    targets = [meta.get_field(name) for name in fields]
    preparers = [value_preparer(field) for field in targets]
    if all(prepare is _ready for prepare in preparers):
        prepared = [list(row) for row in rows]
        if any(len(row) != len(targets) + 1 for row in prepared):
            raise ValueError(f"rows_update: each row is the key and {len(targets)} values")
    else:
        prepared = [
            [pk, *(prepare(value) for prepare, value in zip(preparers, values, strict=True))] for pk, *values in rows
        ]
    if not prepared:
        return
    table, pk = quote_name(meta.db_table), quote_name(meta.pk.column)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            types = [meta.pk.db_type(connection).split("(")[0], *(f.db_type(connection).split("(")[0] for f in targets)]
            columns = [list(column) for column in zip(*prepared, strict=True)]
            # A column whose value is the same on every row (a batch's status, its ``now``) is one parameter, not an
            # array: psycopg adapts an array's values one by one in Python (the largest share of the export's own
            # CPU in these statements).
            params: dict[str, object] = {"keys": array_param(columns[0])}
            unnested, assignments = ["%(keys)s::" + types[0] + "[]"], []
            for index, (field, kind, column) in enumerate(zip(targets, types[1:], columns[1:], strict=True), start=1):
                if _constant(column):
                    params[f"c{index}"] = column[0]
                    assignments.append(f"{quote_name(field.column)} = %(c{index})s::{kind}")
                else:
                    params[f"c{index}"] = array_param(column)
                    unnested.append(f"%(c{index})s::{kind}[]")
                    assignments.append(f"{quote_name(field.column)} = v.c{len(unnested) - 1}")
            names = ", ".join(f"c{index}" for index in range(len(unnested)))
            # The keys twice (one parameter, adapted once): as a join, and as a condition that reads the rows through
            # the primary key (without it, a join with an unnest of unknown size may read the whole table).
            cursor.execute(
                f"UPDATE {table} SET {', '.join(assignments)} FROM unnest({', '.join(unnested)}) AS v({names})"
                f" WHERE {table}.{pk} = v.c0 AND {table}.{pk} = ANY(%(keys)s::{types[0]}[])",
                params,
            )
        else:
            assignments = ", ".join(f"{quote_name(field.column)} = %s" for field in targets)
            statement = f"UPDATE {table} SET {assignments} WHERE {pk} = %s"
            cursor.executemany(statement, [[*values, pk_value] for pk_value, *values in prepared])


def rows_copy(model: type[models.Model], fields: list[str], rows: Iterable[tuple]) -> None:
    """Insert plain tuples, the values of ``fields`` in order: one ``COPY`` on PostgreSQL, ``executemany``
    elsewhere. No model instance per row, no ``pre_save``: every value is given. (``bulk_create`` escapes every text of
    a batch in Python for its ``UNNEST`` arrays: 30 ms for the 200 JSON payloads of an export batch.)"""
    meta = model._meta
    targets = [meta.get_field(name) for name in fields]
    preparers = [value_preparer(field) for field in targets]
    # Only the columns that need it are prepared (most leave the exporter ready: a batch's 200 items × 15 columns).
    to_prepare = [(index, prepare) for index, prepare in enumerate(preparers) if prepare is not _ready]
    if not to_prepare:
        prepared: Iterable = rows
    else:

        def prepared_rows():
            for row in rows:
                values = list(row)
                if len(values) != len(preparers):
                    raise ValueError(f"{len(values)} values for {len(preparers)} columns")
                for index, prepare in to_prepare:
                    values[index] = prepare(values[index])
                yield values

        prepared = prepared_rows()
    rows_load(meta.db_table, [field.column for field in targets], prepared)
