"""A correction that fails says what was saved and what blocks validation; a due date that came from the supplier's
terms follows a corrected invoice date, one typed or read in the e-invoice stays."""

from __future__ import annotations

import datetime as dt
import importlib
from html import unescape

import pytest
from django.apps import apps
from django.urls import reverse

from companies.models import Supplier
from invoices.models import ExportState, Invoice
from invoices.services import LineData, invoice_update
from synchro.models import Anomaly
from tests.conftest import give_companies, grant
from tests.support.exports import export
from tests.support.invoices import invoice_form, make_invoice

TERMS = Invoice.DueDateSource.TERMS
CLOSED = dt.date(2026, 2, 10)  # JNO's books are closed until 31 March 2026 in the stub
OPEN = dt.date(2026, 10, 15)


@pytest.fixture
def accountant(bob, pulled):
    grant(bob, "invoices.view_invoices", "invoices.edit_invoices")
    give_companies(bob, pulled)
    return bob


def terms_of(company, code="F0001") -> dt.timedelta:
    return dt.timedelta(days=Supplier.objects.get(company=company, code=code).payment_terms_days)


def lines_of(invoice: Invoice) -> list[LineData]:
    return [
        LineData(line.label, line.amount_ht, line.account_id, line.tax_code_id, line.analytic_section_id)
        for line in invoice.lines.all()
    ]


def correct(invoice: Invoice, **fields) -> Invoice:
    """What the form sends: every field, the due date as the page showed it unless given."""
    current = {"invoice_date": invoice.invoice_date, "due_date": invoice.due_date}
    return invoice_update(invoice=invoice, fields=current | fields, lines=lines_of(invoice), actor=None)


# --- the due date and where it came from ------------------------------------------------------------------


def test_a_due_date_from_the_supplier_terms_follows_a_corrected_invoice_date(pulled):
    invoice = make_invoice(pulled, invoice_date=CLOSED)
    assert (invoice.due_date_source, invoice.due_date) == (TERMS, CLOSED + terms_of(pulled))
    invoice = correct(invoice, invoice_date=OPEN)
    assert (invoice.due_date_source, invoice.due_date) == (TERMS, OPEN + terms_of(pulled))
    assert invoice.accounting_version == 2 and invoice.status == Invoice.Status.TO_VALIDATE


def test_a_change_of_supplier_takes_the_new_supplier_terms(pulled):
    invoice = make_invoice(pulled, invoice_date=OPEN)
    other = Supplier.objects.filter(company=pulled).exclude(payment_terms_days=terms_of(pulled).days).first()
    invoice = correct(invoice, supplier_id=other.pk)
    assert invoice.due_date == OPEN + dt.timedelta(days=other.payment_terms_days)


def test_a_typed_due_date_stays_when_the_invoice_date_moves(pulled):
    invoice = make_invoice(pulled, invoice_date=CLOSED)
    invoice = correct(invoice, due_date=dt.date(2026, 12, 31))
    assert invoice.due_date_source == Invoice.DueDateSource.TYPED
    invoice = correct(invoice, invoice_date=OPEN)
    assert invoice.due_date == dt.date(2026, 12, 31)


def test_a_due_date_read_in_the_e_invoice_stays_when_the_invoice_date_moves(pulled):
    invoice = make_invoice(pulled, invoice_date=CLOSED, due_date=dt.date(2026, 12, 20))
    assert invoice.due_date_source == Invoice.DueDateSource.DOCUMENT
    invoice = correct(invoice, invoice_date=OPEN)
    assert invoice.due_date == dt.date(2026, 12, 20)


def test_an_emptied_due_date_is_computed_from_the_terms_and_follows_the_date_again(pulled):
    invoice = make_invoice(pulled, invoice_date=OPEN, due_date=dt.date(2026, 12, 20))
    invoice = correct(invoice, due_date=None)
    assert (invoice.due_date_source, invoice.due_date) == (TERMS, OPEN + terms_of(pulled))


def test_existing_due_dates_get_their_origin_from_the_migration(pulled):
    migration = importlib.import_module("invoices.migrations.0006_invoice_due_date_source")
    from_terms = make_invoice(pulled, number="FA-T", invoice_date=OPEN)
    from_file = make_invoice(pulled, number="FA-F", invoice_date=OPEN, source_file="JNO/FA-F.xml")
    typed = make_invoice(pulled, number="FA-S", invoice_date=OPEN)
    Invoice.objects.filter(pk__in=[from_file.pk, typed.pk]).update(due_date=dt.date(2026, 12, 24))
    Invoice.objects.update(due_date_source=TERMS)
    migration.sources_of_existing_due_dates(apps, None)
    sources = dict(Invoice.objects.values_list("number", "due_date_source"))
    assert sources == {"FA-T": "terms", "FA-F": "document", "FA-S": "typed"}
    assert Invoice.objects.get(pk=from_terms.pk).due_date == OPEN + terms_of(pulled)


# --- the screen says what was saved and what blocks validation ---------------------------------------------


