"""Honest history: a run line counts what it did of each kind and says how many entries stay in anomaly."""

from __future__ import annotations

import datetime as dt
from html import unescape

import pytest
from django.core import mail
from django.urls import reverse

from invoices.models import ExportState, Invoice
from invoices.services import invoice_set_bap
from synchro.models import SyncRun, SyncRunCompany
from synchro.notifications import run_notify
from synchro.runs import run_company_execute, run_finalize, run_start, sync_now_start
from tests.conftest import give_companies, grant
from tests.support.exports import export
from tests.support.invoices import make_invoice

pytestmark = pytest.mark.django_db(transaction=True)

HISTORY = reverse("synchro:history")


@pytest.fixture
def accountant(bob):
    grant(bob, "synchro.view_synchronisations", "connectors.manage_connectors")
    give_companies(bob, all_companies=True)
    return bob


def execute(run: SyncRun) -> list[SyncRunCompany]:
    return [run_company_execute(run_company_id=line.pk) for line in run.companies.order_by("pk")]


def history_line(client, company_code: str) -> str:
    html = unescape(client.get(HISTORY).content.decode())
    start = html.index(f'data-company="{company_code}"')
    return html[start : html.index("</div>", start)]


def integrated_with_bap_to_push(company, user, count: int) -> list[Invoice]:
    invoices = [make_invoice(company, number=f"FA-{index}", validate=True) for index in range(count)]
    export(company, kind="creation")
    for invoice in invoices:
        invoice_set_bap(invoice=Invoice.objects.get(pk=invoice.pk), bap=True, actor=user)
    return invoices


def test_a_bap_update_export_reads_as_updates_sent_in_the_history(client, pulled, sage, accountant):
    integrated_with_bap_to_push(pulled, accountant, 3)
    line = export(pulled, kind="update", user=accountant)
    assert (line.status, line.integrated, line.updated, line.update_rejected) == ("succeeded", 0, 3, 0)
    assert line.open_anomalies == 0
    client.force_login(accountant)
    text = history_line(client, "JNO")
    assert "JNO</strong> : réussie — 3 mises à jour envoyées" in text
    assert "intégrée" not in text  # not « 0 intégrée(s) » for a run that pushed three updates
    progress = unescape(client.get(reverse("synchro:run_progress", args=[line.run_id])).content.decode())
    assert "3 / 3 traitées" in progress and "3 mises à jour envoyées" in progress


def test_an_update_sage_refuses_is_counted_as_an_update_refused(client, pulled, sage, accountant):
    [invoice] = integrated_with_bap_to_push(pulled, accountant, 1)
    Invoice.objects.filter(pk=invoice.pk).update(sage_piece_number="ACH2026999999")
    line = export(pulled, kind="update")
    assert (line.rejected, line.updated, line.update_rejected, line.open_anomalies) == (0, 0, 1, 1)
    assert (line.status, line.run.status) == ("partial", SyncRun.Status.ANOMALIES)
    client.force_login(accountant)
    text = history_line(client, "JNO")
    assert "terminée avec anomalies — 1 mise à jour refusée · 1 écriture en anomalie à corriger" in text
    assert f'href="/administration/synchronisations/?company={pulled.pk}&status=rejected">voir</a>' in text


def test_synchroniser_maintenant_with_entries_left_in_anomaly_is_not_reussie(client, pulled, sage, accountant):
    """An automatic run does not send again what Sage refused: it waits for the correction. The entries stay in
    anomaly, and the run says so instead of « réussie … 0 anomalie(s) »."""
    for index in range(2):
        make_invoice(pulled, number=f"FA-B{index}", supplier="F0042", validate=True)  # a blocked supplier
    make_invoice(pulled, number="FA-OK", validate=True)
    assert export(pulled).rejected == 2
    make_invoice(pulled, number="FA-NEW", validate=True)
    run = sync_now_start(user=accountant)
    [line] = execute(run)
    run.refresh_from_db()
    assert (line.integrated, line.rejected, line.open_anomalies) == (1, 0, 2)
    assert line.get_status_display() == "terminée avec anomalies"
    assert run.get_status_display() == "terminée avec anomalies"
    assert line.pull_counts and line.referential_totals["created"] == 0  # pulled before: read, nothing new
    client.force_login(accountant)
    text = history_line(client, "JNO")
    assert "terminée avec anomalies — référentiel inchangé · 1 écriture intégrée · 2 écritures en anomalie" in text
    recent = " ".join(unescape(client.get(reverse("synchro:recent_runs")).content.decode()).split())
    assert "Terminée avec anomalies" in recent and "2 écritures en anomalie à corriger" in recent


def test_a_run_that_leaves_nothing_in_anomaly_is_reussie_and_counts_the_referential(client, jno, sage, accountant):
    line = export(jno, trigger=SyncRun.Trigger.SYNC_NOW, include_pull=True)  # the referential pulled for the first time
    assert (line.status, line.open_anomalies) == ("succeeded", 0)
    totals = line.referential_totals
    assert totals["created"] > 0 and totals["deactivated"] == 0
    client.force_login(accountant)
    text = history_line(client, "JNO")
    assert f"réussie — référentiel : {totals['created']} éléments créés · aucune écriture à envoyer" in text


