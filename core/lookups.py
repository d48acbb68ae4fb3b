"""``field__any=[…]``: ``field = ANY(%s)`` with the list as one array parameter on PostgreSQL.

``pk__in=[200 ids]`` names each value with a placeholder of its own: Django prepares every value, psycopg parses a
statement too long for its cache and adapts each parameter, for every batch of the export (a third of its CPU in the
profile of issue 17). With one array the statement's text never changes. Elsewhere (SQLite) it is ``IN``.
"""

from __future__ import annotations

from django.db.models import Field, ForeignObject, Lookup


class AnyOf(Lookup):
    lookup_name = "any"
    prepare_rhs = False

    def get_prep_lookup(self):
        # The values go to the database as they are (no per-value preparation: that is the point), so only keys
        # that need none are taken: integers and strings. A model instance or a date would match wrongly: refused.
        values = list(self.rhs)
        if not {type(value) for value in values} <= _KEY_TYPES and not all(
            isinstance(value, (int, str)) and not isinstance(value, bool) for value in values
        ):
            raise TypeError("__any takes integers or strings (keys), not model instances or other values")
        return values

    def process_rhs(self, compiler, connection):
        return "%s", [self.rhs]

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = _within(self.rhs, _BOUNDS["bigint"])
        if not values:
            return "1 = 0", []
        placeholders = ", ".join(["%s"] * len(values))
        return f"{lhs} IN ({placeholders})", [*lhs_params, *values]

    def as_postgresql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        kind = self.lhs.output_field.db_type(connection).split("(")[0]
        values = _within(self.rhs, _BOUNDS.get(kind))
        return f"{lhs} = ANY(%s::{kind}[])", [*lhs_params, array_param(values)]


# An integer the column's type cannot hold matches no row: left out, as Django's ``in`` does, rather than an error
# of the database (« out of range for type bigint ») for a forged id of 30 digits.
_BOUNDS = {"smallint": 2**15, "integer": 2**31, "bigint": 2**63, "serial": 2**31, "bigserial": 2**63}


def _within(values: list, bound: int | None) -> list:
    if bound is None:
        return values
    return [value for value in values if type(value) is not int or -bound <= value < bound]


_KEY_TYPES = frozenset({int, str})


def array_param(values: list) -> list | str:
    """A list for a ``%s::<type>[]`` parameter on PostgreSQL: integers as the array's text (``{1,2,3}``, joined in C),
    since psycopg adapts a list's values one by one in Python (five times slower for a batch's 200 keys); anything
    else as the list itself, which psycopg quotes."""
    if values and all(type(value) is int for value in values):
        return "{" + ",".join(map(str, values)) + "}"
    return values


Field.register_lookup(AnyOf)
ForeignObject.register_lookup(AnyOf)
