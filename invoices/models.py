"""Supplier invoices, their lines and the BAP (bon à payer = approved for payment).

The invoice is its own outbox: what must be sent to Sage FRP 1000 is derived from its columns, written in the
same transaction as the change that makes it necessary.
- *création*: a validated invoice whose ``accounting_version`` is not yet integrated (``export_state``);
- *mise à jour*: an integrated invoice whose ``bap_version`` is not yet pushed (``update_state``).
Once integrated, the accounting content is read-only; only the BAP flows afterwards, as its own updates.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from companies.models import Account as LedgerAccount
from companies.models import AnalyticSection, Company, Supplier, TaxCode

ZERO = Decimal("0.00")


class ExportState(models.TextChoices):
    """Where the invoice stands with Sage, for one notion (the entry, or its update). ``synchro.SyncItem.Status``
    speaks the same words for the same French states (*à exporter*, *en cours*, *anomalie*, *à vérifier*,
    *intégrée*); the stored values predate the names."""

    NONE = "", _("—")
    TO_EXPORT = "to_export", _("à exporter")
    SENDING = "sending", _("en cours")
    REJECTED = "rejected", _("anomalie")
    UNKNOWN = "unknown", _("à vérifier")
    INTEGRATED = "done", _("intégrée")


class ScanState(models.TextChoices):
    """Where the reading of a paper invoice stands (empty for every other invoice)."""

    READING = "reading", _("lecture en cours")
    READ = "read", _("lue")
    UNREADABLE = "unreadable", _("illisible")
    UNAVAILABLE = "unavailable", _("OCR indisponible")


class Invoice(models.Model):
    class DueDateSource(models.TextChoices):
        """Where the due date (*échéance*) came from, hence whether it follows the invoice date."""

        TERMS = "terms", _("délai de paiement du fournisseur")  # recomputed when the date or the supplier changes
        DOCUMENT = "document", _("facture électronique")  # read in the e-invoice: kept
        TYPED = "typed", _("saisie")  # typed by the accountant: kept

    class Status(models.TextChoices):
        TO_COMPLETE = "to_complete", _("à compléter")
        TO_VALIDATE = "to_validate", _("à valider")
        VALIDATED = "validated", _("validée")
        INTEGRATED = "integrated", _("intégrée")

    class Kind(models.TextChoices):
        INVOICE = "invoice", _("Facture")
        CREDIT_NOTE = "credit_note", _("Avoir")

    # No index of its own: every index below that starts with the company serves it (fewer indexes, cheaper writes:
    # an invoice changes state twice per export, and a state change updates every index of the table).
    company = models.ForeignKey(
        Company, on_delete=models.PROTECT, related_name="invoices", verbose_name=_("société"), db_index=False
    )
    supplier = models.ForeignKey(
        Supplier,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("fournisseur"),
    )
    kind = models.CharField(_("type"), max_length=20, choices=Kind.choices, default=Kind.INVOICE)
    number = models.CharField(_("n° de facture"), max_length=60)
    invoice_date = models.DateField(_("date de facture"), null=True, blank=True)
    due_date = models.DateField(_("échéance"), null=True, blank=True)
    # A default in the database too: writers that name their columns (COPY, raw SQL) need not know this one.
    due_date_source = models.CharField(
        _("origine de l'échéance"),
        max_length=10,
        choices=DueDateSource.choices,
        default=DueDateSource.TERMS,
        db_default=DueDateSource.TERMS,
    )
    currency = models.CharField(_("devise"), max_length=3, default="EUR")
    total_ht = models.DecimalField(_("total HT"), max_digits=14, decimal_places=2, default=ZERO)
    total_tva = models.DecimalField(_("total TVA"), max_digits=14, decimal_places=2, default=ZERO)
    total_ttc = models.DecimalField(_("total TTC"), max_digits=14, decimal_places=2, default=ZERO)
    label = models.CharField(_("libellé de l'écriture"), max_length=200, blank=True)
    payment_mode = models.CharField(_("mode de règlement"), max_length=40, blank=True)
    status = models.CharField(_("statut"), max_length=20, choices=Status.choices, default=Status.TO_COMPLETE)
    incomplete_reason = models.TextField(_("à compléter"), blank=True)

    # Foreign currency: EUR for one unit of ``currency``, given by the invoice (BT-6 and BT-111) or the accountant.
    exchange_rate = models.DecimalField(
        _("cours (1 unité = … EUR)"), max_digits=16, decimal_places=6, null=True, blank=True
    )
    # An avoir's invoice (BT-25), when SFD has it.
    corrects = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="credit_notes", db_index=False,
        verbose_name=_("facture corrigée"),
    )  # fmt: skip
    corrected_number = models.CharField(
        _("n° de la facture corrigée"), max_length=60, blank=True, default="", db_default=""
    )

    # Where it came from, when it came from the « Répertoire de scan ».
    source_file = models.CharField(max_length=500, blank=True)
    source_hash = models.CharField(max_length=64, blank=True)
    source_format = models.CharField(max_length=20, blank=True)
    # The same invoice whatever file brings it (seller identifier, number, date, total TTC): a hash, unique per
    # company, so that its twin (its Factur-X PDF, a copy under another name) is never imported twice.
    twin_key = models.CharField(max_length=64, blank=True, default="", db_default="")
    # A paper invoice (a scan read by OCR in the worker, ``invoices.paper``): where its reading stands, when a worker
    # took it (a reading older than the task's limit was lost with its worker and is read again), and what was read:
    # each field's value, source and confidence, the supplier suggested, the totals' check, the words of the pages.
    scan_state = models.CharField(
        _("lecture du document"), max_length=12, choices=ScanState.choices, blank=True, default="", db_default=""
    )
    scan_claimed_at = models.DateTimeField(null=True, blank=True)
    scan = models.JSONField(null=True, blank=True)
    # What the electronic invoice said beyond the columns above: identifiers of both parties, every payment term,
    # the VAT breakdown, what was prepaid, notes (``ParsedInvoice.facts``); null for an invoice typed in SFD.
    einvoice = models.JSONField(null=True, blank=True)

    # BAP: given or withdrawn by a user with the right; after integration each change is an update to push.
    bap = models.BooleanField(_("bon à payer"), default=False)
    bap_date = models.DateField(_("date du BAP"), null=True, blank=True)
    bap_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    bap_version = models.PositiveIntegerField(default=0)
    bap_pushed_version = models.PositiveIntegerField(default=0)

    # Bumped by every correction of the accounting content: each version has its own key in Sage.
    accounting_version = models.PositiveIntegerField(default=1)
    integrated_version = models.PositiveIntegerField(null=True, blank=True)
    sage_piece_number = models.CharField(_("n° de pièce Sage"), max_length=40, blank=True)
    integrated_at = models.DateTimeField(null=True, blank=True)

    export_state = models.CharField(max_length=20, choices=ExportState.choices, default=ExportState.NONE, blank=True)
    update_state = models.CharField(max_length=20, choices=ExportState.choices, default=ExportState.NONE, blank=True)
    # When the last send of either notion was attempted (« dernière tentative »).
    last_attempt_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-invoice_date", "-id"]
        default_permissions = ()
        permissions = [
            ("view_invoices", "Voir les factures"),
            ("edit_invoices", "Modifier et valider les factures"),
            ("give_bap", "Donner le bon à payer"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "supplier", "number"],
                condition=Q(supplier__isnull=False),
                name="invoice_number_per_supplier",
            ),
            models.UniqueConstraint(fields=["company", "twin_key"], condition=~Q(twin_key=""), name="invoice_twin_key"),
        ]
        indexes = [
            models.Index(fields=["export_state", "company", "invoice_date", "id"], name="invoice_export_list"),
            models.Index(fields=["update_state", "company", "invoice_date", "id"], name="invoice_update_list"),
            models.Index(fields=["company", "status", "invoice_date"], name="invoice_company_status"),
            # Visuel Synchronisations: its pages are read in (date, id) order from either end whatever the number of
            # rows, without a filter, with a status, or with a company and a status (above); its exact counts come
            # from the counter (``InvoiceStateCount``), or from these indexes when a date or a supplier is filtered.
            models.Index(fields=["invoice_date", "id"], condition=~Q(export_state=""), name="invoice_export_open"),
            models.Index(fields=["export_state", "invoice_date", "id"], name="invoice_export_by_date"),
            models.Index(fields=["invoice_date", "id"], condition=~Q(update_state=""), name="invoice_update_open"),
            # Only the rows that have a value: a file's fingerprint (intake), the user who gave the BAP.
            models.Index(fields=["source_hash"], condition=~Q(source_hash=""), name="invoice_source_hash"),
            models.Index(fields=["bap_by"], condition=Q(bap_by__isnull=False), name="invoice_bap_by"),
            # The reaper's look for readings lost with their worker: only the invoices being read.
            models.Index(fields=["scan_claimed_at"], condition=Q(scan_state="reading"), name="invoice_scan_reading"),
        ]
        verbose_name = _("facture")

    def __str__(self) -> str:
        return f"{self.number} ({self.company.code})"

    @property
    def is_integrated(self) -> bool:
        return self.status == self.Status.INTEGRATED

    @property
    def is_credit_note(self) -> bool:
        return self.kind == self.Kind.CREDIT_NOTE

    @property
    def external_id(self) -> str:
        """Sage's idempotency key for this version of the entry."""
        return entry_external_id(self.pk, self.accounting_version)

    @property
    def update_id(self) -> str:
        return bap_update_id(self.pk, self.bap_version)


