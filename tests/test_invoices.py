"""Invoices: statuses, versions, immutability once integrated, the BAP, and the « Factures » screens."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from html import unescape
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

from companies.models import Account, Supplier
from companies.services import company_referential_pull
from invoices.models import ExportState, Invoice
from invoices.services import InvoiceInvalid, InvoiceLocked, LineData, invoice_set_bap, invoice_update, invoice_validate
from synchro.models import Anomaly
from tests.conftest import give_companies, grant
from tests.support.invoices import invoice_form, make_invoice


@pytest.fixture
def accountant(bob, pulled):
    grant(bob, "invoices.view_invoices", "invoices.edit_invoices", "invoices.give_bap")
    give_companies(bob, pulled)
    return bob


def _integrate(invoice: Invoice, piece: str = "ACH2026000042") -> Invoice:
    """What the export does on acceptance (tested with the export itself)."""
    Invoice.objects.filter(pk=invoice.pk).update(
        status=Invoice.Status.INTEGRATED,
        export_state=ExportState.INTEGRATED,
        sage_piece_number=piece,
        integrated_version=invoice.accounting_version,
    )
    invoice.refresh_from_db()
    return invoice


def _lines(invoice: Invoice) -> list[LineData]:
    return [
        LineData(line.label, line.amount_ht, line.account_id, line.tax_code_id, line.analytic_section_id)
        for line in invoice.lines.all()
    ]


def test_a_complete_invoice_waits_for_validation(pulled):
    invoice = make_invoice(pulled)
    assert invoice.status == Invoice.Status.TO_VALIDATE
    assert invoice.events.get().message == "Facture créée."


def test_an_incomplete_invoice_says_what_is_missing(pulled):
    invoice = make_invoice(pulled, supplier=None, lines=[("Sans compte", "10.00", None, "T20")])
    assert invoice.status == Invoice.Status.TO_COMPLETE
    assert "Fournisseur manquant." in invoice.incomplete_reason
    assert "Ligne 1 : compte de charge manquant." in invoice.incomplete_reason


def test_the_due_date_comes_from_the_supplier_terms(pulled):
    from invoices.validation import effective_due_date

    invoice = make_invoice(pulled)
    terms = Supplier.objects.get(company=pulled, code="F0001").payment_terms_days
    assert effective_due_date(invoice) == dt.date(2026, 10, 15) + dt.timedelta(days=terms)


def test_validation_makes_the_entry_exportable(pulled):
    invoice = invoice_validate(invoice=make_invoice(pulled), actor=None)
    assert (invoice.status, invoice.export_state) == (Invoice.Status.VALIDATED, ExportState.TO_EXPORT)


def test_totals_must_agree_to_the_cent(pulled):
    invoice = make_invoice(pulled, total_tva=Decimal("20.02"))
    with pytest.raises(InvoiceInvalid) as invalid:
        invoice_validate(invoice=invoice, actor=None)
    assert "ne correspond pas à la TVA des lignes" in str(invalid.value)
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.TO_COMPLETE and invoice.export_state == ExportState.NONE


def test_another_currency_waits_for_its_rate(pulled):
    invoice = make_invoice(pulled, currency="USD")
    with pytest.raises(InvoiceInvalid) as invalid:
        invoice_validate(invoice=invoice, actor=None)
    assert [(p.field, p.message) for p in invalid.value.problems] == [
        ("exchange_rate", "Facture en USD : saisissez le cours (1 USD = … EUR).")
    ]
    invoice = invoice_update(
        invoice=invoice, fields={"exchange_rate": Decimal("0.9")}, lines=_lines(invoice), actor=None
    )
    assert invoice_validate(invoice=invoice, actor=None).status == Invoice.Status.VALIDATED


def test_a_correction_is_a_new_version_and_clears_the_stale_anomaly(pulled):
    invoice = make_invoice(pulled, validate=True)
    Invoice.objects.filter(pk=invoice.pk).update(export_state=ExportState.REJECTED)
    anomaly = Anomaly.objects.create(invoice=invoice, company=pulled, code="ACCOUNT_INACTIVE", message="inactif")
    lines = _lines(invoice)
    lines[0].account_id = Account.objects.get(company=pulled, code="606300").pk
    invoice = invoice_update(invoice=invoice, fields={}, lines=lines, actor=None)
    assert invoice.accounting_version == 2 and invoice.external_id.endswith("-V2")
    assert invoice.status == Invoice.Status.TO_VALIDATE and invoice.export_state == ExportState.NONE
    anomaly.refresh_from_db()
    assert anomaly.cleared_at is not None and anomaly.cleared_reason == "corrigée"
    assert invoice_validate(invoice=invoice, actor=None).export_state == ExportState.TO_EXPORT


def test_saving_without_change_keeps_the_version(pulled):
    invoice = make_invoice(pulled, validate=True)
    invoice = invoice_update(invoice=invoice, fields={"number": invoice.number}, lines=_lines(invoice), actor=None)
    assert invoice.accounting_version == 1 and invoice.status == Invoice.Status.VALIDATED


def test_an_integrated_invoice_is_read_only(pulled):
    invoice = _integrate(make_invoice(pulled, validate=True))
    with pytest.raises(InvoiceLocked) as locked:
        invoice_update(invoice=invoice, fields={"number": "AUTRE"}, lines=_lines(invoice), actor=None)
    assert "ACH2026000042" in str(locked.value)


def test_an_invoice_being_sent_cannot_change(pulled):
    invoice = make_invoice(pulled, validate=True)
    Invoice.objects.filter(pk=invoice.pk).update(export_state=ExportState.SENDING)
    with pytest.raises(InvoiceLocked):
        invoice_update(invoice=invoice, fields={"number": "AUTRE"}, lines=_lines(invoice), actor=None)


def test_a_bap_change_after_integration_is_an_update_to_push(pulled, bob):
    invoice = _integrate(make_invoice(pulled, validate=True))
    # Half past midnight in Paris is still the day before in UTC: the BAP's date is the Paris one.
    with time_machine.travel(dt.datetime(2026, 12, 1, 0, 30, tzinfo=ZoneInfo("Europe/Paris")), tick=False):
        invoice = invoice_set_bap(invoice=invoice, bap=True, actor=bob)
    assert (invoice.bap, invoice.bap_by, invoice.bap_date) == (True, bob, dt.date(2026, 12, 1))
    assert invoice.update_state == ExportState.TO_EXPORT and invoice.bap_version == 1
    invoice = invoice_set_bap(invoice=invoice, bap=False, actor=bob)
    invoice = invoice_set_bap(invoice=invoice, bap=True, actor=bob)
    assert invoice.bap_version == 3 and invoice.update_id.endswith("-BAP3")
    assert invoice.accounting_version == 1


def test_a_bap_before_integration_travels_with_the_entry(pulled, bob):
    invoice = invoice_set_bap(invoice=make_invoice(pulled, validate=True), bap=True, actor=bob)
    assert invoice.update_state == ExportState.NONE
    from invoices.validation import entry_for_invoice

    assert entry_for_invoice(invoice).payload(invoice.external_id)["bap"] is True


# --- the screens -------------------------------------------------------------------------------------------


def test_the_list_is_filtered_and_scoped(client, accountant, pulled, connector):
    make_invoice(pulled, number="FA-A", bap=True)
    make_invoice(pulled, number="FA-B", supplier="F0002")
    client.force_login(accountant)
    html = client.get(reverse("invoices:list")).content.decode()
    assert "FA-A" in html and "FA-B" in html
    html = client.get(reverse("invoices:list"), {"bap": "yes"}).content.decode()
    assert "FA-A" in html and "FA-B" not in html
    html = client.get(reverse("invoices:list"), {"supplier": "F0002"}).content.decode()
    assert "FA-B" in html and "FA-A" not in html
    html = client.get(reverse("invoices:list"), {"date_from": "2026-12-01", "date_to": "2026-01-01"}).content.decode()
    assert "La fin de la période précède son début." in html
    # An invalid filter lists nothing (it listed every invoice) and says so.
    assert "FA-A" not in html and "FA-B" not in html
    assert "Filtre invalide : corrigez-le pour afficher les factures." in unescape(html)


def test_another_companys_invoice_answers_404(client, bob, pulled, multi):
    company_referential_pull(company=multi)
    grant(bob, "invoices.view_invoices", "invoices.edit_invoices", "invoices.give_bap")
    give_companies(bob, pulled)
    make_invoice(pulled, number="FA-J")
    other = make_invoice(multi, number="FA-M", analytic="ADM")
    client.force_login(bob)
    response = client.get(reverse("invoices:list"))
    assert response.status_code == 200
    assert "FA-J" in response.content.decode() and "FA-M" not in response.content.decode()
    for name in ("invoices:detail",):
        assert client.get(reverse(name, args=[other.pk])).status_code == 404
    for name in ("invoices:validate", "invoices:bap"):
        assert client.post(reverse(name, args=[other.pk]), {"bap": "1"}).status_code == 404


def test_the_detail_shows_the_entry_as_a_journal(client, accountant, pulled):
    invoice = make_invoice(pulled, lines=[("Papier", "100.00", "606400", "T20"), ("Livres", "50.00", "618100", "T55")])
    client.force_login(accountant)
    html = client.get(reverse("invoices:detail", args=[invoice.pk])).content.decode()
    table = html.split('id="generated-entry"')[1].split("</table>")[0]
    for expected in ("401000", "F0001", "606400", "618100", "445660", "Totaux"):
        assert expected in table
    assert table.count("172,75\u00a0€") == 3  # the supplier line and both totals


def test_an_accountant_fixes_a_line_and_validates(client, accountant, pulled):
    invoice = make_invoice(pulled, lines=[("Papier", "100.00", "606800", "T20")], validate=True)
    account = Account.objects.get(company=pulled, code="606400")
    client.force_login(accountant)
    url = reverse("invoices:detail", args=[invoice.pk])
    response = client.post(url, invoice_form(invoice, **{"lines-0-account": account.pk, "validate": "1"}), follow=True)
    assert "Facture enregistrée et validée" in unescape(response.content.decode())
    invoice.refresh_from_db()
    assert invoice.lines.get().account == account
    assert (invoice.accounting_version, invoice.export_state) == (2, ExportState.TO_EXPORT)


def test_validation_errors_appear_next_to_the_fields(client, accountant, pulled):
    invoice = make_invoice(pulled)
    client.force_login(accountant)
    url = reverse("invoices:detail", args=[invoice.pk])
    response = client.post(
        url, invoice_form(invoice, total_tva="25.00", total_ttc="125.00", label="Corrigé", validate="1")
    )
    html = unescape(response.content.decode())
    assert "Facture enregistrée. Elle n'est pas validée :" in html
    invoice.refresh_from_db()
    assert invoice.label == "Corrigé" and invoice.status == Invoice.Status.TO_COMPLETE  # the correction is kept
    assert "Sélectionnez un choix valide" not in html
    field_block = html.split('name="total_tva"')[1].split('<div class="col')[0]
    assert "ne correspond pas à la TVA des lignes" in field_block
    response = client.post(url, invoice_form(invoice, invoice_date="2026-13-45"))
    assert "Saisissez une date valide" in unescape(response.content.decode())


def test_an_integrated_invoice_is_shown_read_only_and_refuses_changes(client, accountant, pulled):
    invoice = _integrate(make_invoice(pulled, validate=True))
    client.force_login(accountant)
    url = reverse("invoices:detail", args=[invoice.pk])
    html = unescape(client.get(url).content.decode())
    assert "son contenu comptable est en lecture seule" in html and "Seul le BAP reste modifiable." in html
    assert 'name="number"' in html and "disabled" in html.split('name="number"')[1].split(">")[0]
    response = client.post(url, invoice_form(invoice, number="AUTRE"), follow=True)
    assert "lecture seule" in unescape(response.content.decode())
    invoice.refresh_from_db()
    assert invoice.number == "FA-001"
    client.post(reverse("invoices:bap", args=[invoice.pk]), {"bap": "1"})
    invoice.refresh_from_db()
    assert invoice.bap and invoice.update_state == ExportState.TO_EXPORT


def test_editing_needs_the_right(client, bob, pulled):
    grant(bob, "invoices.view_invoices")
    give_companies(bob, pulled)
    invoice = make_invoice(pulled)
    client.force_login(bob)
    url = reverse("invoices:detail", args=[invoice.pk])
    assert client.get(url).status_code == 200
    assert client.post(url, invoice_form(invoice, number="X")).status_code == 403
    assert client.post(reverse("invoices:validate", args=[invoice.pk])).status_code == 403
    assert client.post(reverse("invoices:bap", args=[invoice.pk]), {"bap": "1"}).status_code == 403


def test_correcting_into_another_invoices_number_says_so_next_to_the_field(client, accountant, pulled):
    make_invoice(pulled, number="FA-002")
    invoice = make_invoice(pulled, number="FA-001")
    client.force_login(accountant)
    url = reverse("invoices:detail", args=[invoice.pk])
    response = client.post(url, invoice_form(invoice, number="FA-002", label="Libellé corrigé", total_ht="100.00"))
    assert response.status_code == 200
    html = unescape(response.content.decode())
    field_block = html.split('name="number"')[1].split('<div class="col')[0]
    assert "F0001 a déjà une facture n° FA-002 dans SFD" in field_block
    # Nothing lost: what was typed is still in the form, to correct the number and save again.
    assert 'value="Libellé corrigé"' in html
    invoice.refresh_from_db()
    assert (invoice.number, invoice.label, invoice.accounting_version) == ("FA-001", "", 1)


def test_changing_the_supplier_onto_an_existing_number_is_refused_too(client, accountant, pulled):
    make_invoice(pulled, supplier="F0002", number="FA-001")
    invoice = make_invoice(pulled, supplier="F0001", number="FA-001")
    other = Supplier.objects.get(company=pulled, code="F0002")
    client.force_login(accountant)
    response = client.post(reverse("invoices:detail", args=[invoice.pk]), invoice_form(invoice, supplier=other.pk))
    assert "F0002 a déjà une facture n° FA-001 dans SFD" in unescape(response.content.decode())


def test_the_service_refuses_a_duplicate_that_slipped_past_the_form(pulled):
    from invoices.services import InvoiceDuplicate

    twin = make_invoice(pulled, number="FA-002")
    invoice = make_invoice(pulled, number="FA-001")
    fields = {"number": "FA-002", "label": "Corrigé"}
    with pytest.raises(InvoiceDuplicate) as duplicate:
        invoice_update(invoice=invoice, fields=fields, lines=_lines(invoice), actor=None)
    assert duplicate.value.twin == twin
    invoice.refresh_from_db()
    assert (invoice.number, invoice.label, invoice.lines.count()) == ("FA-001", "", 1)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_number_taken_by_another_correction_at_the_same_moment_is_said_next_to_the_field(client, accountant, pulled):
    """The form's check passes (the other correction is not committed yet), then the database refuses the save."""
    import threading

    from django.db import connection, transaction

    first, second = make_invoice(pulled, number="FA-001"), make_invoice(pulled, number="FA-002")
    taken, release = threading.Event(), threading.Event()

    def other_correction():
        with transaction.atomic():
            Invoice.objects.filter(pk=first.pk).update(number="FA-777")
            taken.set()
            release.wait(10)
        connection.close()

    other = threading.Thread(target=other_correction)
    other.start()
    taken.wait(10)
    # The other transaction commits while this request waits on the unique index.
    threading.Timer(1.5, release.set).start()
    client.force_login(accountant)
    response = client.post(reverse("invoices:detail", args=[second.pk]), invoice_form(second, number="FA-777"))
    other.join(10)
    assert response.status_code == 200
    field_block = unescape(response.content.decode()).split('name="number"')[1].split('<div class="col')[0]
    assert "F0001 a déjà une facture n° FA-777 dans SFD" in field_block
    second.refresh_from_db()
    assert (second.number, second.accounting_version) == ("FA-002", 1)
