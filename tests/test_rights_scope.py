"""« Droits » for a manager limited to some companies: he gives, takes and reads access within them only.

bob manages the rights of JNO only (he holds « Gérer les droits », « Visuel Synchronisations » and « Voir les
factures »); alice is the superuser; MULTI is a company bob does not see.
"""

from __future__ import annotations

from html import unescape

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import reverse

from accounts.services import RightsDenied, UserRights, rights_save
from companies.models import CompanyAccess
from core.models import AuditEvent
from tests.conftest import give_companies, grant, make_company

URL = reverse("accounts:rights")
User = get_user_model()


@pytest.fixture
def companies(connector):
    return make_company(connector, "JNO"), make_company(connector, "MULTI")


@pytest.fixture
def manager(bob, companies):
    jno, _multi = companies
    grant(bob, "accounts.manage_rights", "synchro.view_synchronisations", "invoices.view_invoices")
    give_companies(bob, jno)
    return bob


@pytest.fixture
def dave(db):
    return User.objects.create_user("dave", "dave@example.com", "dave-password-2026")


def _matrix(user, *, perms=(), groups=None, all_companies=False, companies=()):
    data = {"users": [user.pk], f"perm-u{user.pk}": list(perms), f"companies-u{user.pk}": [c.pk for c in companies]}
    if groups is not None:
        data[f"groups-u{user.pk}"] = [g.pk for g in groups]
    if all_companies:
        data[f"all-u{user.pk}"] = "on"
    return data


def _access(user) -> tuple[bool, set[str]]:
    access = CompanyAccess.objects.filter(user=user).first()
    if access is None:
        return False, set()
    return access.all_companies, {c.code for c in access.companies.all()}


def _fresh(user):
    return User.objects.get(pk=user.pk)


def _page(client) -> str:
    return unescape(client.get(URL).content.decode())


# --- what a limited manager may not do: refused on the server, 403, nothing saved -----------------------


def test_a_limited_manager_cannot_give_himself_every_company(client, manager, companies):
    jno, _multi = companies
    client.force_login(manager)
    response = client.post(URL, _matrix(manager, perms=["accounts.manage_rights"], all_companies=True, companies=[jno]))
    assert response.status_code == 403
    assert _access(manager) == (False, {"JNO"})
    assert not AuditEvent.objects.filter(action__startswith="rights.").exists()


def test_the_refusal_says_why_in_french(client, manager, charlie, companies):
    client.force_login(manager)
    response = client.post(URL, _matrix(charlie, all_companies=True), follow=True)
    assert response.status_code == 403
    html = unescape(response.content.decode())
    assert "Seul un gestionnaire des droits qui voit toutes les sociétés peut donner « Toutes les sociétés »." in html
    assert _access(charlie) == (False, set())


def test_a_limited_manager_cannot_edit_a_user_who_sees_more(client, manager, charlie, dave, companies):
    jno, multi = companies
    give_companies(charlie, jno, multi)
    give_companies(dave, all_companies=True)
    grant(charlie, "synchro.view_synchronisations")
    client.force_login(manager)
    # Taking JNO from charlie, or a right, or keeping things as they are: charlie sees MULTI, bob may not touch him.
    for data in (
        _matrix(charlie, perms=["synchro.view_synchronisations"], companies=[]),
        _matrix(charlie, perms=[], companies=[jno]),
        _matrix(dave, companies=[jno]),
    ):
        assert client.post(URL, data).status_code == 403
    assert _access(charlie) == (False, {"JNO", "MULTI"})
    assert _fresh(charlie).has_perm("synchro.view_synchronisations")
    assert _access(dave) == (True, set())


def test_a_limited_manager_cannot_change_group_membership(client, manager, charlie, companies):
    jno, _multi = companies
    give_companies(charlie, jno)
    client.force_login(manager)
    comptable = Group.objects.get(name="Comptable")
    assert client.post(URL, _matrix(charlie, groups=[comptable], companies=[jno])).status_code == 403
    assert not _fresh(charlie).groups.exists()
    charlie.groups.add(comptable)
    administrateur = Group.objects.get(name="Administrateur")
    assert client.post(URL, _matrix(charlie, groups=[administrateur], companies=[jno])).status_code == 403
    assert list(_fresh(charlie).groups.all()) == [comptable]


