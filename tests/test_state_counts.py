"""The counter of invoices per company, notion and state (``invoices.counters``), kept by database triggers: it must
equal ``COUNT(*) … GROUP BY company, state`` for each notion after any kind of write, on SQLite and PostgreSQL, and
under concurrency on PostgreSQL; the Visuel page's « Tout cocher (N écritures …) » reads it."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import threading
from html import unescape

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from companies.models import Company
from connectors.models import Connector
from core.bulk import rows_copy, rows_update
from invoices.counters import (
    COMPACTION_LOCK,
    SQLITE_TRIGGERS,
    sqlite_triggers_ensure,
    state_count,
    state_counts,
    state_counts_compact,
    state_counts_rebuild,
)
from invoices.models import ExportState, Invoice, InvoiceStateCount
from tests.conftest import give_companies, grant
from tests.support.polling import wait_for

pytestmark = pytest.mark.django_db

COLUMNS = {"export": "export_state", "update": "update_state"}
TRIGGERS = {"invoices_state_count_insert", "invoices_state_count_delete", "invoices_state_count_update"}
TO_EXPORT, SENDING, DONE, REJECTED, UNKNOWN = (
    ExportState.TO_EXPORT, ExportState.SENDING, ExportState.INTEGRATED, ExportState.REJECTED, ExportState.UNKNOWN
)  # fmt: skip


def table_counts() -> dict[tuple[int, str, str], int]:
    """What the counter must say: plain SQL on the invoices, independent of the counter's code."""
    counts = {}
    with connection.cursor() as cursor:
        for notion, column in COLUMNS.items():
            cursor.execute(
                f"SELECT company_id, {column}, COUNT(*) FROM invoices_invoice WHERE {column} <> '' GROUP BY 1, 2"
            )
            counts.update({(company, notion, state): n for company, state, n in cursor.fetchall()})
    return counts


def assert_exact() -> dict:
    expected = table_counts()
    assert state_counts() == expected
    return expected


def counter_rows() -> int:
    return InvoiceStateCount.objects.count()


@pytest.fixture
def companies(db):
    connector = Connector.objects.create(name="Compteurs", url="http://127.0.0.1:9", timeout_seconds=1)
    return [Company.objects.create(connector=connector, code=code, name=f"Société {code}") for code in "ABC"]


def invoice(company, number: str, export: str = "", update: str = "", day: int = 0) -> Invoice:
    return Invoice(
        company=company, number=number, export_state=export, update_state=update,
        invoice_date=dt.date(2026, 10, 1) + dt.timedelta(days=day % 20),
    )  # fmt: skip


def spread(companies, count: int, prefix: str = "S") -> list[Invoice]:
    states = itertools.cycle([TO_EXPORT, DONE, DONE, REJECTED, "", UNKNOWN, SENDING])
    updates = itertools.cycle(["", "", TO_EXPORT, "", DONE])
    return [
        invoice(companies[index % len(companies)], f"{prefix}-{index:05d}", next(states), next(updates), index)
        for index in range(count)
    ]


# --- the triggers --------------------------------------------------------------------------------------


