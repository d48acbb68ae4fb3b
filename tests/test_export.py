"""Export of entries and updates to the stub over HTTP: integration, anomalies, corrections, the BAP."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection

from companies.lease import company_lease_take
from companies.models import Account, Supplier
from invoices.models import ExportState, Invoice
from invoices.services import LineData, invoice_set_bap, invoice_update, invoice_validate
from synchro.hints import HINTS, field_label, hint_for
from synchro.models import Anomaly, SyncItem, SyncRun, SyncRunCompany
from synchro.runs import run_company_execute, run_start
from tests.support.exports import booked, export
from tests.support.invoices import make_invoice
from tests.support.polling import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_validated_invoices_are_integrated_with_their_piece_numbers(pulled, sage):
    first = make_invoice(pulled, number="FA-1", validate=True)
    second = make_invoice(pulled, number="FA-2", validate=True)
    line = export(pulled)
    assert (line.status, line.integrated, line.rejected) == (SyncRunCompany.Status.SUCCEEDED, 2, 0)
    for invoice in (first, second):
        invoice.refresh_from_db()
        assert invoice.status == Invoice.Status.INTEGRATED and invoice.export_state == ExportState.INTEGRATED
        assert invoice.sage_piece_number.startswith("ACH2026")
        assert invoice.integrated_version == 1
        assert invoice.events.filter(kind="integrated").exists()
    assert booked(sage) == Counter([first.external_id, second.external_id])
    assert line.run.status == SyncRun.Status.SUCCEEDED and line.run.finished_at


def test_a_second_export_sends_nothing_again(pulled, sage):
    make_invoice(pulled, validate=True)
    export(pulled)
    line = export(pulled)
    assert line.total == 0 and line.integrated == 0
    assert sage.stats()["POST companies/{code}/entries"] == 1


def test_only_the_ticked_invoices_leave(pulled, sage):
    ticked = make_invoice(pulled, number="FA-1", validate=True)
    other = make_invoice(pulled, number="FA-2", validate=True)
    export(pulled, kind="creation", invoices=[ticked.pk])
    other.refresh_from_db()
    assert booked(sage) == Counter([ticked.external_id]) and other.export_state == ExportState.TO_EXPORT


def test_sage_rejections_become_anomalies_with_a_hint(pulled, sage):
    blocked = make_invoice(pulled, number="FA-B", supplier="F0003", validate=True)
    Supplier.objects.filter(company=pulled, code="F0003").update(blocked=False)
    sage.mutate("JNO", "suppliers", upsert=[{"code": "F0003", "blocked": True}])
    line = export(pulled)
    blocked.refresh_from_db()
    assert line.status == SyncRunCompany.Status.PARTIAL and line.rejected == 1
    assert blocked.export_state == ExportState.REJECTED and blocked.status == Invoice.Status.VALIDATED
    anomaly = Anomaly.objects.get(invoice=blocked)
    assert (anomaly.code, anomaly.source) == ("SUPPLIER_BLOCKED", "sage")
    assert anomaly.message == "Le tiers F0003 est bloqué."
    assert (
        anomaly.hint
        == "Le fournisseur F0003 est bloqué dans Sage FRP 1000 : débloquez-le dans Sage ou changez de fournisseur"
    )
    assert anomaly.field == "fournisseur (ligne 1 de l'écriture)"
    assert not booked(sage)


def test_the_local_precheck_rejects_without_calling_sage(pulled, sage):
    inactive = make_invoice(pulled, number="FA-I", lines=[("Divers", "10.00", "606800", "T20")], validate=True)
    blocked = make_invoice(pulled, number="FA-B", supplier="F0042", validate=True)
    closed = make_invoice(pulled, number="FA-C", invoice_date=__import__("datetime").date(2026, 2, 1), validate=True)
    line = export(pulled)
    assert line.rejected == 3
    assert "POST companies/{code}/entries" not in sage.stats()
    codes = dict(Anomaly.objects.values_list("invoice_id", "code"))
    assert codes == {inactive.pk: "ACCOUNT_INACTIVE", blocked.pk: "SUPPLIER_BLOCKED", closed.pk: "PERIOD_CLOSED"}
    assert set(Anomaly.objects.values_list("source", flat=True)) == {"sfd"}
    hint = Anomaly.objects.get(invoice=blocked).hint
    assert (
        hint == "Le fournisseur F0042 est bloqué dans Sage FRP 1000 : débloquez-le dans Sage ou changez de fournisseur"
    )


def test_a_corrected_invoice_is_exportable_again_and_its_anomaly_leaves_the_list(pulled, sage):
    invoice = make_invoice(pulled, lines=[("Divers", "10.00", "606800", "T20")], validate=True)
    export(pulled)
    anomaly = Anomaly.objects.get(invoice=invoice)
    lines = [LineData("Divers", line.amount_ht, Account.objects.get(company=pulled, code="606300").pk, line.tax_code_id)
             for line in invoice.lines.all()]  # fmt: skip
    invoice = invoice_update(invoice=invoice, fields={}, lines=lines, actor=None)
    invoice = invoice_validate(invoice=invoice, actor=None)
    anomaly.refresh_from_db()
    assert invoice.export_state == ExportState.TO_EXPORT and anomaly.cleared_at is not None
    line = export(pulled)
    invoice.refresh_from_db()
    assert line.integrated == 1 and invoice.status == Invoice.Status.INTEGRATED
    assert booked(sage) == Counter([f"SFD-{invoice.pk}-V2"])
    assert not Anomaly.objects.filter(invoice=invoice, cleared_at__isnull=True).exists()
    assert Anomaly.objects.filter(invoice=invoice).count() == 1  # kept in history


def test_a_rejection_fixed_in_sage_passes_on_the_next_manual_export(pulled, sage):
    invoice = make_invoice(pulled, supplier="F0003", validate=True)
    sage.mutate("JNO", "suppliers", upsert=[{"code": "F0003", "blocked": True}])
    export(pulled)
    sage.mutate("JNO", "suppliers", upsert=[{"code": "F0003", "blocked": False}])
    assert export(pulled, trigger=SyncRun.Trigger.SCHEDULE).integrated == 0  # the schedule waits for a fix
    assert export(pulled).integrated == 1  # « Exporter » retries it
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.INTEGRATED
    assert Anomaly.objects.get(invoice=invoice).cleared_reason == "intégrée"


def test_a_bap_given_after_integration_is_pushed_once(pulled, sage, bob):
    invoice = make_invoice(pulled, validate=True)
    export(pulled)
    invoice.refresh_from_db()
    for value in (True, False, True):
        invoice = invoice_set_bap(invoice=invoice, bap=value, actor=bob)
    line = export(pulled, kind="update")
    invoice.refresh_from_db()
    assert line.updated == 1
    assert invoice.update_state == ExportState.INTEGRATED and invoice.bap_pushed_version == 3
    assert sage.get(f"/companies/JNO/entries/{invoice.external_id}").json()["bap"] is True
    assert SyncItem.objects.get(invoice=invoice, kind=SyncItem.Kind.UPDATE).key == f"SFD-{invoice.pk}-BAP3"
    assert export(pulled, kind="update").updated == 0


def test_a_bap_given_while_the_entry_travels_becomes_an_update(pulled, sage, bob):
    invoice = make_invoice(pulled, validate=True)
    sage.faults({"match": "POST /companies/*/entries", "fault": "latency", "delay": 1.5})
    exporting = threading.Thread(target=lambda: (export(pulled, kind="creation"), connection.close()))
    exporting.start()
    wait_for(lambda: Invoice.objects.get(pk=invoice.pk).export_state == ExportState.SENDING, timeout=10)
    invoice_set_bap(invoice=invoice, bap=True, actor=bob)
    exporting.join(30)
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.INTEGRATED
    # The entry left without the BAP: the BAP is an update of its own.
    assert sage.get(f"/companies/JNO/entries/{invoice.external_id}").json()["bap"] is False
    assert (invoice.bap_pushed_version, invoice.update_state) == (0, ExportState.TO_EXPORT)
    sage.clear_faults()
    export(pulled, kind="update")
    assert sage.get(f"/companies/JNO/entries/{invoice.external_id}").json()["bap"] is True


def test_an_update_of_a_piece_sage_no_longer_has_is_an_anomaly(pulled, sage, bob):
    invoice = make_invoice(pulled, validate=True)
    export(pulled)
    Invoice.objects.filter(pk=invoice.pk).update(sage_piece_number="ACH2026999999")
    invoice_set_bap(invoice=Invoice.objects.get(pk=invoice.pk), bap=True, actor=bob)
    line = export(pulled, kind="update")
    invoice.refresh_from_db()
    assert (line.rejected, line.update_rejected) == (0, 1) and invoice.update_state == ExportState.REJECTED
    assert invoice.export_state == ExportState.INTEGRATED
    assert Anomaly.objects.get(invoice=invoice, cleared_at__isnull=True).code == "ENTRY_UNKNOWN"


def test_a_busy_company_is_said_deja_en_cours(pulled, sage):
    from companies.lease import CompanyBusy

    make_invoice(pulled, validate=True)
    assert company_lease_take(company_id=pulled.pk, token="someone-else", label="mise à jour du référentiel")
    run = run_start(trigger=SyncRun.Trigger.EXPORT, user=None, companies=[pulled], selection={"kind": "all"})
    with pytest.raises(CompanyBusy) as busy:
        run_company_execute(run_company_id=run.companies.get().pk)
    assert "déjà en cours" in str(busy.value)
    assert not booked(sage)


def test_every_rejection_code_has_a_french_hint():
    codes = [
        "JOURNAL_UNKNOWN", "JOURNAL_INACTIVE", "ACCOUNT_UNKNOWN", "ACCOUNT_INACTIVE", "SUPPLIER_UNKNOWN",
        "SUPPLIER_BLOCKED", "TAX_CODE_UNKNOWN", "ANALYTIC_REQUIRED", "ANALYTIC_SECTION_UNKNOWN", "UNBALANCED",
        "AMOUNT_INVALID", "PERIOD_CLOSED", "DUPLICATE_INVOICE", "LABEL_TOO_LONG", "DUE_DATE_BEFORE_DATE",
        "EXTERNAL_ID_CONFLICT", "ENTRY_UNKNOWN",
    ]  # fmt: skip
    payload = {"journal": "ACH", "lines": [{"account": "401000", "supplier": "F0042"}, {"account": "606800"}]}
    for code in codes:
        assert code in HINTS
        hint = hint_for(code, payload, "lines[1].account")
        assert hint and "{" not in hint
    assert "606800" in hint_for("ACCOUNT_INACTIVE", payload, "lines[1].account")
    assert field_label("lines[1].account") == "compte (ligne 2 de l'écriture)"


def test_the_export_is_audited(pulled, sage, bob):
    from core.models import AuditEvent

    make_invoice(pulled, validate=True)
    export(pulled, user=bob)
    event = AuditEvent.objects.get(action="synchro.export")
    assert event.actor == bob and "JNO" in event.summary