def test_a_limited_manager_cannot_change_a_groups_rights(client, manager):
    comptable = Group.objects.get(name="Comptable")
    before = set(comptable.permissions.values_list("codename", flat=True))
    client.force_login(manager)
    every = [f"{p.content_type.app_label}.{p.codename}" for p in comptable.permissions.select_related("content_type")]
    for perms in ([], ["synchro.view_synchronisations"], [*every, "accounts.manage_rights"]):
        data = {"groups_shown": [comptable.pk], f"perm-g{comptable.pk}": perms}
        assert client.post(URL, data).status_code == 403
    assert set(comptable.permissions.values_list("codename", flat=True)) == before


def test_nobody_gives_a_right_he_does_not_hold(client, manager, charlie, companies):
    jno, _multi = companies
    client.force_login(manager)
    for right in ("invoices.give_bap", "companies.update_companies", "connectors.manage_connectors"):
        response = client.post(URL, _matrix(charlie, perms=[right], companies=[jno]), follow=True)
        assert response.status_code == 403
        assert "Vous ne pouvez pas donner un droit que vous n'avez pas" in unescape(response.content.decode())
    assert not charlie.user_permissions.exists()


def test_a_manager_who_sees_every_company_gives_only_rights_and_groups_he_holds(client, bob, charlie):
    grant(bob, "accounts.manage_rights")
    give_companies(bob, all_companies=True)
    client.force_login(bob)
    administrateur = Group.objects.get(name="Administrateur")
    assert client.post(URL, _matrix(charlie, groups=[administrateur])).status_code == 403
    assert client.post(URL, _matrix(charlie, perms=["invoices.give_bap"])).status_code == 403
    data = {"groups_shown": [administrateur.pk], f"perm-g{administrateur.pk}": ["accounts.manage_rights"]}
    # Taking rights away from a group is his to do; that is what this POST does.
    assert client.post(URL, data).status_code == 302
    assert set(administrateur.permissions.values_list("codename", flat=True)) == {"manage_rights"}
    comptable = Group.objects.get(name="Comptable")
    data = {"groups_shown": [comptable.pk], f"perm-g{comptable.pk}": ["companies.update_companies"]}
    assert client.post(URL, data).status_code == 403
    assert not _fresh(charlie).groups.exists()


def test_forged_posts_get_a_refusal_never_a_500(client, manager, charlie, companies):
    _jno, multi = companies
    client.force_login(manager)
    for data in (
        {"users": ["1e3"]},
        {"users": [charlie.pk], f"companies-u{charlie.pk}": ["x"]},
        {"users": [charlie.pk], f"groups-u{charlie.pk}": [999999]},
        {"users": [charlie.pk], f"companies-u{charlie.pk}": [multi.pk]},
        {"groups_shown": [999999]},
        {"users": [charlie.pk], f"perm-u{charlie.pk}": ["auth.add_user"]},
    ):
        assert client.post(URL, data).status_code in (400, 403, 404), data
    assert _access(charlie) == (False, set())


def test_the_service_refuses_whatever_the_caller(manager, charlie, companies):
    _jno, multi = companies
    with pytest.raises(RightsDenied):
        rights_save(actor=manager, users=[UserRights(user_id=charlie.pk, company_ids={multi.pk})], groups=[])
    with pytest.raises(RightsDenied):
        rights_save(actor=manager, users=[UserRights(user_id=manager.pk, all_companies=True)], groups=[])
    assert _access(charlie) == (False, set()) and _access(manager) == (False, {"JNO"})


# --- what a limited manager does: within his companies ----------------------------------------------------


def test_a_limited_manager_gives_and_takes_access_within_his_companies(client, manager, charlie, companies):
    jno, _multi = companies
    client.force_login(manager)
    response = client.post(URL, _matrix(charlie, perms=["synchro.view_synchronisations"], companies=[jno]), follow=True)
    assert "Droits enregistrés : 1 modification." in unescape(response.content.decode())
    assert _access(charlie) == (False, {"JNO"})
    assert _fresh(charlie).has_perm("synchro.view_synchronisations")
    client.post(URL, _matrix(charlie, perms=[], companies=[]))
    assert _access(charlie) == (False, set())
    assert not _fresh(charlie).has_perm("synchro.view_synchronisations")


