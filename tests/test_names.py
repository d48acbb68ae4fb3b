"""One word per idea: what counts as automatic is said once, renamed choices keep the values rows already hold, and
the models and their migrations agree."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from core.services import actor_label
from invoices.models import ExportState, InvoiceEvent
from synchro.models import Anomaly, SyncItem, SyncRun

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("trigger", "automatic"),
    [
        (SyncRun.Trigger.SYNC_NOW, True),
        (SyncRun.Trigger.SCHEDULE, True),
        (SyncRun.Trigger.EXPORT, False),
        (SyncRun.Trigger.SIMULATION, False),
    ],
)
def test_synchroniser_maintenant_and_the_schedule_are_the_automatic_runs(trigger, automatic):
    assert SyncRun(trigger=trigger).is_automatic is automatic


def test_the_same_french_state_has_the_same_english_name():
    assert ExportState.TO_EXPORT.label == SyncItem.Status.TO_EXPORT.label
    assert ExportState.INTEGRATED.label == SyncItem.Status.INTEGRATED.label
    assert ExportState.REJECTED.label == SyncItem.Status.REJECTED.label
    assert ExportState.UNKNOWN.label == SyncItem.Status.UNKNOWN.label
    assert ExportState.SENDING.label == SyncItem.Status.SENDING.label


def test_renamed_choices_keep_the_values_stored_before():
    stored = {
        SyncRun.Trigger.SYNC_NOW: "manual",
        ExportState.INTEGRATED: "done",
        SyncItem.Status.TO_EXPORT: "pending",
        Anomaly.Source.SFD: "sfd",
        Anomaly.ClearedReason.INTEGRATED: "intégrée",
        Anomaly.ClearedReason.CORRECTED: "corrigée",
        InvoiceEvent.Kind.INTEGRATED: "integrated",
    }
    assert {choice: choice.value for choice in stored} == stored


def test_the_models_and_their_migrations_agree():
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_the_actor_of_a_history_line_is_said_once(bob):
    bob.first_name, bob.last_name = "Bob", "Martin"
    assert actor_label(bob) == "Bob Martin"
    assert actor_label(None) == "automatique"
