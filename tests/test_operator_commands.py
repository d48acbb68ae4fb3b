"""Operator commands: pull, export (or simulate), synchronise, purge the history."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from companies.models import Supplier
from companies.services import company_referential_pull
from invoices.models import Invoice
from synchro.models import Anomaly, SyncRun, SyncRunCompany
from tests.support.invoices import make_invoice

pytestmark = pytest.mark.django_db(transaction=True)


def test_pull_referential_prints_the_counts(jno, capsys):
    call_command("pull_referential", "--company", "JNO")
    out = capsys.readouterr().out
    assert "JNO : succeeded" in out and "Fournisseurs :" in out
    assert Supplier.objects.filter(company=jno).exists()
    with pytest.raises(CommandError, match="Société inconnue"):
        call_command("pull_referential", "--company", "NOPE")


def test_export_entries_exports_and_says_how_it_went(jno, sage, capsys):
    company_referential_pull(company=jno)
    make_invoice(jno, number="FA-OK", validate=True)
    make_invoice(jno, number="FA-KO", supplier="F0042", validate=True)
    call_command("export_entries", "--company", "JNO", "--simulate")
    assert "1 passerait," in capsys.readouterr().out
    assert Invoice.objects.filter(status=Invoice.Status.INTEGRATED).count() == 0
    call_command("export_entries", "--company", "JNO")
    out = capsys.readouterr().out
    assert "1 intégrée, 0 mise à jour, 1 en anomalie" in out
    assert Invoice.objects.filter(status=Invoice.Status.INTEGRATED).count() == 1


def test_synchronise_pulls_then_exports(jno, sage, capsys):
    call_command("synchronise")
    run = SyncRun.objects.get()
    assert run.trigger == SyncRun.Trigger.SYNC_NOW and run.include_pull
    assert SyncRunCompany.objects.get(run=run).pull_counts["suppliers"]["created"] >= 42
    assert "JNO : réussie" in capsys.readouterr().out


def test_purge_history_keeps_recent_runs_and_the_invoices_history(jno, capsys):
    old = SyncRun.objects.create(trigger=SyncRun.Trigger.SCHEDULE, finished_at=timezone.now() - dt.timedelta(days=400))
    recent = SyncRun.objects.create(trigger=SyncRun.Trigger.SCHEDULE, finished_at=timezone.now())
    company_referential_pull(company=jno)
    invoice = make_invoice(jno)
    kept = Anomaly.objects.create(invoice=invoice, company=jno, run=old, code="X", message="réelle")
    Anomaly.objects.create(invoice=invoice, company=jno, run=old, code="Y", message="simulée", simulated=True)
    Anomaly.objects.filter(simulated=True).update(created_at=timezone.now() - dt.timedelta(days=400))
    call_command("purge_history", "--days", "365")
    assert list(SyncRun.objects.all()) == [recent]
    kept.refresh_from_db()
    assert kept.run is None and not Anomaly.objects.filter(simulated=True).exists()
    assert "Historique purgé (plus de 365 jours) : 1 exécution, 1 anomalie simulée." in capsys.readouterr().out
