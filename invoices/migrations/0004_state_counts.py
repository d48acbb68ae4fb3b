"""``InvoiceStateCount``: an exact count of invoices per company, notion and state, kept by the database itself.

Triggers on ``invoices_invoice`` append the deltas of every statement that inserts, deletes or changes the state or
company of invoices, in that statement's transaction; whatever the writer (the ORM, ``bulk_update``,
``UPDATE … FROM unnest``, ``COPY``), the counter commits or rolls back with the rows it counts. The SQL is written
here, frozen with the migration; ``invoices/counters.py`` explains why the count is exact and folds the deltas.

- PostgreSQL: statement-level triggers with transition tables, one aggregated row per (company, notion, state)
  a statement changes (a million-row ``INSERT … SELECT`` appends a handful of rows, not a million); an UPDATE
  nets its old rows (−1) against its new rows (+1), so rows whose state and company did not change cancel out
  and nothing is written for them. ``TRUNCATE`` empties the counter (after waiting for a running compaction:
  the same advisory lock as ``state_counts_compact``).
- SQLite: row-level triggers (SQLite has no statement-level ones); an UPDATE writes only when the state or the
  company changed. Django's ``flush`` on SQLite is a ``DELETE FROM`` per table in any order: deleting a company
  deletes its counter rows, and deleting an invoice of a company already deleted writes nothing, so the
  counter ends empty whatever the order.

The counter is filled from the existing rows in the same transaction, the table locked against writers first.

SQLite drops a table's triggers with the table, and Django rebuilds a table on SQLite for most changes of a field:
after every ``migrate``, ``invoices.counters.sqlite_triggers_ensure`` (``post_migrate``) creates again those missing
and recounts. ``tests/test_state_counts.py`` checks that they are there after all the migrations.
"""

# ruff: noqa: S608 - constant SQL: table and column names of this migration, no value from outside.
import django.db.models.deletion
from django.db import migrations, models

# invoices.counters.COMPACTION_LOCK (a copy: a migration does not import the code it predates).
COMPACTION_LOCK = 1607826046

UNPIVOT = "CROSS JOIN LATERAL (VALUES ('export', r.export_state), ('update', r.update_state)) AS s(notion, state)"
COUNTS = "invoices_invoicestatecount (company_id, notion, state, n)"

POSTGRES_FORWARD = [
    "LOCK TABLE invoices_invoice IN SHARE ROW EXCLUSIVE MODE",
    f"""
    CREATE FUNCTION invoices_state_count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO {COUNTS}
        SELECT r.company_id, s.notion, s.state, COUNT(*) FROM new_rows r {UNPIVOT}
        WHERE s.state <> '' GROUP BY 1, 2, 3;
        RETURN NULL;
    END $$
    """,
    f"""
    CREATE FUNCTION invoices_state_count_delete() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO {COUNTS}
        SELECT r.company_id, s.notion, s.state, -COUNT(*) FROM old_rows r {UNPIVOT}
        WHERE s.state <> '' GROUP BY 1, 2, 3;
        RETURN NULL;
    END $$
    """,
    f"""
    CREATE FUNCTION invoices_state_count_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO {COUNTS}
        SELECT r.company_id, s.notion, s.state, SUM(r.sign)
        FROM (
            SELECT company_id, export_state, update_state, -1 AS sign FROM old_rows
            UNION ALL
            SELECT company_id, export_state, update_state, 1 FROM new_rows
        ) r {UNPIVOT}
        WHERE s.state <> '' GROUP BY 1, 2, 3 HAVING SUM(r.sign) <> 0;
        RETURN NULL;
    END $$
    """,
    f"""
    CREATE FUNCTION invoices_state_count_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        -- A compaction in progress commits first; this DELETE, a statement of its own, then sees its rows.
        PERFORM pg_advisory_xact_lock({COMPACTION_LOCK});
        DELETE FROM invoices_invoicestatecount;
        RETURN NULL;
    END $$
    """,
    "CREATE TRIGGER invoices_state_count_insert AFTER INSERT ON invoices_invoice REFERENCING NEW TABLE AS new_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION invoices_state_count_insert()",
    "CREATE TRIGGER invoices_state_count_delete AFTER DELETE ON invoices_invoice REFERENCING OLD TABLE AS old_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION invoices_state_count_delete()",
    "CREATE TRIGGER invoices_state_count_update AFTER UPDATE ON invoices_invoice"
    " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION invoices_state_count_update()",
    "CREATE TRIGGER invoices_state_count_truncate AFTER TRUNCATE ON invoices_invoice"
    " FOR EACH STATEMENT EXECUTE FUNCTION invoices_state_count_truncate()",
]