def test_a_limited_manager_may_take_away_a_right_he_does_not_hold(client, manager, charlie, companies):
    jno, _multi = companies
    give_companies(charlie, jno)
    grant(charlie, "invoices.give_bap")
    client.force_login(manager)
    assert client.post(URL, _matrix(charlie, perms=[], companies=[jno])).status_code == 302
    assert not _fresh(charlie).has_perm("invoices.give_bap")


def test_the_groups_and_every_company_left_unsent_stay_as_they_are(client, manager, charlie, companies):
    jno, _multi = companies
    comptable = Group.objects.get(name="Comptable")
    charlie.groups.add(comptable)
    give_companies(charlie, jno)
    client.force_login(manager)
    # What the browser sends: the disabled group boxes are not in the form at all.
    assert client.post(URL, _matrix(charlie, perms=["invoices.view_invoices"], companies=[jno])).status_code == 302
    assert list(_fresh(charlie).groups.all()) == [comptable]
    assert _fresh(charlie).has_perm("invoices.view_invoices")


# --- what the screen shows him ------------------------------------------------------------------------


def test_the_screen_shows_a_limited_manager_only_what_he_may_change(client, manager, charlie, dave, companies):
    jno, multi = companies
    give_companies(charlie, jno, multi)
    give_companies(dave, jno)
    client.force_login(manager)
    html = _page(client)
    assert "MULTI" not in html  # neither as an option nor in a user's companies
    assert "Vous voyez une partie des sociétés" in html
    charlie_row = html.split('data-username="charlie"')[1].split("</tr>")[0]
    assert "Voit des sociétés que vous ne voyez pas" in charlie_row
    assert f'name="users" value="{charlie.pk}"' not in charlie_row
    assert charlie_row.count("disabled") >= 7 + 2 + 2  # every right, both groups, every company, the list
    assert "et des sociétés que vous ne voyez pas" in charlie_row
    dave_row = html.split('data-username="dave"')[1].split("</tr>")[0]
    assert f'name="users" value="{dave.pk}"' in dave_row
    all_box = dave_row.split(f'name="all-u{dave.pk}"')[1].split(">")[0]
    assert "disabled" in all_box
    bap_box = dave_row.split('value="invoices.give_bap"')[1].split(">")[0]
    view_box = dave_row.split('value="synchro.view_synchronisations"')[1].split(">")[0]
    assert "disabled" in bap_box and "disabled" not in view_box
    assert "Vous n'avez pas ce droit : vous ne pouvez pas le donner." in dave_row
    assert "Les cases grisées sont des droits que vous n'avez pas vous-même" in html
    assert 'name="groups_shown"' not in html


def test_the_audit_log_shows_a_limited_manager_only_changes_within_his_companies(
    client, alice, manager, charlie, dave, companies
):
    jno, multi = companies
    give_companies(alice, all_companies=True)
    client.force_login(alice)
    client.post(URL, _matrix(charlie, companies=[multi]))
    client.post(URL, _matrix(dave, perms=["invoices.view_invoices"], companies=[jno]))
    client.post(URL, _matrix(dave, perms=["invoices.view_invoices"], companies=[jno, multi]))
    comptable = Group.objects.get(name="Comptable")
    client.post(URL, {"groups_shown": [comptable.pk], f"perm-g{comptable.pk}": ["invoices.view_invoices"]})
    assert AuditEvent.objects.filter(action__startswith="rights.").count() == 4
    client.force_login(manager)
    journal = _page(client).split("Journal des modifications")[1]
    assert "dave — droits ajoutés : Voir les factures ; sociétés : JNO" in journal
    assert "MULTI" not in journal and "charlie" not in journal and "groupe Comptable" not in journal
    client.force_login(alice)
    journal = _page(client).split("Journal des modifications")[1]
    assert "MULTI" in journal and "groupe Comptable" in journal


def test_the_screen_reads_in_a_bounded_number_of_queries(client, manager, companies, django_assert_max_num_queries):
    jno, _multi = companies
    for number in range(20):
        user = User.objects.create_user(f"user{number:02d}")
        give_companies(user, jno)
        grant(user, "invoices.view_invoices")
    client.force_login(manager)
    with django_assert_max_num_queries(25):
        assert client.get(URL).status_code == 200