def test_the_triggers_are_installed_after_every_migration():
    """SQLite drops a table's triggers when Django rebuilds the table (migration 0005 does): ``migrate`` creates them
    again (post_migrate)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = 'invoices_invoice'::regclass AND NOT tgisinternal"
            )
            names = {name for (name,) in cursor.fetchall()}
            assert names >= TRIGGERS | {"invoices_state_count_truncate"}
            cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = 'invoices_state_count_truncate'")
            assert f"pg_advisory_xact_lock({COMPACTION_LOCK})" in cursor.fetchone()[0]
        else:
            cursor.execute("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'")
            installed = {name: (table, " ".join(sql.split())) for name, table, sql in cursor.fetchall()}
            assert {name: installed.get(name, ("",))[0] for name in TRIGGERS} == dict.fromkeys(
                TRIGGERS, "invoices_invoice"
            )
            assert installed["invoices_state_count_company_delete"][0] == "companies_company"
            assert {name: installed[name][1] for name in SQLITE_TRIGGERS} == {
                name: " ".join(sql.split()) for name, sql in SQLITE_TRIGGERS.items()
            }


@pytest.mark.django_db(transaction=True)
def test_the_migration_counts_the_invoices_already_there(companies):
    Invoice.objects.bulk_create(spread(companies, 90))
    call_command("migrate", "invoices", "0003", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE invoices_invoice SET export_state = 'done' WHERE export_state = 'to_export'")
    expected = table_counts()
    call_command("migrate", "invoices", "0004", verbosity=0)
    assert state_counts() == expected and counter_rows() == len(expected)
    call_command("migrate", verbosity=0)  # and every later migration
    assert state_counts() == expected
    Invoice.objects.filter(export_state=DONE).update(export_state=REJECTED)  # the triggers are there
    assert_exact()


def test_sqlite_triggers_dropped_by_a_table_rebuild_come_back_with_a_recount(companies):
    """What Django does to a table on SQLite for most changes of a field: its triggers go; ``migrate`` then
    (post_migrate) creates them again and recounts what was written without them."""
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL keeps a table's triggers through ALTER TABLE")
    Invoice.objects.bulk_create(spread(companies, 40))
    assert sqlite_triggers_ensure() == []
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER invoices_state_count_insert")
        cursor.execute("DROP TRIGGER invoices_state_count_update")
    Invoice.objects.bulk_create(spread(companies, 25, prefix="U"))  # not counted
    Invoice.objects.update(export_state=DONE)
    assert state_counts() != table_counts()
    assert sorted(sqlite_triggers_ensure()) == ["invoices_state_count_insert", "invoices_state_count_update"]
    assert_exact()
    Invoice.objects.bulk_create(spread(companies, 5, prefix="V"))
    assert_exact()


def test_a_rebuild_recounts_from_the_invoices(companies):
    Invoice.objects.bulk_create(spread(companies, 50))
    InvoiceStateCount.objects.create(company=companies[0], notion="export", state=DONE, n=1000)  # a drift
    state_counts_rebuild()
    assert assert_exact() and counter_rows() == len(table_counts())


def test_orm_create_save_and_update(companies):
    a, b, _ = companies
    first = Invoice.objects.create(company=a, number="F-1", export_state=TO_EXPORT)
    Invoice.objects.create(company=a, number="F-2")  # a draft: nothing to say to Sage, not counted
    Invoice.objects.create(company=b, number="F-3", export_state=DONE, update_state=TO_EXPORT)
    assert assert_exact() == {(a.pk, "export", TO_EXPORT): 1, (b.pk, "export", DONE): 1, (b.pk, "update", TO_EXPORT): 1}
    first.export_state = SENDING
    first.save()
    first.label = "nothing the counter cares about"
    first.save()
    assert_exact()
    Invoice.objects.filter(company=a).update(export_state=REJECTED)  # the draft joins in
    Invoice.objects.filter(export_state=DONE).update(update_state=DONE, label="x")
    Invoice.objects.filter(company=b).update(label="y")
    assert assert_exact()[(a.pk, "export", REJECTED)] == 2
    Invoice.objects.filter(company=a).update(export_state="")
    assert (a.pk, "export", REJECTED) not in assert_exact()


def test_bulk_create_and_bulk_update(companies):
    created = Invoice.objects.bulk_create(spread(companies, 300), batch_size=70)
    assert_exact()
    for index, row in enumerate(created):
        row.export_state = [DONE, "", TO_EXPORT][index % 3]
        row.update_state = [TO_EXPORT, DONE][index % 2] if index % 5 else ""
    Invoice.objects.bulk_update(created, ["export_state", "update_state"], batch_size=90)
    assert_exact()
    Invoice.objects.bulk_update(created[:50], ["label"])  # no state changes: no delta
    assert_exact()


def test_deletion(companies):
    created = Invoice.objects.bulk_create(spread(companies, 60))
    created[0].delete()
    Invoice.objects.filter(pk__in=[row.pk for row in created[1:20]]).delete()
    assert_exact()
    Invoice.objects.all().delete()
    assert assert_exact() == {}


def test_a_change_of_company(companies):
    a, b, c = companies
    created = Invoice.objects.bulk_create(spread([a], 40))
    moving = created[0]
    moving.company = b
    moving.save(update_fields=["company"])
    Invoice.objects.filter(pk__in=[row.pk for row in created[1:10]]).update(company=c)
    Invoice.objects.filter(pk__in=[row.pk for row in created[10:15]]).update(company=b, export_state=DONE)
    counts = assert_exact()
    assert {company for company, _, _ in counts} == {a.pk, b.pk, c.pk}


def test_raw_update_from_unnest_and_copy(companies):
    """``core.bulk``: ``UPDATE … FROM unnest`` and ``COPY`` on PostgreSQL (``executemany`` on SQLite) — what
    the exporter writes with."""
    a, b, _ = companies
    rows = spread([a, b], 120, prefix="C")
    fields = [field for field in Invoice._meta.concrete_fields if not field.primary_key]
    rows_copy(Invoice, [field.attname for field in fields], [[f.pre_save(row, True) for f in fields] for row in rows])
    pks = dict(Invoice.objects.filter(number__startswith="C").values_list("number", "pk"))
    for row in rows:
        row.pk = pks[row.number]
    assert_exact()
    rows_update(
        Invoice,
        ["export_state", "update_state", "company"],
        [
            (row.pk, [SENDING, DONE, ""][i % 3], [DONE, ""][i % 2], [a.pk, b.pk][i % 2])
            for i, row in enumerate(rows[:90])
        ],
    )
    assert_exact()
    rows_update(Invoice, ["label"], [(row.pk, "same states") for row in rows])
    assert_exact()


def test_a_rolled_back_change_leaves_no_delta(companies):
    Invoice.objects.bulk_create(spread(companies, 30))
    before, rows = assert_exact(), counter_rows()
    with pytest.raises(RuntimeError), transaction.atomic():
        Invoice.objects.update(export_state=DONE)
        Invoice.objects.bulk_create(spread(companies, 10, prefix="R"))
        raise RuntimeError
    assert assert_exact() == before and counter_rows() == rows


def test_compaction_folds_into_one_row_per_state_and_drops_zeros(companies):
    a, b, _ = companies
    created = Invoice.objects.bulk_create(spread([a, b], 100))
    for row in created[:30]:
        Invoice.objects.filter(pk=row.pk).update(export_state=DONE)
    gone = Invoice.objects.create(company=b, number="GONE", export_state=UNKNOWN, update_state=SENDING)
    gone.delete()  # +1 then −1: a state that sums to nothing
    expected = assert_exact()
    before = counter_rows()
    folded = state_counts_compact()
    assert folded == before - counter_rows() > 0
    assert assert_exact() == expected
    assert counter_rows() == len(expected)  # one row per (company, notion, state), none worth 0
    assert not InvoiceStateCount.objects.filter(n=0).exists()
    assert state_counts_compact() == 0 and counter_rows() == len(expected)  # twice: nothing more to fold
    Invoice.objects.filter(company=a).update(export_state=TO_EXPORT)
    Invoice.objects.filter(company=b).delete()
    state_counts_compact()
    after = assert_exact()
    assert after[(a.pk, "export", TO_EXPORT)] == 50 and not any(company == b.pk for company, _, _ in after)
    assert counter_rows() == len(after)


def test_state_count_answers_the_filters_of_the_page(companies):
    a, b, c = companies
    Invoice.objects.bulk_create(spread(companies, 210))
    state_counts_compact()
    Invoice.objects.bulk_create(spread([a, c], 33, prefix="T"))  # deltas not yet folded count too

    def plain(column, ids=None, state=""):
        rows = Invoice.objects.exclude(**{column: ""})
        rows = rows.filter(**{column: state}) if state else rows
        return (rows if ids is None else rows.filter(company_id__in=ids)).count()

    for column, ids, state in itertools.product(
        COLUMNS.values(), [None, [], [a.pk], [b.pk, c.pk]], ["", TO_EXPORT, DONE, REJECTED]
    ):
        assert state_count(field=column, company_ids=ids, state=state) == plain(column, ids, state)


# --- PostgreSQL: TRUNCATE, COPY, concurrency ----------------------------------------------------------


@pytest.mark.postgres
def test_truncate_empties_the_counter(companies):
    Invoice.objects.bulk_create(spread(companies, 50))
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the test's transaction has deferred checks pending
        cursor.execute("TRUNCATE invoices_invoice CASCADE")
    assert counter_rows() == 0 and assert_exact() == {}
    Invoice.objects.bulk_create(spread(companies, 20))
    assert assert_exact()


@pytest.mark.postgres
def test_copy_fires_the_triggers(companies):
    a, _, _ = companies
    columns = (
        "company_id, number, export_state, update_state, kind, currency, total_ht, total_tva, total_ttc, label,"
        " payment_mode, status, incomplete_reason, source_file, source_hash, source_format, bap, bap_version,"
        " bap_pushed_version, accounting_version, sage_piece_number, created_at, updated_at"
    )
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY invoices_invoice ({columns}) FROM STDIN") as copy:
        for index in range(25):
            copy.write_row(
                [a.pk, f"CP-{index}", [TO_EXPORT, DONE][index % 2], DONE if index < 5 else "", "invoice", "EUR",
                 0, 0, 0, "", "", "validated", "", "", "", "", False, 0, 0, 1, "", "now", "now"]
            )  # fmt: skip
    assert assert_exact() == {(a.pk, "export", TO_EXPORT): 13, (a.pk, "export", DONE): 12, (a.pk, "update", DONE): 5}


def _in_thread(target, *args) -> threading.Thread:
    def run():
        try:
            target(*args)
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_compaction_while_a_writer_has_uncommitted_deltas(companies):
    """READ COMMITTED: deltas committed after the compaction's snapshot are neither deleted nor summed."""
    Invoice.objects.bulk_create(spread(companies, 100))
    Invoice.objects.filter(export_state=DONE).update(export_state=TO_EXPORT)
    written, compacted = threading.Event(), threading.Event()

    def writer():
        with transaction.atomic():
            Invoice.objects.bulk_create(spread(companies, 40, prefix="W"))
            Invoice.objects.filter(export_state=TO_EXPORT).update(export_state=SENDING)
            written.set()
            assert compacted.wait(10)

    thread = _in_thread(writer)
    assert written.wait(10)
    assert state_counts_compact() > 0  # does not wait for the writer: its rows are new rows, invisible here
    compacted.set()
    thread.join(10)
    assert not thread.is_alive()
    expected = assert_exact()
    assert Invoice.objects.filter(number__startswith="W").count() == 40
    state_counts_compact()
    assert assert_exact() == expected and counter_rows() == len(expected)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_second_compaction_steps_aside(companies):
    Invoice.objects.bulk_create(spread(companies, 60))
    Invoice.objects.update(export_state=DONE)
    holding, release = threading.Event(), threading.Event()
    results = []

    def first():
        with transaction.atomic():
            results.append(state_counts_compact())
            holding.set()
            assert release.wait(10)

    thread = _in_thread(first)
    assert holding.wait(10)
    assert state_counts_compact() is None  # the lock is taken: returns at once, changes nothing
    release.set()
    thread.join(10)
    assert results[0] > 0
    expected = assert_exact()
    assert counter_rows() == len(expected)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_compactions_and_writers_stay_exact(companies):
    """Two compacting threads (each on its own connection) and two writing threads, all at once, many times."""
    Invoice.objects.bulk_create(spread(companies, 200))
    stop = threading.Event()
    errors = []

    def compactor():
        while not stop.is_set():
            try:
                state_counts_compact()
            except Exception as exc:  # reported below
                errors.append(exc)
                return

    def writer(offset: int):
        states = [TO_EXPORT, SENDING, DONE, REJECTED, ""]
        mine = Invoice.objects.filter(company=companies[offset])  # the writers update disjoint rows: no deadlock
        try:
            for step in range(40):
                with transaction.atomic():
                    ids = list(mine.order_by("?").values_list("pk", flat=True)[:30])
                    Invoice.objects.filter(pk__in=ids).update(export_state=states[(step + offset) % 5])
                    Invoice.objects.bulk_create(spread(companies, 3, prefix=f"W{offset}-{step}"))
                    if step % 7 == 0:
                        Invoice.objects.filter(pk__in=ids[:2]).delete()
        except Exception as exc:  # reported below
            errors.append(exc)

    compactors = [_in_thread(compactor) for _ in range(2)]
    writers = [_in_thread(writer, offset) for offset in range(2)]
    for thread in writers:
        thread.join(60)
    stop.set()
    for thread in compactors:
        thread.join(10)
    assert not errors
    expected = assert_exact()
    state_counts_compact()
    assert assert_exact() == expected and counter_rows() == len(expected)