POSTGRES_REVERSE = [
    *(f"DROP TRIGGER IF EXISTS invoices_state_count_{event} ON invoices_invoice" for event in
      ("insert", "delete", "update", "truncate")),
    *(f"DROP FUNCTION IF EXISTS invoices_state_count_{event}()" for event in ("insert", "delete", "update", "truncate")),
]  # fmt: skip


def _sqlite_deltas(row: str, sign: int, *, on_update: bool = False) -> str:
    """One delta per notion of ``row`` (NEW or OLD) whose state is not empty (and, on UPDATE, that moved)."""
    parts = []
    for notion, column in (("export", "export_state"), ("update", "update_state")):
        condition = f"{row}.{column} <> ''"
        if on_update:
            condition += f" AND (OLD.company_id IS NOT NEW.company_id OR OLD.{column} IS NOT NEW.{column})"
        parts.append(f"SELECT {row}.company_id, '{notion}', {row}.{column}, {sign} WHERE {condition}")
    return f"INSERT INTO {COUNTS} " + " UNION ALL ".join(parts) + ";"


# The same text as invoices.counters.SQLITE_TRIGGERS today (which post_migrate keeps installed from then on).
SQLITE_FORWARD = [
    f"CREATE TRIGGER invoices_state_count_insert AFTER INSERT ON invoices_invoice BEGIN {_sqlite_deltas('NEW', 1)} END",
    # A company already gone (Django's flush deletes tables in any order): its counter rows went with it.
    "CREATE TRIGGER invoices_state_count_delete AFTER DELETE ON invoices_invoice"
    " WHEN EXISTS (SELECT 1 FROM companies_company WHERE id = OLD.company_id)"
    f" BEGIN {_sqlite_deltas('OLD', -1)} END",
    "CREATE TRIGGER invoices_state_count_update AFTER UPDATE OF company_id, export_state, update_state"
    " ON invoices_invoice WHEN OLD.company_id IS NOT NEW.company_id"
    " OR OLD.export_state IS NOT NEW.export_state OR OLD.update_state IS NOT NEW.update_state"
    f" BEGIN {_sqlite_deltas('OLD', -1, on_update=True)} {_sqlite_deltas('NEW', 1, on_update=True)} END",
    "CREATE TRIGGER invoices_state_count_company_delete AFTER DELETE ON companies_company"
    " BEGIN DELETE FROM invoices_invoicestatecount WHERE company_id = OLD.id; END",
]

SQLITE_REVERSE = [
    f"DROP TRIGGER IF EXISTS invoices_state_count_{event}" for event in ("insert", "delete", "update", "company_delete")
]

BACKFILL = f"""
    INSERT INTO {COUNTS}
    SELECT company_id, 'export', export_state, COUNT(*) FROM invoices_invoice WHERE export_state <> ''
    GROUP BY company_id, export_state
    UNION ALL
    SELECT company_id, 'update', update_state, COUNT(*) FROM invoices_invoice WHERE update_state <> ''
    GROUP BY company_id, update_state
"""


def _statements(schema_editor, postgres: list[str], sqlite: list[str]) -> list[str]:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        return postgres
    if vendor == "sqlite":
        return sqlite
    raise NotImplementedError(f"invoice state counters: no triggers for {vendor}")


def forward(apps, schema_editor):
    for statement in _statements(schema_editor, POSTGRES_FORWARD, SQLITE_FORWARD):
        schema_editor.execute(statement, params=None)
    schema_editor.execute(BACKFILL, params=None)


def reverse(apps, schema_editor):
    for statement in _statements(schema_editor, POSTGRES_REVERSE, SQLITE_REVERSE):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("companies", "0001_initial"),
        ("invoices", "0003_kind_labels"),
    ]

    operations = [
        migrations.CreateModel(
            name="InvoiceStateCount",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "notion",
                    models.CharField(choices=[("export", "export_state"), ("update", "update_state")], max_length=10),
                ),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("", "—"),
                            ("to_export", "à exporter"),
                            ("sending", "en cours"),
                            ("rejected", "anomalie"),
                            ("unknown", "à vérifier"),
                            ("done", "intégrée"),
                        ],
                        max_length=20,
                    ),
                ),
                ("n", models.BigIntegerField()),
                (
                    "company",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="companies.company",
                    ),
                ),
            ],
            options={
                "default_permissions": (),
                "indexes": [models.Index(fields=["company", "notion", "state"], name="invoice_state_count_key")],
            },
        ),
        migrations.RunPython(forward, reverse, elidable=False),
    ]
