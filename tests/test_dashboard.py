"""« Tableau de bord »: the home page, scoped to the user's companies, at a constant number of queries."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from companies.models import Supplier
from companies.services import company_referential_pull
from connectors.services import schedule_save
from invoices.models import ExportState, Invoice
from synchro.charts import _nice_ceiling, daily_entries_chart
from synchro.models import Anomaly, SyncRun, SyncRunCompany
from synchro.runs import run_company_execute
from tests.conftest import give_companies, grant
from tests.support.exports import export
from tests.support.invoices import bulk_validated_invoices, make_invoice

HOME = reverse("home")
PARIS = ZoneInfo("Europe/Paris")
TODAY = dt.datetime(2026, 12, 1, 10, 0, tzinfo=PARIS)


@pytest.fixture
def accountant(bob, pulled):
    bob.groups.add(Group.objects.get(name="Comptable"))
    give_companies(bob, pulled)
    return bob


def every_state(company) -> None:
    """1 invoice à compléter, 2 à valider, 2 intégrées, 1 en anomalie, then 3 à exporter."""
    make_invoice(company, number="FA-C1", supplier=None)
    for index in range(2):
        make_invoice(company, number=f"FA-V{index}")
    for index in range(2):
        make_invoice(company, number=f"FA-I{index}", validate=True)
    make_invoice(company, number="FA-A", supplier="F0042", validate=True)  # a blocked supplier
    export(company)
    for index in range(3):
        make_invoice(company, number=f"FA-E{index}", validate=True)


def row_of(html: str, code: str) -> str:
    start = html.index(f'<tr data-company="{code}">')
    return html[start : html.index("</tr>", start)]


def cells_of(row: str) -> list[str]:
    """The text of each count cell of a row."""
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r'<td class="num">(.*?)</td>', row)]


def page(client, user) -> str:
    client.force_login(user)
    response = client.get(HOME)
    assert response.status_code == 200
    return " ".join(unescape(response.content.decode()).split())


@time_machine.travel(TODAY, tick=False)
def test_each_state_is_counted_and_leads_to_its_list(client, accountant, pulled, sage):
    every_state(pulled)
    html = page(client, accountant)
    row = row_of(html, "JNO")
    assert cells_of(row) == ["1", "2", "3", "1", "2"]
    company = pulled.pk
    for query in (
        f"/factures/?company={company}&status=to_complete",
        f"/factures/?company={company}&status=to_validate",
        f"/administration/synchronisations/?company={company}&type=creation&status=to_export",
        f"/administration/synchronisations/?company={company}&type=creation&status=rejected",
        f"/factures/?company={company}&status=integrated",
    ):
        assert f'href="{query}"' in row, query
    # Each link leads to the very rows it counts.
    client.force_login(accountant)
    listed = client.get(f"/factures/?company={company}&status=to_validate").content.decode()
    assert "FA-V0" in listed and "FA-V1" in listed and "FA-E0" not in listed


def test_the_counts_are_the_invoices(client, accountant, pulled, sage):
    every_state(pulled)
    client.force_login(accountant)
    [(board, cells)] = client.get(HOME).context["rows"]
    assert (board.company, [cell.value for cell in cells]) == (pulled, [1, 2, 3, 1, 2])
    states = Invoice.objects.filter(company=pulled)
    assert [
        states.filter(status=Invoice.Status.TO_COMPLETE).count(),
        states.filter(status=Invoice.Status.TO_VALIDATE).count(),
        states.filter(export_state=ExportState.TO_EXPORT).count(),
        states.filter(export_state=ExportState.REJECTED).count(),
        states.filter(export_state=ExportState.INTEGRATED).count(),
    ] == [1, 2, 3, 1, 2]


@pytest.mark.django_db(transaction=True)
def test_a_user_sees_nothing_of_another_company(client, accountant, pulled, multi, sage):
    company_referential_pull(company=multi)
    make_invoice(pulled, number="FA-J", supplier="F0042", validate=True)
    make_invoice(multi, number="FA-M", lines=[("Divers", "10.00", "606800", "T20")], analytic="ADM", validate=True)
    make_invoice(multi, number="FA-M2", analytic="ADM")
    export(pulled), export(multi)
    assert set(Anomaly.objects.values_list("company__code", "code")) == {
        ("JNO", "SUPPLIER_BLOCKED"),
        ("MULTI", "ACCOUNT_INACTIVE"),
    }
    html = page(client, accountant)
    assert 'data-company="MULTI"' not in html and "MULTI" not in html
    assert "SUPPLIER_BLOCKED" in html and "ACCOUNT_INACTIVE" not in html
    assert 'data-code="SUPPLIER_BLOCKED"' in html
    client.force_login(accountant)
    context = client.get(HOME).context
    assert context["chart"].rejected == 1  # MULTI's refusal is not counted
    assert [board.company.code for board, _cells in context["rows"]] == ["JNO"]


def test_the_page_costs_the_same_queries_whatever_the_number_of_invoices(
    client, accountant, pulled, sage, django_assert_max_num_queries
):
    every_state(pulled)
    client.force_login(accountant)
    client.get(HOME)  # the session, the permissions: cached from here on, as on any page
    with CaptureQueriesContext(connection) as few:
        client.get(HOME)
    bulk_validated_invoices(pulled, 3000)
    ids = list(Invoice.objects.filter(company=pulled, number__startswith="B-").values_list("pk", flat=True))
    Invoice.objects.filter(pk__in=ids[:1000]).update(
        export_state=ExportState.INTEGRATED, status=Invoice.Status.INTEGRATED
    )
    Invoice.objects.filter(pk__in=ids[1000:1500]).update(status=Invoice.Status.TO_VALIDATE, export_state="")
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(HOME)
    [(_board, cells)] = response.context["rows"]
    assert [cell.value for cell in cells] == [1, 502, 1503, 1, 1002]
    # session, user, rights, companies, one query per part (the refused files of « Imports » one of them), the badge
    assert len(few.captured_queries) <= 15


@time_machine.travel(TODAY, tick=False)
def test_the_chart_draws_thirty_days_of_integrated_and_refused_entries(client, accountant, pulled, multi):
    def line(company, days_ago: int, integrated: int, rejected: int, trigger=SyncRun.Trigger.EXPORT):
        finished = TODAY - dt.timedelta(days=days_ago)
        run = SyncRun.objects.create(trigger=trigger, status="succeeded", finished_at=finished)
        SyncRunCompany.objects.create(
            run=run, company=company, status="succeeded", integrated=integrated, rejected=rejected, finished_at=finished
        )

    line(pulled, 0, 12, 2)
    line(pulled, 0, 3, 0)
    line(pulled, 4, 40, 0)
    line(pulled, 29, 1, 1)
    line(pulled, 30, 99, 99)  # 31 days ago: outside the chart
    line(pulled, 1, 50, 50, trigger=SyncRun.Trigger.SIMULATION)  # a simulation books nothing
    line(multi, 0, 70, 7)  # another company's
    client.force_login(accountant)
    chart = client.get(HOME).context["chart"]
    days = {day.day: (day.integrated, day.rejected) for day in chart.days}
    assert len(days) == 30 and min(days) == dt.date(2026, 11, 2) and max(days) == dt.date(2026, 12, 1)
    assert days[dt.date(2026, 12, 1)] == (15, 2) and days[dt.date(2026, 11, 27)] == (40, 0)
    assert days[dt.date(2026, 11, 2)] == (1, 1) and days[dt.date(2026, 11, 30)] == (0, 0)
    assert (chart.integrated, chart.rejected) == (56, 3)
    assert chart.description == "Du 2 novembre 2026 au 1 décembre 2026 : 56 écritures intégrées, 3 écritures refusées."
    html = page(client, accountant)
    svg = html[html.index('<svg class="dashboard-chart"') : html.index("</svg>")]
    assert 'role="img" aria-labelledby="daily-chart-title daily-chart-desc"' in svg
    assert f'<desc id="daily-chart-desc">{chart.description}</desc>' in svg
    # Refused bars are hatched, integrated ones plain: told apart without colour, and each says its number.
    assert svg.count('data-kind="refused"') == 2 and 'fill="url(#hatch-refused)"' in svg
    assert svg.count('data-kind="integrated"') == 3
    assert (
        "<title>01/12 : 15 écritures intégrées</title>" in svg and "<title>01/12 : 2 écritures refusées</title>" in svg
    )
    assert "," not in re.sub(r"<title[^>]*>.*?</title>|<desc.*?</desc>", "", svg)  # dots in coordinates, not commas
    table = html[html.index('id="daily-chart-data"') :]
    assert 'mardi 1 décembre</th><td class="num">15</td><td class="num">2</td>' in table


def test_the_chart_geometry():
    assert [_nice_ceiling(n) for n in (0, 1, 2, 3, 7, 10, 11, 48, 120, 999)] == [1, 1, 2, 5, 10, 10, 20, 50, 200, 1000]
    first, last = dt.date(2026, 11, 2), dt.date(2026, 12, 1)
    chart = daily_entries_chart({last: (500, 1)}, first_day=first, last_day=last)
    integrated, refused = chart.bars
    assert (integrated.refused, refused.refused) == (False, True)
    assert integrated.height == 240 - 12 - 26 and refused.height == 2.0  # one refusal among 500 still shows
    assert integrated.y + integrated.height == refused.y + refused.height == chart.bottom
    assert [tick.label for tick in chart.y_ticks] == ["0", "250", "500"]
    assert [tick.label for tick in chart.x_ticks] == ["06/11", "11/11", "16/11", "21/11", "26/11", "01/12"]
    empty = daily_entries_chart({}, first_day=first, last_day=last)
    assert empty.empty and empty.bars == [] and empty.description.endswith("aucune écriture intégrée ni refusée.")


def test_anomalies_by_code_most_frequent_first_each_leading_to_its_rows(client, accountant, pulled, sage):
    for index in range(2):
        make_invoice(pulled, number=f"FA-B{index}", supplier="F0042", validate=True)
    make_invoice(pulled, number="FA-C", invoice_date=dt.date(2026, 2, 1), validate=True)
    make_invoice(pulled, number="FA-OK", validate=True)
    export(pulled)
    html = page(client, accountant)
    codes = re.findall(r'data-code="(\w+)"', html)
    assert codes == ["SUPPLIER_BLOCKED", "PERIOD_CLOSED"]
    item = html[html.index('data-code="SUPPLIER_BLOCKED"') :]
    assert "Le fournisseur est bloqué dans Sage FRP 1000" in item.split("</li>")[0]
    assert "2 écritures" in item.split("</li>")[0]
    assert 'href="/administration/synchronisations/?status=rejected&anomaly=SUPPLIER_BLOCKED"' in item
    client.force_login(accountant)
    visuel = client.get(reverse("synchro:list"), {"status": "rejected", "anomaly": "SUPPLIER_BLOCKED"})
    listed = visuel.content.decode()
    assert "FA-B0" in listed and "FA-B1" in listed and "FA-C" not in listed and "FA-OK" not in listed
    assert visuel.context["page"].count == 2


@pytest.mark.django_db(transaction=True)
def test_tout_cocher_on_an_anomaly_code_exports_only_those_entries(client, accountant, pulled, sage):
    blocked = [make_invoice(pulled, number=f"FA-B{index}", supplier="F0003", validate=True) for index in range(2)]
    sage.mutate("JNO", "suppliers", upsert=[{"code": "F0003", "blocked": True}])
    closed = make_invoice(pulled, number="FA-C", invoice_date=dt.date(2026, 2, 1), validate=True)
    export(pulled)
    sage.mutate("JNO", "suppliers", upsert=[{"code": "F0003", "blocked": False}])
    Supplier.objects.filter(company=pulled, code="F0003").update(blocked=False)
    client.force_login(accountant)
    data = {"type": "creation", "status": "rejected", "anomaly": "SUPPLIER_BLOCKED", "select_all": "1"}
    client.post(reverse("synchro:export"), data)
    run = SyncRun.objects.latest("pk")
    assert run.selection["filters"]["anomaly"] == "SUPPLIER_BLOCKED"
    run_company_execute(run_company_id=run.companies.get().pk)
    assert {invoice.number: invoice.status for invoice in Invoice.objects.filter(pk__in=[b.pk for b in blocked])} == {
        "FA-B0": Invoice.Status.INTEGRATED,
        "FA-B1": Invoice.Status.INTEGRATED,
    }
    closed.refresh_from_db()
    assert closed.export_state == ExportState.REJECTED


@time_machine.travel(TODAY, tick=False)
def test_the_last_run_of_each_company_and_the_next_automatic_one(client, accountant, pulled, sage):
    make_invoice(pulled, number="FA-A", supplier="F0042", validate=True)
    make_invoice(pulled, number="FA-OK", validate=True)
    line = export(pulled)
    schedule_save(frequency="weekly", weekday=0, time=dt.time(12), actor=None)
    html = page(client, accountant)
    last = row_of(html, "JNO").split("data-last-run>")[1]
    assert f'href="/administration/synchronisations/executions/{line.run_id}/"' in last
    assert "export manuel · <strong>terminée avec anomalies</strong>" in last
    assert "1 écriture intégrée, 1 refusée · 1 écriture en anomalie à corriger" in last
    schedule = html[html.index('id="dashboard-schedule"') :]
    assert "Prochaine synchronisation : <strong>lundi 7 décembre 2026 à 12:00</strong>" in schedule


def test_without_the_rights_the_parts_are_not_there(client, bob, charlie, pulled):
    make_invoice(pulled, number="FA-1")
    html = page(client, charlie)
    assert "Aucun droit ne vous est encore attribué" in html and "Factures par société" not in html
    grant(bob, "invoices.view_invoices")
    give_companies(bob, pulled)
    html = page(client, bob)
    assert "Factures par société" in html and 'data-company="JNO"' in html
    assert "dashboard-chart" not in html and "Dernière synchronisation" not in html
    assert "/administration/synchronisations/" not in html  # no link where he may not go
    assert 'href="/factures/?company=' in html