def messages_of(response) -> str:
    """The text of the message at the top of the page (its list items kept as markup)."""
    html = unescape(response.content.decode())
    block = html.split('id="messages">')[1].split('<button type="button" class="btn-close"')[0]
    return " ".join(block.split('role="alert">', 1)[-1].split())


@pytest.mark.django_db(transaction=True)
def test_moving_a_closed_period_date_forward_saves_validates_and_says_so(client, accountant, pulled, sage):
    """The issue's path: refused by Sage for its closed period, the date moved forward, « Enregistrer et valider »."""
    invoice = make_invoice(pulled, invoice_date=CLOSED, validate=True)
    export(pulled)
    invoice.refresh_from_db()
    assert invoice.export_state == ExportState.REJECTED
    assert Anomaly.objects.get(invoice=invoice, cleared_at__isnull=True).code == "PERIOD_CLOSED"
    client.force_login(accountant)
    url = reverse("invoices:detail", args=[invoice.pk])
    response = client.post(url, invoice_form(invoice, invoice_date=OPEN.isoformat(), validate="1"), follow=True)
    due = OPEN + terms_of(pulled)
    assert (
        "Facture enregistrée et validée : l'écriture est à exporter. Échéance recalculée avec le délai de paiement"
        f" du fournisseur : {due:%d/%m/%Y}." in messages_of(response)
    )
    invoice.refresh_from_db()
    assert (invoice.invoice_date, invoice.due_date, invoice.export_state) == (OPEN, due, ExportState.TO_EXPORT)
    assert not Anomaly.objects.filter(invoice=invoice, cleared_at__isnull=True).exists()


def test_a_refused_form_says_at_the_top_that_nothing_was_saved_and_keeps_the_input(client, accountant, pulled):
    invoice = make_invoice(pulled, invoice_date=CLOSED)
    invoice = correct(invoice, due_date=dt.date(2026, 4, 30))  # typed: it does not follow the date
    client.force_login(accountant)
    url = reverse("invoices:detail", args=[invoice.pk])
    response = client.post(url, invoice_form(invoice, invoice_date=OPEN.isoformat(), label="Gardé", validate="1"))
    text = messages_of(response)
    assert "Rien n'a été enregistré : corrigez les champs signalés." in text
    assert "<li>Échéance : L'échéance précède la date de facture.</li>" in text
    html = unescape(response.content.decode())
    assert 'value="Gardé"' in html and f'value="{OPEN.isoformat()}"' in html  # nothing typed is lost
    invoice.refresh_from_db()
    assert (invoice.invoice_date, invoice.label) == (CLOSED, "")


def test_saved_but_not_validated_lists_each_problem_at_the_top(client, accountant, pulled):
    invoice = make_invoice(pulled, invoice_date=OPEN)
    client.force_login(accountant)
    url = reverse("invoices:detail", args=[invoice.pk])
    response = client.post(url, invoice_form(invoice, total_tva="25.00", total_ttc="125.00", supplier="", validate="1"))
    text = messages_of(response)
    assert text.startswith("Facture enregistrée. Elle n'est pas validée :")
    assert "<li>Fournisseur manquant.</li>" in text and "ne correspond pas à la TVA des lignes" in text
    invoice.refresh_from_db()
    assert invoice.supplier is None and invoice.status == Invoice.Status.TO_COMPLETE  # the correction is kept


def test_enregistrer_says_what_is_left_to_complete(client, accountant, pulled):
    invoice = make_invoice(pulled, invoice_date=OPEN)
    client.force_login(accountant)
    url = reverse("invoices:detail", args=[invoice.pk])
    response = client.post(url, invoice_form(invoice, supplier=""), follow=True)
    text = messages_of(response)
    assert text.startswith("Facture enregistrée. Elle reste à compléter avant sa validation :")
    assert "<li>Fournisseur manquant.</li>" in text


def test_saving_nothing_new_says_so(client, accountant, pulled):
    invoice = make_invoice(pulled, invoice_date=OPEN)
    client.force_login(accountant)
    response = client.post(reverse("invoices:detail", args=[invoice.pk]), invoice_form(invoice), follow=True)
    assert messages_of(response).startswith("Aucune modification à enregistrer.")
    invoice.refresh_from_db()
    assert invoice.accounting_version == 1


def test_the_due_date_field_says_what_it_follows(client, accountant, pulled):
    from_terms = make_invoice(pulled, number="FA-T", invoice_date=OPEN)
    from_file = make_invoice(pulled, number="FA-F", invoice_date=OPEN, due_date=dt.date(2026, 12, 20))
    client.force_login(accountant)
    html = unescape(client.get(reverse("invoices:detail", args=[from_terms.pk])).content.decode())
    assert "Calculée avec le délai de paiement du fournisseur : elle suit la date de facture." in html
    html = unescape(client.get(reverse("invoices:detail", args=[from_file.pk])).content.decode())
    assert "Lue dans la facture électronique : elle ne suit pas la date de facture." in html
