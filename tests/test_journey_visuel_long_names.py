"""Visuel Synchronisations in Chromium at 1400 px with the longest names SFD accepts: a company of 200 characters, a
supplier of 255, an invoice number of 60. The table keeps to the screen; each name is cut, whole on hover."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from companies.models import Company, Supplier
from companies.services import company_referential_pull
from tests.conftest import give_companies
from tests.support.browser import login, screenshot
from tests.support.invoices import make_invoice

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_longest_names_keep_the_table_on_screen(page, sage, bob, jno):
    bob.groups.add(Group.objects.get(name="Comptable"))
    give_companies(bob, all_companies=True)
    company_referential_pull(company=jno)
    supplier_name = ("Établissements Généraux de Fournitures Industrielles et de Services " * 4)[:255]
    company_name = ("Société Anonyme des Entreprises Réunies du Grand Ouest " * 4)[:200]
    Supplier.objects.filter(company=jno, code="F0001").update(label=supplier_name)
    Company.objects.filter(pk=jno.pk).update(name=company_name)
    make_invoice(jno, number="FA-" + "9" * 57, validate=True)
    make_invoice(jno, number="FA-COURT", supplier="F0002", validate=True)

    login(page, "bob", "bob-password-2026")
    page.goto("/administration/synchronisations/")
    rows = page.locator("#visuel-rows tbody tr")
    expect(rows).to_have_count(2)
    supplier_cell = rows.filter(has_text="FA-999").locator(".cell-supplier")
    expect(supplier_cell).to_have_attribute("title", f"F0001 – {supplier_name}")
    screenshot(page, "visuel-noms-longs")

    widths = page.evaluate(
        """() => {
            const box = document.querySelector('#visuel-rows .table-responsive');
            return {
                page: document.documentElement.scrollWidth,
                viewport: window.innerWidth,
                table: box.scrollWidth,
                container: box.clientWidth,
                supplier: document.querySelector('.cell-supplier').getBoundingClientRect().width,
            };
        }"""
    )
    assert widths["page"] <= widths["viewport"] == 1400, widths
    assert widths["table"] <= widths["container"], widths
    # Cut, not wrapped over many lines nor hidden: one line of a readable width.
    assert 150 < widths["supplier"] <= 18 * 16 + 1, widths
    assert page.console_errors == []
