"""A correction in Chromium: an invoice Sage refused for its closed period, its date moved forward.

The due date computed from the supplier's terms follows the new date, and every « Enregistrer » or « Enregistrer et
valider » says at the top what was saved and what blocks validation — including when nothing could be saved.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from companies.models import Supplier
from invoices.models import ExportState, Invoice
from tests.conftest import give_companies
from tests.support.browser import login, screenshot
from tests.support.exports import export, pull
from tests.support.invoices import make_invoice

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CLOSED = dt.date(2026, 2, 10)  # JNO's books are closed until 31 March 2026 in the stub
OPEN = dt.date(2026, 10, 15)


def test_an_accountant_moves_a_closed_period_date_forward_and_is_told_each_time(page, sage, bob, jno):
    bob.groups.add(Group.objects.get(name="Comptable"))
    give_companies(bob, jno)
    pull(jno)
    closed = make_invoice(jno, number="FA-CLOS", invoice_date=CLOSED, validate=True)
    typed = make_invoice(jno, number="FA-SAISIE", invoice_date=CLOSED, due_date=dt.date(2026, 4, 30), validate=True)
    export(jno)
    assert set(Invoice.objects.values_list("export_state", flat=True)) == {ExportState.REJECTED}
    terms = dt.timedelta(days=Supplier.objects.get(company=jno, code="F0001").payment_terms_days)
    login(page, "bob", "bob-password-2026")

    # The path: the due date came from the supplier's terms, so it follows the new date.
    page.goto(f"/factures/{closed.pk}/")
    expect(page.locator("#open-anomalies")).to_contain_text("PERIOD_CLOSED")
    page.get_by_label("Date de facture").fill(OPEN.isoformat())
    page.get_by_role("button", name="Enregistrer et valider").click()
    expect(page.locator("#messages")).to_contain_text(
        "Facture enregistrée et validée : l'écriture est à exporter. Échéance recalculée avec le délai de paiement"
        f" du fournisseur : {OPEN + terms:%d/%m/%Y}."
    )
    expect(page.get_by_label("Échéance")).to_have_value((OPEN + terms).isoformat())
    expect(page.locator("#open-anomalies")).to_have_count(0)
    screenshot(page, "correction-validee")

    # A due date read in the e-invoice stays: moved past it, nothing is saved, and the top of the page says why.
    page.goto(f"/factures/{typed.pk}/")
    expect(page.locator("#invoice-form")).to_contain_text("Lue dans la facture électronique")
    page.get_by_label("Date de facture").fill(OPEN.isoformat())
    page.get_by_role("button", name="Enregistrer et valider").click()
    messages = page.locator("#messages")
    expect(messages).to_contain_text("Rien n'a été enregistré : corrigez les champs signalés.")
    expect(messages.get_by_role("listitem")).to_have_text(["Échéance : L'échéance précède la date de facture."])
    expect(page.get_by_label("Date de facture")).to_have_value(OPEN.isoformat())  # what she typed is still there
    screenshot(page, "correction-refusee")
    assert Invoice.objects.get(pk=typed.pk).invoice_date == CLOSED

    # Emptied, the due date comes from the terms; a wrong VAT total is saved but blocks the validation: said too.
    page.get_by_label("Échéance").fill("")
    page.get_by_label("Total TVA").fill("25.00")
    page.get_by_label("Total TTC").fill("125.00")
    page.get_by_role("button", name="Enregistrer et valider").click()
    expect(messages).to_contain_text(
        re.compile(r"^\s*Facture enregistrée\. Échéance recalculée .* Elle n'est pas validée :")
    )
    expect(messages.get_by_role("listitem")).to_have_text(
        ["Le total TVA de la facture (25,00 €) ne correspond pas à la TVA des lignes (20,00 €)."]
    )
    screenshot(page, "correction-non-validee")
    page.get_by_label("Total TVA").fill("20.00")
    page.get_by_label("Total TTC").fill("120.00")
    page.get_by_role("button", name="Enregistrer et valider").click()
    expect(messages).to_contain_text("Facture enregistrée et validée : l'écriture est à exporter.")
    typed.refresh_from_db()
    assert (typed.invoice_date, typed.due_date, typed.export_state) == (OPEN, OPEN + terms, ExportState.TO_EXPORT)
    assert page.console_errors == []
