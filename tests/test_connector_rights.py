"""The connectors and the schedule act for every company: only a user who sees every company may change them.

bob is in the ready group « Administrateur » (which gives « Paramétrage des connecteurs ») but sees JNO only.
"""

from __future__ import annotations

from html import unescape

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from companies.models import Company, CompanyAccess
from connectors.models import Connector, SyncSchedule
from core.models import AuditEvent
from synchro.models import SyncRun
from tests.conftest import give_companies, make_company
from tests.support.connectors import connector_form


@pytest.fixture
def limited_admin(bob, jno):
    bob.groups.add(Group.objects.get(name="Administrateur"))
    give_companies(bob, jno)
    return bob


def test_a_user_limited_to_some_companies_changes_no_connector(client, limited_admin, connector, sage):
    client.force_login(limited_admin)
    url_before = connector.url
    new = {"new-name": "Autre", "new-url": "http://x.example", "new-api_key": "k"}
    attempts = [
        ("get", reverse("connectors:settings"), None),
        ("post", reverse("connectors:save", args=[connector.pk]), connector_form(connector, url="http://ailleurs.example")),
        ("post", reverse("connectors:create"), new),
        ("post", reverse("connectors:test", args=[connector.pk]), {}),
        ("post", reverse("connectors:schedule"), {"frequency": "daily", "time": "03:00", "enabled": "on"}),
        ("post", reverse("synchro:sync_now"), {}),
        ("get", reverse("synchro:recent_runs"), None),
    ]  # fmt: skip
    for method, url, data in attempts:
        response = getattr(client, method)(url, data) if data is not None else getattr(client, method)(url)
        assert response.status_code == 403, url
    connector.refresh_from_db()
    assert connector.url == url_before and Connector.objects.count() == 1
    assert not SyncSchedule.objects.filter(enabled=True).exists()
    assert not SyncRun.objects.exists()
    assert not AuditEvent.objects.filter(action__in=["connector.changed", "schedule.changed"]).exists()
    assert sage.stats().get("GET health", 0) == 0


def test_the_menu_and_the_societe_screen_offer_nothing_that_acts_on_every_company(client, limited_admin, connector):
    client.force_login(limited_admin)
    home = unescape(client.get(reverse("home")).content.decode())
    assert "Paramétrage des connecteurs" not in home and "Société" in home
    societe = unescape(client.get(reverse("companies:list")).content.decode())
    assert reverse("companies:discover") not in societe
    response = client.post(reverse("companies:discover"), follow=True)
    assert "demande le droit « Paramétrage des connecteurs »" in unescape(response.content.decode())
    assert list(Company.objects.values_list("code", flat=True)) == ["JNO"]


def test_every_company_makes_the_same_group_effective(client, limited_admin, connector, jno, multi):
    CompanyAccess.objects.filter(user=limited_admin).update(all_companies=True)
    client.force_login(limited_admin)
    assert client.get(reverse("connectors:settings")).status_code == 200
    response = client.post(reverse("synchro:sync_now"), follow=True)
    assert "Synchronisation lancée" in unescape(response.content.decode())
    # « Synchroniser maintenant » is the automatic run: every active company, as the schedule would.
    assert {line.company.code for line in SyncRun.objects.get().companies.all()} == {"JNO", "MULTI"}


def test_the_droits_screen_says_the_right_has_no_effect_without_every_company(client, alice, limited_admin, connector):
    make_company(connector, "MULTI")
    client.force_login(alice)
    html = unescape(client.get(reverse("accounts:rights")).content.decode())
    row = html.split('data-username="bob"')[1].split("</tr>")[0]
    assert "Sans effet : ce droit demande « Toutes les sociétés »." in row
    assert not type(limited_admin).objects.get(pk=limited_admin.pk).has_perm("connectors.manage_connectors")
