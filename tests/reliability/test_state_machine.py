"""A stateful property-based test over what users and faults do to the synchronisation.

Operations: create and validate invoices (some with Sage's traps), change the BAP, export, inject a fault,
kill a worker in the middle of a batch, pull the referential, correct an anomaly. After every step:
« each entry at most once in Sage » and « debits = credits ». At the end of every run, once faults stop:
« every validated invoice ends integrated or in anomaly », and every BAP change reached Sage.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections import Counter

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from companies.lease import CompanyBusy, company_lease_take
from companies.models import Account, Company, Supplier
from companies.services import company_referential_pull
from connectors.sage_frp1000.client import SageError
from invoices.accounting import EntryError
from invoices.models import ExportState, Invoice
from invoices.services import LineData, invoice_set_bap, invoice_update, invoice_validate
from invoices.validation import entry_for_invoice
from synchro.export import CompanyExporter
from synchro.models import SyncRun, SyncRunCompany
from synchro.runs import run_company_execute, run_start
from tests.support.exports import booked
from tests.support.invoices import make_invoice

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

FAULTS = {
    "500": {"fault": "status", "status": 500},
    "503": {"fault": "status", "status": 503, "retry_after": 0},
    "timeout_after_commit": {"fault": "timeout_after_commit", "delay": 1.3},
    "reset": {"fault": "reset"},
    "reset_after_commit": {"fault": "reset_after_commit"},
    "malformed": {"fault": "malformed"},
}
TRAPS = {"ok": ("F0001", "606400"), "inactive_account": ("F0001", "606800"), "blocked_supplier": ("F0042", "606400")}


class Synchronisation(RuleBasedStateMachine):
    invoices = Bundle("invoices")

    def __init__(self):
        super().__init__()
        self.sage = STUB
        self.company: Company = COMPANY
        self.mine: list[int] = []
        self.count = 0

    @initialize()
    def fresh_erp(self):
        self.sage.reset()
        Company.objects.filter(pk=self.company.pk).update(sync_lease_token="", sync_lease_until=None)

    # --- what users do ---

    @rule(target=invoices, trap=st.sampled_from(sorted(TRAPS)), validate=st.booleans())
    def create_invoice(self, trap, validate):
        supplier, account = TRAPS[trap]
        self.count += 1
        invoice = make_invoice(
            self.company,
            supplier=supplier,
            number=f"SM-{id(self)}-{self.count}",
            lines=[("Ligne", f"{10 + self.count}.{self.count % 100:02d}", account, "T20")],
            validate=validate,
        )
        self.mine.append(invoice.pk)
        return invoice.pk

    @rule(invoice_id=invoices)
    def validate(self, invoice_id):
        invoice = Invoice.objects.get(pk=invoice_id)
        if invoice.status == Invoice.Status.TO_VALIDATE:
            invoice_validate(invoice=invoice, actor=None)

    @rule(invoice_id=invoices, bap=st.booleans())
    def change_bap(self, invoice_id, bap):
        invoice_set_bap(invoice=Invoice.objects.get(pk=invoice_id), bap=bap, actor=None)

    @rule(invoice_id=invoices)
    def correct_an_anomaly(self, invoice_id):
        invoice = Invoice.objects.get(pk=invoice_id)
        if invoice.export_state != ExportState.REJECTED:
            return
        good_account = Account.objects.get(company=self.company, code="606400").pk
        lines = [LineData(line.label, line.amount_ht, good_account, line.tax_code_id) for line in invoice.lines.all()]
        supplier = Supplier.objects.get(company=self.company, code="F0001")
        invoice = invoice_update(invoice=invoice, fields={"supplier_id": supplier.pk}, lines=lines, actor=None)
        invoice_validate(invoice=invoice, actor=None)

    @rule()
    def export(self):
        run = run_start(trigger=SyncRun.Trigger.EXPORT, user=None, companies=[self.company], selection={"kind": "all"})
        try:
            run_company_execute(run_company_id=run.companies.get().pk)
        except CompanyBusy:
            SyncRunCompany.objects.filter(run=run).update(status=SyncRunCompany.Status.BUSY)

    @rule()
    def pull_the_referential(self):
        with contextlib.suppress(CompanyBusy):
            company_referential_pull(company=self.company)

    # --- what goes wrong ---

    @rule(fault=st.sampled_from(sorted(FAULTS)))
    def inject_a_fault(self, fault):
        self.sage.faults({"match": "POST /companies/*/entries", "times": 1} | FAULTS[fault])
        SEEN["faults"] += 1

    @rule(reached_sage=st.booleans())
    def kill_a_worker_mid_batch(self, reached_sage):
        """A worker claims a batch « en cours », maybe sends it, and dies without recording anything."""
        pending = list(
            Invoice.objects.filter(pk__in=self.mine, export_state=ExportState.TO_EXPORT).values_list("pk", flat=True)
        )
        if not pending:
            return
        run = run_start(trigger=SyncRun.Trigger.EXPORT, user=None, companies=[self.company], selection={"kind": "all"})
        line = run.companies.get()
        token = f"dead-{run.pk}"
        if not company_lease_take(company_id=self.company.pk, token=token, label="export"):
            return
        exporter = CompanyExporter(line, token)
        SEEN["crashes"] += 1
        with exporter.client:
            items = exporter._prepare(pending)
            if reached_sage and items:
                # The worker dies whatever Sage answers (an injected fault included).
                with contextlib.suppress(SageError):
                    exporter.client.post_entries(self.company.code, [item.payload for item in items])
        # Its lease runs out: the company is free again, the batch stays « en cours » for the next export.
        Company.objects.filter(pk=self.company.pk).update(sync_lease_until=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
        SyncRunCompany.objects.filter(pk=line.pk).update(status=SyncRunCompany.Status.FAILED)

    # --- what must always hold ---

    @invariant()
    def each_entry_at_most_once_in_sage(self):
        entries = booked(self.sage)
        assert max(entries.values(), default=0) <= 1
        per_invoice = Counter(key.split("-")[1] for key in entries)
        assert max(per_invoice.values(), default=0) <= 1, "two versions of one invoice booked"

    @invariant()
    def debits_equal_credits(self):
        for invoice in Invoice.objects.filter(pk__in=self.mine).select_related("company", "supplier"):
            try:
                entry = entry_for_invoice(invoice)
            except EntryError:
                continue
            assert entry.total_debit == entry.total_credit

    def teardown(self):
        self.sage.clear_faults()
        for _round in range(6):
            self.export()
            unsettled = Invoice.objects.filter(pk__in=self.mine).filter(
                export_state__in=[ExportState.TO_EXPORT, ExportState.SENDING, ExportState.UNKNOWN]
            )
            if (
                not unsettled.exists()
                and not Invoice.objects.filter(pk__in=self.mine, update_state=ExportState.TO_EXPORT).exists()
            ):
                break
        validated = Invoice.objects.filter(pk__in=self.mine).exclude(
            status__in=[Invoice.Status.TO_VALIDATE, Invoice.Status.TO_COMPLETE]
        )
        for invoice in validated:
            assert invoice.export_state in (ExportState.INTEGRATED, ExportState.REJECTED), (
                invoice.number,
                invoice.export_state,
            )
            if invoice.status == Invoice.Status.INTEGRATED:
                found = self.sage.get(f"/companies/JNO/entries/{invoice.external_id}").json()
                assert found["piece_number"] == invoice.sage_piece_number
                assert invoice.update_state in (ExportState.NONE, ExportState.INTEGRATED)
                assert bool(found["bap"]) == invoice.bap
        self.each_entry_at_most_once_in_sage()
        SEEN["integrated"] += validated.filter(status=Invoice.Status.INTEGRATED).count()
        SEEN["rejected"] += validated.filter(export_state=ExportState.REJECTED).count()


STUB = None
COMPANY = None
SEEN = Counter()


def test_the_synchronisation_keeps_its_invariants(sage, jno, fast_retries):
    global STUB, COMPANY
    jno.connector.timeout_seconds = 1
    jno.connector.save()
    company_referential_pull(company=jno)
    STUB, COMPANY = sage, Company.objects.get(pk=jno.pk)
    run_state_machine_as_test(
        Synchronisation,
        settings=settings(
            max_examples=40,
            stateful_step_count=30,
            deadline=None,
            # The same programs every run: the coverage checks below must not depend on luck.
            derandomize=True,
            # No shrinking: the database and the stub carry state between examples, replays are not identical.
            phases=[Phase.explicit, Phase.reuse, Phase.generate],
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    # The runs did exercise what they claim to: integrations, refusals, faults and crashes.
    assert SEEN["integrated"] >= 10 and SEEN["rejected"] >= 2, SEEN
    assert SEEN["faults"] >= 5 and SEEN["crashes"] >= 2, SEEN