def test_the_run_reads_partielle_only_when_a_company_failed(pulled, multi, sage, accountant):
    run = SyncRun.objects.create(trigger=SyncRun.Trigger.SYNC_NOW)
    SyncRunCompany.objects.create(run=run, company=pulled, status="succeeded", open_anomalies=0)
    SyncRunCompany.objects.create(run=run, company=multi, status="partial", open_anomalies=3)
    assert run_finalize(run.pk).status == SyncRun.Status.ANOMALIES
    failed = SyncRun.objects.create(trigger=SyncRun.Trigger.SYNC_NOW)
    SyncRunCompany.objects.create(run=failed, company=pulled, status="succeeded")
    SyncRunCompany.objects.create(run=failed, company=multi, status="failed", error="Sage FRP 1000 est injoignable")
    assert run_finalize(failed.pk).get_status_display() == "partielle"


def test_the_run_detail_has_a_column_per_kind(client, pulled, sage, accountant):
    [invoice] = integrated_with_bap_to_push(pulled, accountant, 1)
    make_invoice(pulled, number="FA-B", supplier="F0042", validate=True)
    Invoice.objects.filter(pk=invoice.pk).update(sage_piece_number="ACH2026999999")
    line = export(pulled)
    client.force_login(accountant)
    html = " ".join(unescape(client.get(reverse("synchro:run", args=[line.run_id])).content.decode()).split())
    assert "Écritures refusées" in html and "Mises à jour refusées" in html and "En anomalie à la fin" in html
    row = html[html.index('data-company="JNO"') :]
    cells = [cell.split(">")[-1] for cell in row.split("</td>")[3:8]]
    assert cells == ["0", "1", "0", "1", "0"]  # integrated, refused, updates sent, refused, to check
    assert ">2</a>" in row.split("</td>")[8]  # two entries in anomaly when it ended, a link to them


def test_the_automatic_run_mail_counts_each_kind_and_the_entries_left(pulled, sage, bob):
    from django.contrib.auth.models import Group

    bob.groups.add(Group.objects.get(name="Comptable"))
    give_companies(bob, pulled)
    make_invoice(pulled, number="FA-B", supplier="F0042", validate=True)
    make_invoice(pulled, number="FA-OK", validate=True)
    mail.outbox.clear()
    line = export(pulled, trigger=SyncRun.Trigger.SCHEDULE, include_pull=True)
    assert (line.integrated, line.rejected, line.open_anomalies) == (1, 1, 1)
    [message] = mail.outbox
    assert (
        "JNO (JNO) : terminée avec anomalies — référentiel inchangé ; 1 écriture intégrée, 1 refusée ;"
        " 1 écriture en anomalie à corriger" in message.body
    )


def test_entries_left_in_anomaly_by_an_earlier_run_are_not_mailed_again(pulled, sage, bob):
    from django.contrib.auth.models import Group

    bob.groups.add(Group.objects.get(name="Comptable"))
    give_companies(bob, pulled)
    make_invoice(pulled, number="FA-B", supplier="F0042", validate=True)
    export(pulled)
    mail.outbox.clear()
    line = export(pulled, trigger=SyncRun.Trigger.SCHEDULE, include_pull=True)
    assert (line.status, line.rejected, line.open_anomalies) == ("partial", 0, 1)
    assert run_notify(run_id=line.run_id) == 0 and mail.outbox == []


def test_the_progress_says_how_many_entries_stay_in_anomaly(client, pulled, sage, accountant):
    make_invoice(pulled, number="FA-B", supplier="F0042", invoice_date=dt.date(2026, 10, 2), validate=True)
    line = export(pulled)
    client.force_login(accountant)
    progress = " ".join(
        unescape(client.get(reverse("synchro:run_progress", args=[line.run_id])).content.decode()).split()
    )
    assert "1 / 1 traitée" in progress and "1 en anomalie" in progress
    assert "1 écriture de ces sociétés reste en anomalie : corrigez-la dans SFD." in progress
    assert Invoice.objects.get(number="FA-B").export_state == ExportState.REJECTED


def test_a_run_reads_for_a_limited_user_as_what_it_did_of_his_companies(client, pulled, multi, bob):
    grant(bob, "synchro.view_synchronisations")
    give_companies(bob, pulled)
    run = run_start(trigger=SyncRun.Trigger.EXPORT, user=None, companies=[pulled, multi], dispatch=False)
    SyncRunCompany.objects.filter(run=run, company=pulled).update(status=SyncRunCompany.Status.SUCCEEDED)
    SyncRunCompany.objects.filter(run=run, company=multi).update(
        status=SyncRunCompany.Status.FAILED, error="Sage FRP 1000 injoignable"
    )
    run = run_finalize(run.pk)
    assert run.status == SyncRun.Status.PARTIAL  # for someone who sees both companies

    client.force_login(bob)
    for url in (HISTORY, reverse("synchro:run", args=[run.pk])):
        html = unescape(client.get(url).content.decode())
        assert "Réussie" in html or "réussie" in html, url
        assert "partielle" not in html.lower() and "MULTI" not in html and "injoignable" not in html, url
