"""What was sent to Sage FRP 1000, what it answered, and every run (manual or automatic).

- ``SyncItem``: one send of one version of one invoice's entry (*création*) or BAP (*mise à jour*), with its
  stable key, its attempts and its outcome. At most one per (invoice, kind, version).
- ``Anomaly``: one error Sage raised (or the local pre-check raised for it), with a French message and a hint.
  Cleared, never deleted, when the invoice is corrected or integrated: it stays in the history.
- ``SyncRun`` and ``SyncRunCompany``: one run (an export from the Visuel screen, « Synchroniser maintenant »,
  or the schedule), per company: what it did of each kind (referential items, entries, updates), the entries left
  in anomaly when it ended, errors.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from companies.models import Company
from invoices.models import Invoice


class SyncRun(models.Model):
    class Trigger(models.TextChoices):
        EXPORT = "export", _("export manuel")
        SIMULATION = "simulation", _("simulation")
        # « Synchroniser maintenant »: the automatic run, at once (its stored value predates the name).
        SYNC_NOW = "manual", _("synchronisation manuelle")
        SCHEDULE = "schedule", _("automatique")

    # The one place that says what counts as automatic: a referential pull first, and only what waits is sent (what
    # Sage refused waits for its correction in SFD).
    AUTOMATIC_TRIGGERS = frozenset({Trigger.SYNC_NOW, Trigger.SCHEDULE})

    class Status(models.TextChoices):
        RUNNING = "running", _("en cours")
        SUCCEEDED = "succeeded", _("réussie")
        # Every company done, and at least one left entries in anomaly (or to check).
        ANOMALIES = "anomalies", _("terminée avec anomalies")
        # Some companies failed (or were busy), others did their part.
        PARTIAL = "partial", _("partielle")
        FAILED = "failed", _("échouée")

    trigger = models.CharField(max_length=20, choices=Trigger.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # What to export: {"kind": ..., filters...} for « Tout cocher », or {"invoices": [...]} for ticked rows.
    selection = models.JSONField(default=dict, blank=True)
    include_pull = models.BooleanField(default=False)
    # The schedule slot this run was started for: a unique key, so that a slot runs once whatever happens.
    scheduled_for = models.DateTimeField(null=True, blank=True, unique=True)
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        default_permissions = ()
        permissions = [("view_synchronisations", "Visuel Synchronisations")]

    def __str__(self) -> str:
        return f"{self.get_trigger_display()} {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def is_automatic(self) -> bool:
        return self.trigger in self.AUTOMATIC_TRIGGERS

    @property
    def is_simulation(self) -> bool:
        return self.trigger == self.Trigger.SIMULATION


class SyncRunCompany(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", _("en attente")
        RUNNING = "running", _("en cours")
        # Nothing refused, nothing to check, and no entry of the company left in anomaly.
        SUCCEEDED = "succeeded", _("réussie")
        # Done, but entries were refused or are to check, or some stay in anomaly (of this run or an earlier one).
        PARTIAL = "partial", _("terminée avec anomalies")
        FAILED = "failed", _("échouée")
        BUSY = "busy", _("déjà en cours")

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="companies")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    queued_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    pull_counts = models.JSONField(default=dict, blank=True)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    # What the line did, per kind: entries (*créations*) integrated and refused, updates (the BAP) pushed and
    # refused; ``pull_counts`` holds the referential's, per kind of item. A simulation counts in ``integrated`` and
    # ``rejected`` what would pass and what Sage would refuse.
    integrated = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    update_rejected = models.PositiveIntegerField(default=0)
    unknown = models.PositiveIntegerField(default=0)
    # How many entries of the company stayed in anomaly when the line ended, whichever run refused them (None: the
    # line has not ended, or it is a simulation, which changes nothing).
    open_anomalies = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["company__name"]
        default_permissions = ()
        constraints = [models.UniqueConstraint(fields=["run", "company"], name="one_line_per_company_per_run")]
        indexes = [
            models.Index(fields=["status", "queued_at"], name="runcompany_status"),
            # The last run of each company (« Tableau de bord »).
            models.Index(fields=["company", "-queued_at"], name="runcompany_company_latest"),
        ]

    def __str__(self) -> str:
        return f"{self.run_id} {self.company_id} {self.status}"

    @property
    def finished(self) -> bool:
        return self.status not in (self.Status.QUEUED, self.Status.RUNNING)

    @property
    def referential_totals(self) -> dict[str, int]:
        """Items of the referential created, updated and deactivated, every kind together."""
        totals = {"created": 0, "updated": 0, "deactivated": 0}
        for counts in (self.pull_counts or {}).values():
            for name in totals:
                totals[name] += int(counts.get(name, 0))
        return totals


class SyncItem(models.Model):
    class Kind(models.TextChoices):
        CREATION = "creation", _("écriture à intégrer")
        UPDATE = "update", _("mise à jour")

    class Status(models.TextChoices):
        TO_EXPORT = "pending", _("à exporter")
        SENDING = "sending", _("en cours")
        INTEGRATED = "integrated", _("intégrée")
        REJECTED = "rejected", _("anomalie")
        UNKNOWN = "unknown", _("à vérifier")

    # Neither the invoice nor the company has an index of its own: the unique (invoice, kind, version) and the
    # (company, status) indexes serve them. An item changes status twice per export, and each change writes an entry
    # in every index of the table.
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="sync_items", db_index=False)
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+", db_index=False)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    version = models.PositiveIntegerField()
    # Sage's idempotency key: external_id of the entry, or update_id of the BAP update (unique: a constraint, which
    # on PostgreSQL does not add the second, ``LIKE``, index that ``unique=True`` does).
    key = models.CharField(max_length=80)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.TO_EXPORT)
    payload = models.JSONField(default=dict, blank=True)
    # For a creation: the BAP version the entry carried (a later change is then an update to push).
    bap_version = models.PositiveIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    piece_number = models.CharField(max_length=40, blank=True)
    run = models.ForeignKey(SyncRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="items")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(fields=["invoice", "kind", "version"], name="one_item_per_invoice_version"),
            models.UniqueConstraint(fields=["key"], name="syncitem_key_unique"),
        ]
        indexes = [models.Index(fields=["company", "status"], name="syncitem_company_status")]

    def __str__(self) -> str:
        return self.key


class Anomaly(models.Model):
    """One error raised by Sage FRP 1000 (or by the local pre-check, ``Source.SFD``) for one send."""

    class Source(models.TextChoices):
        SAGE = "sage", _("Sage FRP 1000")
        SFD = "sfd", _("contrôle SFD")

    class ClearedReason(models.TextChoices):
        # Stored in French since the first anomaly: the values are the words the invoice's history shows.
        CORRECTED = "corrigée", _("corrigée")
        INTEGRATED = "intégrée", _("intégrée")
        REPLACED = "remplacée", _("remplacée")
        UPDATE_APPLIED = "mise à jour appliquée", _("mise à jour appliquée")

    item = models.ForeignKey(SyncItem, null=True, blank=True, on_delete=models.CASCADE, related_name="anomalies")
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="anomalies")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+")
    run = models.ForeignKey(SyncRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="anomalies")
    simulated = models.BooleanField(default=False)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.SAGE)
    code = models.CharField(max_length=40)
    field = models.CharField(max_length=100, blank=True)
    message = models.CharField(max_length=500)
    hint = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    cleared_at = models.DateTimeField(null=True, blank=True)
    cleared_reason = models.CharField(max_length=100, choices=ClearedReason.choices, blank=True)

    class Meta:
        ordering = ["-created_at", "id"]
        default_permissions = ()
        indexes = [
            models.Index(fields=["invoice"], condition=Q(cleared_at__isnull=True), name="anomaly_open"),
        ]
        verbose_name = _("anomalie")

    def __str__(self) -> str:
        return f"{self.code} {self.field}"


def run_status(line_statuses: Iterable[str]) -> str:
    """The status of a run whose company lines have these statuses. ``run_finalize`` closes a run with it; the
    history applies it to the lines a user may see, so that a run reads, for someone who sees only some companies,
    as what it did of his (never « partielle » because of a company he does not see)."""
    statuses = list(line_statuses)
    if any(status in (SyncRunCompany.Status.QUEUED, SyncRunCompany.Status.RUNNING) for status in statuses):
        return SyncRun.Status.RUNNING
    done = {SyncRunCompany.Status.SUCCEEDED, SyncRunCompany.Status.PARTIAL}
    if all(status == SyncRunCompany.Status.SUCCEEDED for status in statuses):
        return SyncRun.Status.SUCCEEDED
    if all(status in done for status in statuses):
        return SyncRun.Status.ANOMALIES
    if any(status in done for status in statuses):
        return SyncRun.Status.PARTIAL
    return SyncRun.Status.FAILED