def _waiting_on_a_lock(statement: str) -> bool:
    """Whether another session of this database is blocked on a lock while running ``statement``."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND wait_event_type = 'Lock' AND query LIKE %s",
            [f"{statement}%"],
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_truncate_waits_for_a_running_compaction(companies):
    """Without the lock, TRUNCATE's DELETE could miss the row a compaction inserts and commits meanwhile."""
    Invoice.objects.bulk_create(spread(companies, 60))
    Invoice.objects.update(export_state=DONE)
    holding, release = threading.Event(), threading.Event()

    def compaction():
        with transaction.atomic():
            state_counts_compact()
            holding.set()
            assert release.wait(10)

    def truncate():
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE invoices_invoice CASCADE")

    compacting = _in_thread(compaction)
    assert holding.wait(10)
    truncating = _in_thread(truncate)
    wait_for(lambda: _waiting_on_a_lock("TRUNCATE"), timeout=10, message="the TRUNCATE to wait for the compaction")
    assert truncating.is_alive()
    release.set()
    compacting.join(10)
    truncating.join(10)
    assert not truncating.is_alive()
    assert counter_rows() == 0 and assert_exact() == {}


# --- Django's flush (TransactionTestCase) ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_flush_leaves_the_counter_empty(companies):
    Invoice.objects.bulk_create(spread(companies, 30))
    call_command("flush", interactive=False, verbosity=0)
    assert counter_rows() == 0 and not Invoice.objects.exists()


