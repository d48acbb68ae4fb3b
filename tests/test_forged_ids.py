"""Ids of another company's rows, forged into the form fields and filters of a user who sees JNO only: refused or
ignored, never used, never a 500. (The ids in URLs are walked by tests/test_url_rights.py.)"""

from __future__ import annotations

from html import unescape

import pytest
from django.urls import reverse

from companies.models import Account, Supplier
from invoices.models import Invoice
from synchro.models import SyncRun, SyncRunCompany
from tests.conftest import give_companies, grant
from tests.support.exports import pull
from tests.support.invoices import invoice_form, make_invoice


@pytest.fixture
def pulled(jno, multi):
    return pull(jno), pull(multi)


@pytest.fixture
def accountant(bob, pulled):
    jno, _multi = pulled
    grant(bob, "invoices.view_invoices", "invoices.edit_invoices", "synchro.view_synchronisations")
    give_companies(bob, jno)
    return bob


def test_another_companys_supplier_account_or_line_cannot_be_put_on_an_invoice(client, accountant, pulled):
    jno, multi = pulled
    mine = make_invoice(jno)
    theirs = make_invoice(multi, number="FA-MULTI", analytic="ADM")
    their_supplier = Supplier.objects.get(company=multi, code="F0001")
    their_account = Account.objects.get(company=multi, code="606400")
    client.force_login(accountant)
    url = reverse("invoices:detail", args=[mine.pk])
    for forged in (
        {"supplier": their_supplier.pk},
        {"lines-0-account": their_account.pk},
        {"lines-0-id": theirs.lines.get().pk, "lines-0-label": "écrasée ?"},
    ):
        response = client.post(url, invoice_form(mine, **forged))
        assert response.status_code in (200, 302), forged
        if response.status_code == 200:
            assert "Sélectionnez un choix valide" in unescape(response.content.decode())
    mine.refresh_from_db()
    assert mine.supplier.company_id == jno.pk
    assert {line.account.company_id for line in mine.lines.all()} == {jno.pk}
    assert theirs.lines.get().label == "Fournitures"
    assert Invoice.objects.get(pk=theirs.pk).supplier == their_supplier


def test_another_companys_id_in_a_filter_or_a_run_shows_nothing_of_it(client, accountant, pulled):
    jno, multi = pulled
    make_invoice(jno, validate=True)
    make_invoice(multi, number="FA-MULTI", analytic="ADM", validate=True)
    their_run = SyncRun.objects.create(trigger=SyncRun.Trigger.EXPORT)
    SyncRunCompany.objects.create(run=their_run, company=multi)
    client.force_login(accountant)
    for url in (
        f"{reverse('synchro:list')}?company={multi.pk}&run={their_run.pk}",
        f"{reverse('synchro:csv')}?company={multi.pk}",
        f"{reverse('invoices:list')}?company={multi.pk}",
    ):
        # An id he cannot choose is an invalid filter: the CSV sends him back to the screen, which says so.
        response = client.get(url, follow=True)
        assert response.status_code == 200, url
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert "FA-MULTI" not in body.decode() and "MULTI" not in body.decode().replace("FA-MULTI", ""), url
    response = client.post(
        reverse("synchro:export"), {"type": "creation", "company": multi.pk, "select_all": "1"}, follow=True
    )
    assert response.status_code == 200
    assert not SyncRun.objects.exclude(pk=their_run.pk).exists()


WEIRD_NUMBERS = ("²", "١٢", "9" * 30, "-1", "1.5", "1e3", "0x10", " 1", "\x00")


def test_numbers_that_are_not_plain_ascii_digits_in_any_query_parameter_are_ignored_never_a_500(admin_client, pulled):
    """Python's ``isdigit`` takes « ² » and Arabic-Indic digits, ``int`` refuses the first; 30 digits overflow a key."""
    jno, _multi = pulled
    make_invoice(jno, validate=True)
    names = ("run", "company", "after", "before", "last", "page", "status", "kind", "type", "user", "supplier")
    for url in (
        reverse("synchro:list"),
        reverse("synchro:csv"),
        reverse("synchro:history"),
        reverse("synchro:recent_runs"),
        reverse("invoices:list"),
        reverse("invoices:imports"),
        reverse("companies:list"),
        reverse("accounts:rights"),
    ):
        for weird in WEIRD_NUMBERS:
            response = admin_client.get(url, {name: weird for name in names})
            assert response.status_code < 500, (url, weird)
            if response.streaming:
                b"".join(response.streaming_content)


def test_forged_ids_of_thirty_digits_or_odd_digits_in_a_post_are_refused_never_a_500(admin_client, pulled):
    jno, _multi = pulled
    make_invoice(jno, validate=True)
    for weird in ("9" * 30, "²", "١٢", "-1"):
        for url, data in (
            (reverse("synchro:export"), {"type": "creation", "invoices": [weird]}),
            (reverse("companies:pull"), {"companies": [weird]}),
        ):
            response = admin_client.post(url, data)
            assert response.status_code < 500, (url, weird)