def entry_external_id(invoice_id: int, version: int) -> str:
    return f"SFD-{invoice_id}-V{version}"


def bap_update_id(invoice_id: int, version: int) -> str:
    return f"SFD-{invoice_id}-BAP{version}"


class InvoiceLine(models.Model):
    class Kind(models.TextChoices):
        LINE = "line", _("Ligne")
        CHARGE = "charge", _("Frais")
        # Reduces the expense: its amount is booked on the other side (a discount of the document, a returned item).
        ALLOWANCE = "allowance", _("Remise")

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField(default=1)
    kind = models.CharField(_("nature"), max_length=10, choices=Kind.choices, default=Kind.LINE, db_default=Kind.LINE)
    label = models.CharField(_("libellé"), max_length=200)
    amount_ht = models.DecimalField(_("montant HT"), max_digits=14, decimal_places=2, default=ZERO)
    # As the electronic invoice wrote it, when it has more than two decimals (``amount_ht`` is its rounding).
    source_amount = models.DecimalField(max_digits=24, decimal_places=10, null=True, blank=True)
    # The VAT category of the document (EN 16931 BT-151: S, Z, E, AE, K, G, O, L, M), kept as read.
    vat_category = models.CharField(_("catégorie de TVA"), max_length=2, blank=True, default="", db_default="")
    account = models.ForeignKey(
        LedgerAccount,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("compte"),
    )
    tax_code = models.ForeignKey(
        TaxCode, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("code TVA")
    )
    analytic_section = models.ForeignKey(
        AnalyticSection,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("section analytique"),
    )

    class Meta:
        ordering = ["position", "id"]
        default_permissions = ()

    def __str__(self) -> str:
        return f"{self.label} {self.amount_ht}"


