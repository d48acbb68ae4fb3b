"""« Tableau de bord » in Chromium: an accountant of JNO logs in and looks, then follows what needs her."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from companies.services import company_referential_pull
from connectors.services import schedule_save
from synchro.models import SyncRun, SyncRunCompany
from tests.conftest import give_companies
from tests.support.browser import login, screenshot
from tests.support.exports import export
from tests.support.invoices import make_invoice

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# The clock ticks from a fixed day, so that the chart's thirty days are always the same ones.
TODAY = dt.datetime(2026, 12, 1, 10, 0, tzinfo=ZoneInfo("Europe/Paris"))


def past_runs(company) -> None:
    """What earlier exports integrated and refused, day by day."""
    for days_ago, integrated, rejected in ((27, 14, 0), (20, 31, 3), (13, 8, 1), (9, 22, 0), (6, 40, 5), (2, 17, 2)):
        finished = TODAY - dt.timedelta(days=days_ago, hours=1)
        run = SyncRun.objects.create(trigger=SyncRun.Trigger.SCHEDULE, status="succeeded", finished_at=finished)
        SyncRunCompany.objects.create(
            run=run, company=company, status="succeeded", integrated=integrated, rejected=rejected, finished_at=finished
        )


@time_machine.travel(TODAY, tick=True)
def test_an_accountant_sees_her_companies_at_a_glance_and_follows_an_anomaly(page, sage, bob, jno, multi):
    for company in (jno, multi):
        company_referential_pull(company=company)
    bob.groups.add(Group.objects.get(name="Comptable"))
    give_companies(bob, jno)
    past_runs(jno)
    past_runs(multi)
    make_invoice(jno, number="FA-CPL", supplier=None)
    make_invoice(jno, number="FA-VAL")
    for index in range(3):
        make_invoice(jno, number=f"FA-INT{index}", validate=True)
    for index in range(2):
        make_invoice(jno, number=f"FA-BLQ{index}", supplier="F0042", validate=True)
    make_invoice(jno, number="FA-CLO", invoice_date=dt.date(2026, 2, 10), validate=True)
    make_invoice(multi, number="FA-MUL", lines=[("Divers", "10.00", "606800", "T20")], analytic="ADM", validate=True)
    export(jno)
    export(multi)
    make_invoice(jno, number="FA-EXP", validate=True)
    schedule_save(frequency="weekly", weekday=0, time=dt.time(12), actor=None)

    login(page, "bob", "bob-password-2026")
    expect(page.get_by_role("heading", name="Tableau de bord", exact=True)).to_be_visible()
    row = page.locator("#dashboard-companies tr[data-company='JNO']")
    expect(row.locator("td.num")).to_have_text(["1", "1", "1", "3", "3"])
    expect(page.locator("#dashboard-companies")).not_to_contain_text("MULTI")
    chart = page.get_by_role("img", name="Écritures intégrées et refusées par jour, sur les 30 derniers jours")
    expect(chart).to_be_visible()
    expect(page.locator("#daily-chart-desc")).to_have_text(
        "Du 2 novembre 2026 au 1 décembre 2026 : 135 écritures intégrées, 14 écritures refusées."
    )
    expect(page.locator("#dashboard-anomalies li")).to_have_count(2)
    expect(page.locator("#dashboard-anomalies li").first).to_contain_text("SUPPLIER_BLOCKED")
    expect(page.locator("#dashboard-anomalies")).not_to_contain_text("ACCOUNT_INACTIVE")  # MULTI's
    expect(page.locator("#dashboard-schedule")).to_contain_text("Prochaine synchronisation : lundi 7 décembre 2026")
    expect(row.locator("[data-last-run]")).to_contain_text("terminée avec anomalies")
    page.locator("#daily-chart-data summary").click()
    expect(page.locator("#daily-chart-data table")).to_contain_text("jeudi 26 novembre")
    screenshot(page, "tableau-de-bord")

    # « En anomalie » leads to the Visuel list of JNO's refused entries.
    row.locator("td.num").nth(3).get_by_role("link").click()
    expect(page.get_by_role("heading", name="Visuel Synchronisations")).to_be_visible()
    expect(page.locator("#visuel-rows tbody tr")).to_have_count(3)
    # The most frequent code leads to its own rows only.
    page.goto("/")
    page.locator("#dashboard-anomalies li").first.get_by_role("link").click()
    expect(page).to_have_url(re.compile("anomaly=SUPPLIER_BLOCKED"))
    expect(page.locator("#visuel-rows tbody tr")).to_have_count(2)
    expect(page.locator("#visuel-rows")).to_contain_text("FA-BLQ0")
    assert page.console_errors == []
