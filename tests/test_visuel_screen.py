"""« Administration → Visuel Synchronisations »: the list, « Tout cocher », « Exporter », anomalies, history."""

from __future__ import annotations

from html import unescape

import pytest
from django.urls import reverse

from companies.services import company_referential_pull
from invoices.models import ExportState, Invoice
from synchro.models import Anomaly, SyncRun, SyncRunCompany
from synchro.runs import run_company_execute, run_start
from tests.conftest import give_companies, grant
from tests.support.exports import booked, export
from tests.support.invoices import bulk_validated_invoices, make_invoice

LIST = reverse("synchro:list")
EXPORT = reverse("synchro:export")


@pytest.fixture
def accountant(bob, pulled):
    grant(bob, "synchro.view_synchronisations")
    give_companies(bob, pulled)
    return bob


def test_it_lists_the_entries_waiting_for_sage(client, accountant, pulled):
    make_invoice(pulled, number="FA-W", validate=True)
    make_invoice(pulled, number="FA-DRAFT")  # not validated: nothing to say to Sage yet
    client.force_login(accountant)
    html = unescape(client.get(LIST).content.decode())
    for header in ("Société", "Type", "Fournisseur", "N° de facture", "Date", "Montant TTC", "Statut",
                   "Dernière tentative", "N° de pièce Sage"):  # fmt: skip
        assert f">{header}</th>" in html
    assert 'data-number="FA-W"' in html and 'data-number="FA-DRAFT"' not in html
    assert "À exporter" in html
    assert "Écritures à intégrer" in html and "Mises à jour de documents intégrés" in html
    assert "Tout cocher (1 écriture correspondant au filtre)" in html


def test_the_update_tab_lists_bap_changes_of_integrated_invoices(client, accountant, pulled):
    invoice = make_invoice(pulled, number="FA-U", validate=True)
    Invoice.objects.filter(pk=invoice.pk).update(
        status=Invoice.Status.INTEGRATED, export_state=ExportState.INTEGRATED, update_state=ExportState.TO_EXPORT
    )
    client.force_login(accountant)
    html = unescape(client.get(LIST, {"type": "update"}).content.decode())
    assert 'data-number="FA-U"' in html and "Mise à jour (BAP)" in html


def test_the_list_is_scoped_to_the_users_companies(client, bob, pulled, multi):
    company_referential_pull(company=multi)
    grant(bob, "synchro.view_synchronisations")
    give_companies(bob, multi)
    make_invoice(pulled, number="FA-JNO", validate=True)
    make_invoice(multi, number="FA-MULTI", analytic="ADM", validate=True)
    client.force_login(bob)
    response = client.get(LIST)
    assert response.status_code == 200  # a refusal would hide FA-JNO too
    html = response.content.decode()
    assert 'data-number="FA-MULTI"' in html and 'data-number="FA-JNO"' not in html


def test_the_list_page_issues_a_constant_number_of_queries(client, accountant, pulled, django_assert_max_num_queries):
    client.force_login(accountant)
    bulk_validated_invoices(pulled, 5, prefix="S")
    with django_assert_max_num_queries(10):
        small = client.get(LIST)
    bulk_validated_invoices(pulled, 300, prefix="L")
    with django_assert_max_num_queries(10):
        large = client.get(LIST, {"status": "to_export"})
    with django_assert_max_num_queries(10):
        client.get(LIST, {"last": "1"})
    assert small.status_code == large.status_code == 200
    assert "305 écritures" in unescape(large.content.decode())


def test_keyset_pages_walk_the_whole_list_once(client, accountant, pulled):
    ids = set(bulk_validated_invoices(pulled, 120))
    client.force_login(accountant)
    seen, params = [], {}
    for _page in range(5):
        response = client.get(LIST, params)
        page = response.context["page"]
        seen += [row.pk for row in page.rows]
        if not page.has_next:
            break
        params = {"after": page.next_cursor}
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))
    last = client.get(LIST, {"last": "1"}).context["page"]
    assert [row.pk for row in last.rows] == seen[-len(last.rows) :]
    back = client.get(LIST, {"before": last.previous_cursor}).context["page"]
    assert [row.pk for row in back.rows] == seen[-len(last.rows) - 50 : -len(last.rows)]


def test_exporter_starts_a_run_for_the_ticked_rows(client, accountant, pulled):
    first = make_invoice(pulled, number="FA-1", validate=True)
    make_invoice(pulled, number="FA-2", validate=True)
    client.force_login(accountant)
    response = client.post(EXPORT, {"type": "creation", "action": "export", "invoices": [first.pk]})
    run = SyncRun.objects.get()
    assert response.status_code == 302 and f"run={run.pk}" in response["Location"]
    assert run.trigger == SyncRun.Trigger.EXPORT and run.user == accountant
    assert run.selection == {"kind": "creation", "invoices": [first.pk]}
    assert list(run.companies.values_list("company__code", flat=True)) == ["JNO"]