class InvoiceEvent(models.Model):
    """The invoice's own history: created, corrected, validated, BAP, integrated, rejected, updated in Sage."""

    class Kind(models.TextChoices):
        CREATED = "created", _("créée")
        CORRECTED = "corrected", _("corrigée")
        VALIDATED = "validated", _("validée")
        BAP = "bap", _("BAP")
        INTEGRATED = "integrated", _("intégrée")
        REJECTED = "rejected", _("refusée")
        UPDATED = "updated", _("mise à jour dans Sage FRP 1000")
        SCAN = "scan", _("lecture du document")

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(auto_now_add=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=150)
    kind = models.CharField(max_length=30, choices=Kind.choices)
    message = models.CharField(max_length=500)

    class Meta:
        ordering = ["-at", "-id"]
        default_permissions = ()

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.kind}"


class InvoiceStateCount(models.Model):
    """How many invoices of a company stand in a state, for one notion: the sum of ``n`` over the rows of that
    (company, notion, state); a state with no row counts 0. The empty state (nothing to say to Sage) is not
    counted.

    Written by the database only: triggers on ``invoices_invoice`` (migration 0004) append one row of deltas per
    (company, notion, state) that a statement changes, in the same transaction as the change, whatever wrote it
    (the ORM, ``bulk_update``, raw SQL, ``COPY``); ``invoices.counters.state_counts_compact`` folds them. Rows are
    only ever appended or folded, never updated: no unique key, so that writers never wait on a shared row.
    """

    class Notion(models.TextChoices):
        EXPORT = "export", "export_state"
        UPDATE = "update", "update_state"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+", db_index=False)
    notion = models.CharField(max_length=10, choices=Notion.choices)
    state = models.CharField(max_length=20, choices=ExportState.choices)
    n = models.BigIntegerField()

    class Meta:
        default_permissions = ()
        indexes = [models.Index(fields=["company", "notion", "state"], name="invoice_state_count_key")]

    def __str__(self) -> str:
        return f"{self.company_id} {self.notion} {self.state} {self.n:+d}"


