"""``field__any``: one array parameter on PostgreSQL, the same rows as ``__in``."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db


def test_it_selects_the_same_rows_as_in():
    users = [User.objects.create(username=f"u{index}") for index in range(5)]
    wanted = [users[0].pk, users[3].pk]
    assert sorted(User.objects.filter(pk__any=wanted).values_list("pk", flat=True)) == sorted(wanted)
    assert list(User.objects.filter(username__any=["u1", "u4"]).order_by("pk").values_list("username", flat=True)) == [
        "u1",
        "u4",
    ]
    permissions = Permission.objects.filter(content_type_id__any=[Permission.objects.first().content_type_id])
    assert permissions.count() == Permission.objects.filter(content_type_id=permissions[0].content_type_id).count()


def test_an_empty_list_selects_nothing():
    User.objects.create(username="u0")
    assert not User.objects.filter(pk__any=[]).exists()
    assert User.objects.filter(pk__any=()).update(first_name="x") == 0


def test_it_updates_through_one_array_parameter():
    users = [User.objects.create(username=f"u{index}") for index in range(3)]
    with CaptureQueriesContext(connection) as queries:
        changed = User.objects.filter(pk__any=(user.pk for user in users[:2])).update(first_name="Alice")
    assert changed == 2
    assert list(User.objects.order_by("pk").values_list("first_name", flat=True)) == ["Alice", "Alice", ""]
    if connection.vendor == "postgresql":
        assert "= ANY(" in queries[0]["sql"]
        assert " IN (" not in queries[0]["sql"]


def test_any_refuses_values_it_would_send_unprepared():
    from companies.models import Company

    with pytest.raises(TypeError, match="integers or strings"):
        list(Company.objects.filter(pk__any=[Company(pk=1)]))


def test_an_integer_the_column_cannot_hold_matches_nothing_instead_of_an_error():
    user = User.objects.create(username="u")
    assert list(User.objects.filter(pk__any=[10**30, -(10**30), user.pk])) == [user]
    assert list(User.objects.filter(pk__any=[2**63])) == []
    assert Permission.objects.filter(content_type_id__any=[10**20]).count() == 0