def test_deleting_the_tables_in_any_order_leaves_the_counter_empty(companies):
    """SQLite's flush is a ``DELETE FROM`` per table, in no particular order (a set)."""
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL's flush is one TRUNCATE of every table")
    Invoice.objects.bulk_create(spread(companies, 30))
    tables = ["invoices_invoicestatecount", "invoices_invoice", "companies_company"]
    for order in itertools.permutations(tables):
        with pytest.raises(RuntimeError), transaction.atomic():
            with connection.cursor() as cursor:
                for table in order:
                    cursor.execute(f"DELETE FROM {table}")
            assert counter_rows() == 0, order
            raise RuntimeError  # roll back for the next order
        assert_exact()


def test_a_deleted_company_takes_its_counter_rows_along(companies):
    _, _, c = companies
    Invoice.objects.bulk_create([invoice(c, "C-1", TO_EXPORT)])
    Invoice.objects.filter(company=c).delete()
    c.delete()
    assert not InvoiceStateCount.objects.filter(company_id=c.pk).exists()
    assert_exact()


# --- the Visuel page -----------------------------------------------------------------------------------

LIST = reverse("synchro:list")
COUNT_TEXT = re.compile(r"Tout cocher \((\d+) écritures? correspondant au filtre\)")


def shown_count(client, query: dict) -> int:
    html = unescape(client.get(LIST, query).content.decode())
    return int(COUNT_TEXT.search(html).group(1))