def test_tout_cocher_stores_the_filter_not_the_rows(client, accountant, pulled):
    bulk_validated_invoices(pulled, 30)
    client.force_login(accountant)
    client.post(EXPORT, {"type": "creation", "action": "export", "select_all": "1", "status": "to_export"})
    run = SyncRun.objects.get()
    assert run.selection["filters"]["status"] == "to_export" and "invoices" not in run.selection


def test_nothing_ticked_says_so(client, accountant, pulled):
    make_invoice(pulled, validate=True)
    client.force_login(accountant)
    response = client.post(EXPORT, {"type": "creation", "action": "export"}, follow=True)
    assert "Cochez au moins une écriture" in unescape(response.content.decode())
    assert not SyncRun.objects.exists()


def test_a_forged_row_of_another_company_answers_404(client, bob, pulled, multi):
    company_referential_pull(company=multi)
    grant(bob, "synchro.view_synchronisations")
    give_companies(bob, pulled)
    other = make_invoice(multi, analytic="ADM", validate=True)
    client.force_login(bob)
    assert client.post(EXPORT, {"type": "creation", "invoices": [other.pk]}).status_code == 404
    assert client.post(EXPORT, {"type": "creation", "invoices": ["x"]}).status_code == 400
    assert not SyncRun.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_progress_then_result_then_the_rows_refresh(client, accountant, pulled, sage):
    invoice = make_invoice(pulled, validate=True)
    run = run_start(trigger=SyncRun.Trigger.EXPORT, user=accountant, companies=[pulled], selection={"kind": "all"})
    client.force_login(accountant)
    url = reverse("synchro:run_progress", args=[run.pk])
    waiting = client.get(url)
    assert 'hx-trigger="every 1s"' in waiting.content.decode() and "HX-Trigger" not in waiting
    run_company_execute(run_company_id=run.companies.get().pk)
    done = client.get(url)
    assert done["HX-Trigger"] == "run-finished"
    assert "1 écriture intégrée" in unescape(done.content.decode())
    rows = client.get(LIST, {"rows": "1"}, HTTP_HX_REQUEST="true").content.decode()
    invoice.refresh_from_db()
    assert invoice.sage_piece_number in rows and 'id="visuel-rows"' in rows


@pytest.mark.django_db(transaction=True)
def test_the_red_triangle_opens_the_details_with_a_link_to_correct(client, accountant, pulled, sage):
    invoice = make_invoice(pulled, number="FA-42", supplier="F0042", validate=True)
    export(pulled, user=accountant)
    client.force_login(accountant)
    html = client.get(LIST).content.decode()
    assert "bi-exclamation-triangle-fill" in html and 'data-state="rejected"' in html
    modal = unescape(client.get(reverse("synchro:anomaly", args=[invoice.pk]), HTTP_HX_REQUEST="true").content.decode())
    assert "SUPPLIER_BLOCKED" in modal
    assert (
        "Le fournisseur F0042 est bloqué dans Sage FRP 1000 : débloquez-le dans Sage ou changez de fournisseur" in modal
    )
    assert reverse("invoices:detail", args=[invoice.pk]) in modal and "Corriger" in modal
    page = unescape(client.get(reverse("synchro:anomaly", args=[invoice.pk])).content.decode())
    assert "<html" in page and "SUPPLIER_BLOCKED" in page


@pytest.mark.django_db(transaction=True)
def test_simuler_shows_what_sage_would_refuse_and_books_nothing(client, accountant, pulled, sage):
    good = make_invoice(pulled, number="OK", validate=True)
    make_invoice(pulled, number="DUP", supplier="F0003", validate=True)
    Invoice.objects.filter(number="DUP").update(number="FA-2026-0117")
    client.force_login(accountant)
    client.post(EXPORT, {"type": "creation", "action": "simulate", "select_all": "1"})
    run = SyncRun.objects.get()
    assert run.trigger == SyncRun.Trigger.SIMULATION
    run_company_execute(run_company_id=run.companies.get().pk)
    line = SyncRunCompany.objects.get(run=run)
    assert (line.integrated, line.rejected) == (1, 1)
    assert not booked(sage)
    good.refresh_from_db()
    assert good.export_state == ExportState.TO_EXPORT
    detail = unescape(client.get(reverse("synchro:run", args=[run.pk])).content.decode())
    assert "DUPLICATE_INVOICE" in detail and "Anomalies que Sage FRP 1000 lèverait" in detail
    assert not Anomaly.objects.filter(simulated=False).exists()


@pytest.mark.django_db(transaction=True)
def test_simuler_reports_an_entry_sfd_cannot_build_as_its_own_check(client, accountant, pulled, sage):
    broken = make_invoice(pulled, number="KO", validate=True)
    Invoice.objects.filter(pk=broken.pk).update(total_ttc=broken.total_ttc + 1)
    client.force_login(accountant)
    client.post(EXPORT, {"type": "creation", "action": "simulate", "select_all": "1"})
    run = SyncRun.objects.get()
    run_company_execute(run_company_id=run.companies.get().pk)
    line = SyncRunCompany.objects.get(run=run)
    assert (line.integrated, line.rejected) == (0, 1)
    anomaly = Anomaly.objects.get(run=run)
    assert (anomaly.code, anomaly.source, anomaly.simulated) == ("ENTRY_INVALID", "sfd", True)
    assert "TTC" in anomaly.message
    assert sage.stats().get("POST companies/{code}/entries") is None
    progress = unescape(client.get(reverse("synchro:run_progress", args=[run.pk])).content.decode())
    assert "Simulation terminée" in progress and "0 écriture passerait" in progress and "1 en anomalie" in progress


