"""« Administration → Droits »: the matrix, per-company access, the audit log, the last-admin guard."""

from __future__ import annotations

from html import unescape

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from companies.models import CompanyAccess
from companies.selectors import companies_for_user
from core.models import AuditEvent
from tests.conftest import give_companies, grant, make_company

URL = reverse("accounts:rights")


@pytest.fixture
def admin(bob):
    # Every right (a manager gives only the rights he holds) and every company.
    bob.groups.add(Group.objects.get(name="Administrateur"))
    give_companies(bob, all_companies=True)
    return bob


def _matrix(user, *, perms=(), groups=(), all_companies=False, companies=()):
    data = {"users": [user.pk], f"perm-u{user.pk}": list(perms), f"groups-u{user.pk}": [g.pk for g in groups]}
    if all_companies:
        data[f"all-u{user.pk}"] = "on"
    data[f"companies-u{user.pk}"] = [c.pk for c in companies]
    return data


def test_it_requires_the_right(client, charlie):
    client.force_login(charlie)
    assert client.get(URL).status_code == 403


def test_it_shows_the_matrix_and_the_ready_groups(client, admin, charlie):
    client.force_login(admin)
    html = client.get(URL).content.decode()
    for label in (
        "Mettre à jour les sociétés",
        "Visuel Synchronisations",
        "Paramétrage des connecteurs",
        "Gérer les droits",
    ):
        assert label in html
    assert 'data-username="charlie"' in html
    assert 'data-group="Administrateur"' in html and 'data-group="Comptable"' in html


def test_the_ready_groups_carry_their_rights(db):
    admin = set(Group.objects.get(name="Administrateur").permissions.values_list("codename", flat=True))
    accountant = set(Group.objects.get(name="Comptable").permissions.values_list("codename", flat=True))
    assert {"manage_rights", "update_companies", "manage_connectors", "view_synchronisations"} <= admin
    assert "view_synchronisations" in accountant and "manage_rights" not in accountant


def test_it_searches_by_name(client, admin, charlie):
    client.force_login(admin)
    html = client.get(URL, {"q": "char"}).content.decode()
    assert 'data-username="charlie"' in html and 'data-username="bob"' not in html


def test_it_saves_rights_and_companies_and_writes_the_audit_log(client, admin, charlie, connector):
    jno, multi = make_company(connector, "JNO"), make_company(connector, "MULTI")
    client.force_login(admin)
    response = client.post(URL, _matrix(charlie, perms=["synchro.view_synchronisations"], companies=[jno]), follow=True)
    assert "Droits enregistrés" in response.content.decode()
    assert charlie.has_perm("synchro.view_synchronisations")
    assert list(companies_for_user(charlie)) == [jno]
    event = AuditEvent.objects.get(action="rights.user_changed")
    assert event.actor == admin
    assert "charlie" in event.summary and "Visuel Synchronisations" in event.summary and "JNO" in event.summary
    assert "charlie" in client.get(URL).content.decode().split("Journal des modifications")[1]
    client.post(URL, _matrix(charlie, all_companies=True))
    assert set(companies_for_user(charlie)) == {jno, multi}
    assert not type(charlie).objects.get(pk=charlie.pk).has_perm("synchro.view_synchronisations")


def test_a_group_gives_its_rights(client, admin, charlie):
    client.force_login(admin)
    client.post(URL, _matrix(charlie, groups=[Group.objects.get(name="Comptable")]))
    charlie = type(charlie).objects.get(pk=charlie.pk)
    assert charlie.has_perm("invoices.give_bap")
    html = client.get(URL, {"q": "charlie"}).content.decode()
    assert "Comptable" in html


def test_group_rights_are_saved(client, admin):
    group = Group.objects.get(name="Comptable")
    client.force_login(admin)
    client.post(URL, {"groups_shown": [group.pk], f"perm-g{group.pk}": ["invoices.view_invoices"]})
    assert set(group.permissions.values_list("codename", flat=True)) == {"view_invoices"}


def test_the_last_holder_cannot_remove_their_own_right(client, admin):
    client.force_login(admin)
    response = client.post(URL, _matrix(admin, all_companies=True), follow=True)
    assert "plus personne n'aurait le droit « Gérer les droits »" in unescape(response.content.decode())
    assert type(admin).objects.get(pk=admin.pk).has_perm("accounts.manage_rights")
    assert not AuditEvent.objects.filter(action="rights.user_changed").exists()


def test_a_holder_may_leave_when_another_remains(client, admin, charlie):
    grant(charlie, "accounts.manage_rights")
    client.force_login(admin)
    client.post(URL, _matrix(admin, all_companies=True))
    assert not type(admin).objects.get(pk=admin.pk).has_perm("accounts.manage_rights")


def test_forged_posts_are_refused(client, admin, charlie, connector):
    client.force_login(admin)
    assert client.post(URL, {"users": ["x"]}).status_code == 400
    assert client.post(URL, {"users": [999999]}).status_code == 404
    assert client.post(URL, _matrix(charlie, perms=["auth.delete_user"])).status_code == 400
    assert not charlie.user_permissions.exists()


def test_it_cannot_give_a_company_the_administrator_does_not_see(client, bob, charlie, connector):
    jno, multi = make_company(connector, "JNO"), make_company(connector, "MULTI")
    grant(bob, "accounts.manage_rights")
    give_companies(bob, jno)
    give_companies(charlie, multi)
    client.force_login(bob)
    assert client.post(URL, _matrix(charlie, companies=[multi])).status_code == 404
    # charlie sees MULTI, which bob does not: bob may not touch charlie at all (tests/test_rights_scope.py).
    assert client.post(URL, _matrix(charlie, companies=[jno])).status_code == 403
    assert set(CompanyAccess.objects.get(user=charlie).companies.all()) == {multi}


def test_the_menu_shows_only_what_the_user_may_open(client, charlie):
    client.force_login(charlie)
    html = client.get(reverse("home")).content.decode()
    assert 'id="menu-administration"' not in html and "Aucun droit" in html
    grant(charlie, "companies.update_companies")
    html = client.get(reverse("home")).content.decode()
    assert ">Société<" in html and ">Droits<" not in html


def test_only_the_current_page_is_active_in_the_menu(client, alice):
    client.force_login(alice)
    menu = client.get(reverse("synchro:history")).context["administration_menu"]
    assert [entry["label"] for entry in menu if entry["active"]] == ["Historique des synchronisations"]
