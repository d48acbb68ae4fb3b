"""« Tableau de bord » (issue 15, « Beyond »): the files each company's scan folder refused — those nobody has seen,
and all of the last 30 days — each a link to the « Imports » list that shows them, at a constant number of queries."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from invoices.intake import ERRORS_DIR, Outcome
from invoices.models import IntakeFile
from tests.conftest import give_companies, grant

HOME = reverse("home")
PARIS = ZoneInfo("Europe/Paris")
TODAY = dt.datetime(2026, 12, 1, 10, 0, tzinfo=PARIS)


def refused(company, *, days_ago: float, seen: bool = False, count: int = 1, outcome=Outcome.REFUSED) -> None:
    received = TODAY - dt.timedelta(days=days_ago)
    IntakeFile.objects.bulk_create(
        IntakeFile(
            company=company, name="f.txt", name_bytes=b"f.txt", path=f"{company.scan_directory}/{ERRORS_DIR}/f.txt",
            received_at=received, outcome=outcome, reason="Refusée.", seen_at=received if seen else None,
        )
        for _ in range(count)
    )  # fmt: skip


def cell(html: str, code: str) -> str:
    start = html.index(f'<tr data-company="{code}">')
    row = html[start : html.index("</tr>", start)]
    return row.split("data-refused-files>")[1].split("</td>")[0]


def words(fragment: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", fragment).split())


@pytest.fixture
def accountant(bob, jno, multi):
    grant(bob, "invoices.view_invoices")
    give_companies(bob, jno, multi)
    return bob


def page(client, user) -> str:
    client.force_login(user)
    response = client.get(HOME)
    assert response.status_code == 200
    return unescape(response.content.decode())


@time_machine.travel(TODAY, tick=False)
def test_each_company_counts_its_refused_files_unseen_and_over_thirty_days(client, accountant, jno, multi):
    refused(jno, days_ago=0, count=2)
    refused(jno, days_ago=3, seen=True)
    refused(jno, days_ago=29.4)  # the 2nd of November at 00:24: the chart's first day
    refused(jno, days_ago=45)  # unseen, older than 30 days
    refused(jno, days_ago=1, outcome=Outcome.CREATED)
    refused(jno, days_ago=2, outcome=Outcome.DUPLICATE)
    html = page(client, accountant)
    assert "Fichiers refusés" in html
    jno_cell, multi_cell = cell(html, "JNO"), cell(html, "MULTI")
    assert words(jno_cell) == "4 non vus 4 sur 30 jours"
    assert words(multi_cell) == "aucun non vu aucun sur 30 jours" and "<a " not in multi_cell
    assert f'href="/factures/imports/?company={jno.pk}&outcome=refused&unseen=on"' in jno_cell
    assert f'href="/factures/imports/?company={jno.pk}&outcome=refused&date_from=2026-11-02"' in jno_cell
    total = html[html.index('<tfoot><tr class="fw-semibold" data-company="">') :]
    assert words(total.split("data-refused-files>")[1].split("</td>")[0]) == "4 non vus 4 sur 30 jours"


@time_machine.travel(TODAY, tick=False)
def test_each_link_leads_to_the_very_files_it_counts(client, accountant, jno, multi):
    refused(jno, days_ago=0, count=2)
    refused(jno, days_ago=5, seen=True)
    refused(jno, days_ago=40)
    refused(multi, days_ago=0)
    client.force_login(accountant)
    unseen = client.get(reverse("invoices:imports"), {"company": jno.pk, "outcome": "refused", "unseen": "on"})
    assert len(unseen.context["rows"]) == 3
    recent = client.get(
        reverse("invoices:imports"), {"company": jno.pk, "outcome": "refused", "date_from": "2026-11-02"}
    )
    assert len(recent.context["rows"]) == 3
    # Those were shown: seen now, the dashboard no longer counts them as unseen.
    assert words(cell(page(client, accountant), "JNO")) == "aucun non vu 3 sur 30 jours"


@time_machine.travel(TODAY, tick=False)
def test_another_companys_files_are_not_counted_and_without_the_right_there_is_no_column(
    client, bob, charlie, jno, multi
):
    refused(jno, days_ago=0)
    refused(multi, days_ago=0, count=7)
    grant(bob, "invoices.view_invoices")
    give_companies(bob, jno)
    html = page(client, bob)
    assert words(cell(html, "JNO")) == "1 non vu 1 sur 30 jours" and "MULTI" not in html
    grant(charlie, "synchro.view_synchronisations")
    give_companies(charlie, jno, multi)
    html = page(client, charlie)
    assert "Fichiers refusés" not in html and "data-refused-files" not in html and "/factures/imports/" not in html


@time_machine.travel(TODAY, tick=False)
def test_the_page_costs_the_same_queries_whatever_the_number_of_files(
    client, accountant, jno, multi, django_assert_max_num_queries
):
    refused(jno, days_ago=1)
    client.force_login(accountant)
    client.get(HOME)
    with CaptureQueriesContext(connection) as few:
        client.get(HOME)
    refused(jno, days_ago=2, count=3000)
    refused(multi, days_ago=20, count=2000, seen=True)
    refused(multi, days_ago=60, count=2000)
    with django_assert_max_num_queries(len(few.captured_queries)):
        html = unescape(client.get(HOME).content.decode())
    assert words(cell(html, "JNO")) == "3 001 non vus 3 001 sur 30 jours"
    assert words(cell(html, "MULTI")) == "2 000 non vus 2 000 sur 30 jours"
    refused_queries = [query for query in few.captured_queries if "invoices_intakefile" in query["sql"]]
    assert len(refused_queries) == 2  # the companies' counts, and the menu's badge