def test_a_wrong_date_is_refused_in_french_whatever_the_browser_asks(client, accountant, pulled):
    client.force_login(accountant)
    page = client.get(reverse("synchro:list"), {"date_from": "pas-une-date"}, HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    text = unescape(page.content.decode())
    assert page.status_code == 200 and "Saisissez une date valide." in text and "Enter a valid date" not in text


def test_the_history_lists_runs_of_the_users_companies(client, accountant, pulled, multi):
    mine = SyncRun.objects.create(trigger=SyncRun.Trigger.SCHEDULE, status=SyncRun.Status.ANOMALIES)
    SyncRunCompany.objects.create(
        run=mine, company=pulled, integrated=3, rejected=1, status="partial", open_anomalies=1
    )
    other = SyncRun.objects.create(trigger=SyncRun.Trigger.EXPORT)
    SyncRunCompany.objects.create(run=other, company=multi)
    client.force_login(accountant)
    html = unescape(client.get(reverse("synchro:history")).content.decode())
    assert f'data-run="{mine.pk}"' in html and f'data-run="{other.pk}"' not in html
    assert "Automatique" in html and "Terminée avec anomalies" in html
    assert "3 écritures intégrées, 1 refusée · 1 écriture en anomalie à corriger" in html
    assert client.get(reverse("synchro:run", args=[other.pk])).status_code == 404


def test_the_csv_holds_the_filtered_rows_and_no_formula(client, accountant, pulled):
    make_invoice(pulled, number='=HYPERLINK("http://x")', validate=True)
    make_invoice(pulled, number="+33 1 23", validate=True)
    make_invoice(pulled, number="FA-PLAIN", validate=True)
    client.force_login(accountant)
    response = client.get(reverse("synchro:csv"), {"type": "creation"})
    body = b"".join(response.streaming_content).decode()
    assert response["Content-Type"].startswith("text/csv")
    lines = body.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("Société;Type;Fournisseur;N° de facture")
    assert len(lines) == 4
    cells = [line.split(";")[3] for line in lines[1:]]
    assert "FA-PLAIN" in cells
    assert all(not cell.strip('"').startswith(("=", "+", "-", "@")) for cell in cells)
    assert any(cell.strip('"').startswith("'=HYPERLINK") for cell in cells)


def test_safe_cell_neutralises_every_formula_start():
    from core.csv import safe_cell

    for dangerous in ("=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"):
        assert safe_cell(dangerous) == "'" + dangerous
    assert safe_cell("Facture 12") == "Facture 12" and safe_cell(None) == ""


def test_an_invalid_filter_exports_nothing_and_says_why(client, accountant, pulled):
    make_invoice(pulled, number="FA-A", validate=True)
    client.force_login(accountant)
    query = {"type": "update", "date_from": "2026-13-45", "supplier": "F0001"}
    response = client.get(reverse("synchro:csv"), query)
    # Back to the screen with the same filter: the error next to its field, and no file.
    assert response.status_code == 302 and not response.has_header("Content-Disposition")
    assert response["Location"].startswith(LIST) and "date_from=2026-13-45" in response["Location"]
    html = unescape(client.get(response["Location"]).content.decode())
    assert "Filtre invalide : aucun fichier n'a été produit." in html
    assert "Saisissez une date valide." in html.split('name="date_from"')[1].split("</div>")[0]


def test_an_invalid_filter_lists_nothing_and_keeps_its_tab(client, accountant, pulled):
    make_invoice(pulled, number="FA-A", validate=True)
    client.force_login(accountant)
    html = unescape(client.get(LIST, {"type": "update", "date_to": "hier"}).content.decode())
    assert 'data-number="FA-A"' not in html
    assert "Filtre invalide : corrigez-le pour afficher les écritures." in html
    assert "Tout cocher (0 écriture" in html
    assert 'class="nav-link active" href="?type=update"' in html


def test_a_long_supplier_name_is_cut_with_the_whole_name_on_hover(client, accountant, pulled):
    from companies.models import Supplier

    long_name = "Établissements " + "très " * 48
    Supplier.objects.filter(company=pulled, code="F0001").update(label=long_name[:255])
    make_invoice(pulled, number="FA-LONG", validate=True)
    client.force_login(accountant)
    html = unescape(client.get(LIST).content.decode())
    cell = html.split('data-number="FA-LONG"')[1].split("</tr>")[0]
    assert f'title="F0001 – {long_name[:255]}"' in cell and 'class="text-truncate cell-cut' in cell
