"""``seed_demo`` loads the manual's demo against the stub: companies, users, referential, invoices, samples."""

from __future__ import annotations

from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from companies.models import Company, Supplier
from invoices.models import ExportState, Invoice

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_loads_the_demo_once(sage, settings, tmp_path):
    settings.SAGE_FRP1000_URL = sage.url
    settings.SAGE_FRP1000_API_KEY = sage.api_key
    settings.SCAN_ROOT = tmp_path
    call_command("seed_demo")
    assert list(Company.objects.values_list("name", "code", "scan_directory")) == [
        ("AKAO", "AKAO", "C0071000325_data_9"),
        ("avirer", "avirer", "C0071000325_data_25"),
        ("JNO", "JNO", "C0071000325_data_6"),
        ("MULTI", "MULTI", "C0071000325_data_8"),
        ("S4", "S4", "C0071000325_data_4"),
        ("SA AKAO", "SA AKAO", "C0071000325_data_15"),
        ("Société 1", "Société 1", "C0071000325_data_1"),
        ("Société JNO", "SJNO", "C0071000325_data_27"),
        ("Société S1", "S1", "C0071000325_data_3"),
        ("Société S2", "S2", "C0071000325_data_2"),
    ]
    assert set(Company.objects.values_list("pull_status", flat=True)) == {Company.PullStatus.SUCCEEDED}
    assert Supplier.objects.filter(code="F0042", blocked=True).count() == 10
    users = get_user_model().objects
    assert users.get(username="admin").check_password("sfd-demo-admin")
    assert users.get(username="comptable").has_perm("synchro.view_synchronisations")

    statuses = Counter(Invoice.objects.values_list("status", flat=True))
    assert Invoice.objects.count() >= 28
    assert all(statuses[status] > 0 for status in Invoice.Status.values)
    assert Invoice.objects.filter(export_state=ExportState.REJECTED).count() >= 2
    assert Invoice.objects.filter(update_state=ExportState.TO_EXPORT).exists()
    rejected = set(Invoice.objects.filter(export_state=ExportState.REJECTED).values_list("anomalies__code", flat=True))
    assert {"SUPPLIER_BLOCKED", "DUPLICATE_INVOICE"} <= rejected
    assert (tmp_path / "C0071000325_data_6").is_dir() and any((tmp_path / "C0071000325_data_6").iterdir())

    before = Invoice.objects.count()
    call_command("seed_demo")
    assert Invoice.objects.count() == before and Company.objects.count() == 10
