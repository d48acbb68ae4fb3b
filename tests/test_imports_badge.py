"""The menu's badge (issue 15 §1): how many refused files of the user's companies nobody has seen yet; one cheap
query on a whole page, none on a partial, nothing for a user without the right."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from invoices.intake import ERRORS_DIR, Outcome
from invoices.models import IntakeFile
from invoices.selectors import unseen_refused_count, unseen_refused_files
from tests.conftest import give_companies, grant

INVOICES, IMPORTS = reverse("invoices:list"), reverse("invoices:imports")
PARIS = ZoneInfo("Europe/Paris")


def files(company, count: int, *, outcome=Outcome.REFUSED, seen: bool = False, routed_to=None) -> None:
    start = dt.datetime(2026, 12, 1, 8, tzinfo=PARIS)
    existing = IntakeFile.objects.count()
    IntakeFile.objects.bulk_create(
        IntakeFile(
            company=company, routed_to=routed_to, name=f"f{existing + index}.txt", name_bytes=b"f.txt",
            path=f"{company.scan_directory}/{ERRORS_DIR}/f{existing + index}.txt",
            received_at=start + dt.timedelta(minutes=existing + index), outcome=outcome, reason="Refusée.",
            seen_at=start if seen else None,
        )
        for index in range(count)
    )  # fmt: skip


def badge(response) -> int | None:
    html = response.content.decode()
    assert html.count('<span id="imports-badge"') <= 1
    found = re.search(r'<span id="imports-badge">\s*<span class="badge[^"]*" data-count="(\d+)"', html)
    return int(found.group(1)) if found else None


@pytest.fixture
def accountant(bob, jno, multi):
    grant(bob, "invoices.view_invoices")
    give_companies(bob, jno)
    return bob


def test_it_counts_the_refused_files_of_the_users_companies_nobody_has_seen(client, accountant, jno, multi):
    files(jno, 2)
    files(jno, 1, seen=True)
    files(jno, 3, outcome=Outcome.CREATED)
    files(multi, 5)  # another company's
    client.force_login(accountant)
    response = client.get(INVOICES)
    assert badge(response) == 2
    html = " ".join(response.content.decode().split())
    # Readable without colour: a number, and its words for a screen reader and on hover.
    assert 'title="2 fichiers refusés non vus">2<span class="visually-hidden"> fichiers refusés non vus</span>' in html
    files(jno, 1, routed_to=multi)
    assert badge(client.get(INVOICES)) == 3


def test_opening_the_list_marks_as_seen_what_it_shows_only(client, accountant, jno):
    files(jno, 60)
    client.force_login(accountant)
    assert badge(client.get(INVOICES)) == 60
    response = client.get(IMPORTS)
    # The page shows fifty and marks them new; the badge counts the ten it did not show.
    assert sum(1 for row in response.context["rows"] if row.new) == 50
    assert "data-new" in response.content.decode() and "nouveau" in response.content.decode()
    assert badge(response) == 10
    assert badge(client.get(INVOICES)) == 10
    assert sum(1 for row in client.get(IMPORTS).context["rows"] if row.new) == 0
    # Only refused files wait to be seen; a filter that does not show them leaves them unseen.
    client.get(IMPORTS, {"outcome": "created"})
    assert badge(client.get(INVOICES)) == 10
    client.get(IMPORTS, {"page": 2})
    assert badge(client.get(INVOICES)) is None


def test_every_company_for_a_superuser_and_for_all_companies(client, alice, bob, jno, multi):
    files(jno, 1)
    files(multi, 2)
    client.force_login(alice)
    assert badge(client.get(INVOICES)) == 3
    grant(bob, "invoices.view_invoices")
    give_companies(bob, all_companies=True)
    client.force_login(bob)
    assert badge(client.get(INVOICES)) == 3


def test_no_badge_and_no_query_without_the_right(client, bob, jno):
    files(jno, 2)
    give_companies(bob, jno)
    grant(bob, "companies.update_companies")
    client.force_login(bob)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("companies:list"))
    assert badge(response) is None and "imports-badge" not in response.content.decode()
    assert not any("invoices_intakefile" in query["sql"] for query in queries.captured_queries)


def test_one_query_on_a_page_none_on_a_partial(client, accountant, jno, django_assert_num_queries):
    files(jno, 2)
    grant(accountant, "companies.update_companies")
    client.force_login(accountant)
    with CaptureQueriesContext(connection) as queries:
        client.get(INVOICES)
    assert sum("invoices_intakefile" in query["sql"] for query in queries.captured_queries) == 1
    # A poll of the Société screen renders a partial: the badge is not counted there.
    with CaptureQueriesContext(connection) as queries:
        client.get(reverse("companies:status", args=[jno.pk]), headers={"HX-Request": "true"})
    assert not any("invoices_intakefile" in query["sql"] for query in queries.captured_queries)
    # One statement, the user's companies a subquery of it.
    accountant.refresh_from_db()
    with django_assert_num_queries(1):
        assert unseen_refused_count(accountant) == 2


@pytest.mark.postgres
def test_the_count_reads_the_partial_index_of_the_unseen_refused_files(accountant, jno, multi):
    files(jno, 20)
    files(jno, 2000, outcome=Outcome.CREATED)
    files(multi, 2000, seen=True)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE invoices_intakefile")
    assert "intake_file_unseen" in unseen_refused_files(accountant).explain()
    assert unseen_refused_count(accountant) == 20