def expected_count(query: dict, visible: list[int] | None) -> int:
    column = COLUMNS["update" if query.get("type") == "update" else "export"]
    rows = Invoice.objects.exclude(**{column: ""})
    if visible is not None:
        rows = rows.filter(company_id__in=visible)
    if query.get("company"):
        rows = rows.filter(company_id=query["company"])
    if query.get("status"):
        rows = rows.filter(**{column: query["status"]})
    if query.get("date_from"):
        rows = rows.filter(invoice_date__gte=query["date_from"])
    if query.get("date_to"):
        rows = rows.filter(invoice_date__lte=query["date_to"])
    if query.get("supplier"):
        rows = rows.filter(supplier__code__iexact=query["supplier"])  # these invoices have no supplier: none
    return rows.count()


def test_the_visuel_count_is_exact_for_a_user_who_sees_some_companies(client, bob, alice, companies):
    a, b, c = companies
    grant(bob, "synchro.view_synchronisations")
    give_companies(bob, a, b)
    Invoice.objects.bulk_create(spread(companies, 180))
    state_counts_compact()
    Invoice.objects.bulk_create(spread([b, c], 41, prefix="N"))
    queries = [
        {}, {"status": TO_EXPORT}, {"status": DONE}, {"company": a.pk}, {"company": b.pk, "status": REJECTED},
        {"type": "update"}, {"type": "update", "status": DONE}, {"type": "update", "company": b.pk},
        {"date_from": "2026-10-05"}, {"status": TO_EXPORT, "date_from": "2026-10-05"},
    ]  # fmt: skip

    def check(user, visible):
        client.force_login(user)
        for query in queries:
            assert shown_count(client, query) == expected_count(query, visible), query

    check(bob, [a.pk, b.pk])
    check(alice, None)
    assert shown_count(client, {}) > expected_count({}, [a.pk, b.pk])  # bob's count did leave company C out
    Invoice.objects.filter(company=a, export_state=TO_EXPORT).update(export_state=SENDING)
    Invoice.objects.filter(company=b, update_state=DONE).delete()
    check(bob, [a.pk, b.pk])
    give_companies(bob, c, all_companies=True)
    check(bob, None)


def test_the_unfiltered_page_reads_the_counter_not_the_rows(client, alice, companies):
    Invoice.objects.bulk_create(spread(companies, 70))
    client.force_login(alice)
    for query, counted in (
        ({}, True), ({"status": DONE}, True), ({"type": "update", "company": companies[0].pk}, True),
        ({"supplier": "F0001"}, False), ({"date_to": "2026-10-09"}, False),
    ):  # fmt: skip
        with CaptureQueriesContext(connection) as captured:
            shown = shown_count(client, query)
        assert shown == expected_count(query, None)
        statements = [q["sql"] for q in captured.captured_queries]
        from_counter = any("invoices_invoicestatecount" in sql for sql in statements)
        counting_rows = any("COUNT(*)" in sql and '"invoices_invoice"' in sql for sql in statements)
        assert (from_counter, counting_rows) == (counted, not counted), query
        assert len(statements) <= 10