class IntakeFile(models.Model):
    """One file that reached a company's « Répertoire de scan », and what became of it.

    The base of the « Imports » screen: every file a person dropped is here with its outcome and its French reason
    (the ``.txt`` note beside the file says the same, for whoever looks at the folder). Written in the same
    transaction as the invoice it creates.
    """

    class Outcome(models.TextChoices):
        CREATED = "created", _("facture créée")
        DUPLICATE = "duplicate", _("déjà reçue")
        REFUSED = "refused", _("refusée")
        IGNORED = "ignored", _("ignorée")
        PENDING = "pending", _("en attente")

    # Where the file landed, and the company of the group it was addressed to when that is another one.
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+", verbose_name=_("société"))
    routed_to = models.ForeignKey(
        Company, on_delete=models.CASCADE, null=True, blank=True, related_name="+", verbose_name=_("adressée à")
    )
    # The name as dropped, readable (a name that is not valid UTF-8 has replacement characters), and its raw bytes.
    name = models.CharField(_("fichier"), max_length=255)
    name_bytes = models.BinaryField(max_length=255)
    # Where the file is now, relative to ``SCAN_ROOT``.
    path = models.CharField(max_length=1000)
    size = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    received_at = models.DateTimeField(_("reçu le"))
    outcome = models.CharField(_("résultat"), max_length=20, choices=Outcome.choices, default=Outcome.PENDING)
    reason = models.TextField(_("motif"), blank=True)
    # The invoice it created, or the one it duplicates.
    invoice = models.ForeignKey(
        Invoice, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("facture")
    )
    # Null until someone looks at it: the menu badge counts refused files nobody has seen.
    seen_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        default_permissions = ()
        indexes = [
            models.Index(fields=["company", "-received_at"], name="intake_file_company_recent"),
            models.Index(
                fields=["company"], condition=Q(outcome="refused", seen_at__isnull=True), name="intake_file_unseen"
            ),
            models.Index(fields=["sha256"], condition=~Q(sha256=""), name="intake_file_sha256"),
            # The pending row of a file seen again (each file of each scan looks it up): without it, a scan of
            # the company's whole history per file (6.7 ms at 50 000 rows, 0.03 ms with it, measured).
            models.Index(fields=["company", "path"], condition=Q(outcome="pending"), name="intake_file_pending"),
        ]
        verbose_name = _("fichier reçu")
        verbose_name_plural = _("fichiers reçus")

    def __str__(self) -> str:
        return f"{self.name} ({self.get_outcome_display()})"


class IntakeScan(models.Model):
    """One reading of a company's « Répertoire de scan » asked from « Imports » (« Importer »), and how far it got.

    The screen follows it from the database, whatever worker runs it: a worker restarted in the middle leaves the row
    where it was (the task, delivered again, carries on with it), and a row silent for longer than the intake's own
    limit on a claim is shown as interrupted. One click reads every company of the user: its rows share a ``batch``.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("en attente")
        RUNNING = "running", _("en cours")
        DONE = "done", _("terminé")
        FAILED = "failed", _("échec")

    batch = models.UUIDField(db_index=True)
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+", verbose_name=_("société"))
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    requested_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    # Renewed at every file: how the screen tells a scan that works from one whose worker died.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    # The entries of the folder when it was listed; once finished, the files this scan dealt with.
    found = models.PositiveIntegerField(default=0)
    # How many files of each outcome (``IntakeFile.Outcome``) so far.
    counts = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["company__name", "pk"]
        default_permissions = ()
        verbose_name = _("lecture d'un répertoire de scan")

    def __str__(self) -> str:
        return f"{self.batch} {self.company_id} {self.status}"


class ScanFieldOutcome(models.Model):
    """One pre-filled field of a paper invoice as the accountant left it when she saved: accepted as read, or
    corrected (``invoices.paper_learning``). Per supplier, the corrections pre-fill its next invoices better (the
    expense account she chose, where on its layout the number is) and the share accepted is shown on « Imports »."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+", db_index=False)
    supplier = models.ForeignKey(Supplier, on_delete=models.CASCADE, related_name="+")
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="+", db_index=False)
    field = models.CharField(max_length=20)
    ocr_value = models.CharField(max_length=200, blank=True)
    final_value = models.CharField(max_length=200, blank=True)
    corrected = models.BooleanField(default=False)
    # For the number: where the right value lies on the page (page number, box as shares of the page's size).
    page = models.PositiveSmallIntegerField(null=True, blank=True)
    box = models.JSONField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        default_permissions = ()
        constraints = [models.UniqueConstraint(fields=["invoice", "field"], name="scan_field_outcome_once")]

    def __str__(self) -> str:
        return f"{self.invoice_id} {self.field} {'corrigé' if self.corrected else 'accepté'}"
