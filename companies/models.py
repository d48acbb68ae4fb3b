"""Companies and their referential pulled from Sage FRP 1000.

Référentiel = the ERP's reference lists (accounts, suppliers, journals, tax codes, analytic sections,
payment modes). SFD never deletes a referential row: an item gone from Sage becomes inactive, because
invoices may still point at it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from connectors.models import Connector


class Company(models.Model):
    class PullStatus(models.TextChoices):
        IDLE = "idle", _("jamais mise à jour")
        QUEUED = "queued", _("en attente")
        RUNNING = "running", _("mise à jour en cours")
        SUCCEEDED = "succeeded", _("à jour")
        PARTIAL = "partial", _("à jour, avec des éléments ignorés")
        FAILED = "failed", _("échec")

    connector = models.ForeignKey(Connector, on_delete=models.PROTECT, related_name="companies")
    code = models.CharField(_("code de la société"), max_length=40)
    name = models.CharField(_("société"), max_length=200)
    siren = models.CharField(max_length=9, blank=True)
    # Given by Sage for a company outside France; a French company's is derived from its SIREN (``vat_numbers``).
    vat_number = models.CharField(_("n° de TVA"), max_length=20, blank=True)
    currency = models.CharField(max_length=3, default="EUR")
    closed_until = models.DateField(_("période clôturée jusqu'au"), null=True, blank=True)
    analytic_required = models.BooleanField(_("analytique obligatoire"), default=False)
    active = models.BooleanField(_("active"), default=True)
    exists_in_sage = models.BooleanField(default=True)

    # SFD's own settings: a pull never touches them.
    scan_directory = models.CharField(_("répertoire de scan"), max_length=200, blank=True)
    purchase_journal_code = models.CharField(_("journal des achats"), max_length=40, default="ACH")

    # The last (or current) referential pull, as the Société screen shows it.
    pull_status = models.CharField(max_length=20, choices=PullStatus.choices, default=PullStatus.IDLE)
    pull_progress = models.CharField(max_length=200, blank=True)
    pull_requested_at = models.DateTimeField(null=True, blank=True)
    pull_started_at = models.DateTimeField(null=True, blank=True)
    pull_finished_at = models.DateTimeField(null=True, blank=True)
    pull_result = models.JSONField(default=dict, blank=True)
    pull_error = models.TextField(blank=True)
    # Per kind, the newest Sage ``modified_at`` seen: the next pull asks only for what changed since.
    pull_watermarks = models.JSONField(default=dict, blank=True)

    # One sync per company at a time (pull or export), leased with a conditional UPDATE; a lease that
    # expires frees the company when a worker dies holding it.
    sync_lease_token = models.CharField(max_length=64, blank=True)
    sync_lease_label = models.CharField(max_length=100, blank=True)
    sync_lease_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = [Lower("name"), "code"]
        default_permissions = ()
        permissions = [("update_companies", "Mettre à jour les sociétés")]
        constraints = [models.UniqueConstraint(fields=["connector", "code"], name="company_code_per_connector")]
        verbose_name = _("société")
        verbose_name_plural = _("sociétés")

    def __str__(self) -> str:
        return self.name

    @property
    def pull_in_progress(self) -> bool:
        return self.pull_status in (self.PullStatus.QUEUED, self.PullStatus.RUNNING)


class CompanyAccess(models.Model):
    """Which companies a user may see: all of them, or a list. No row means none (superusers see all)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="company_access")
    all_companies = models.BooleanField(_("toutes les sociétés"), default=False)
    companies = models.ManyToManyField(Company, blank=True, related_name="+")

    class Meta:
        default_permissions = ()

    def __str__(self) -> str:
        return f"{self.user}"


class ReferentialItem(models.Model):
    """Common columns of the six kinds; ``SAGE_FIELDS`` are Sage's and a pull overwrites them."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+")
    code = models.CharField(_("code"), max_length=40)
    label = models.CharField(_("libellé"), max_length=255)
    active = models.BooleanField(_("actif"), default=True)
    modified_at = models.DateTimeField(null=True, blank=True)
    # Set when the item disappeared from Sage (it is then inactive); cleared if it comes back.
    gone_upstream_at = models.DateTimeField(null=True, blank=True)

    SAGE_FIELDS: tuple[str, ...] = ("label", "active", "modified_at")

    class Meta:
        abstract = True
        ordering = ["code"]
        default_permissions = ()

    def __str__(self) -> str:
        return f"{self.code} – {self.label}"

    @property
    def usable(self) -> bool:
        return self.active and self.gone_upstream_at is None


def _unique(name: str) -> list[models.UniqueConstraint]:
    return [models.UniqueConstraint(fields=["company", "code"], name=f"{name}_code_per_company")]


class Account(ReferentialItem):
    nature = models.CharField(max_length=20, default="autre")
    SAGE_FIELDS = (*ReferentialItem.SAGE_FIELDS, "nature")

    class Meta(ReferentialItem.Meta):
        constraints = _unique("account")
        verbose_name = _("compte")


class Supplier(ReferentialItem):
    siren = models.CharField(max_length=9, blank=True, db_index=True)
    vat_number = models.CharField(max_length=20, blank=True, db_index=True)
    city = models.CharField(max_length=100, blank=True)
    collective_account = models.CharField(max_length=40, default="401000")
    blocked = models.BooleanField(_("bloqué"), default=False)
    payment_terms_days = models.PositiveSmallIntegerField(default=30)
    payment_mode = models.CharField(max_length=40, blank=True)
    default_expense_account = models.CharField(max_length=40, blank=True)
    # SFD's own mapping: the expense account to use for this supplier, whatever Sage's default.
    local_expense_account = models.CharField(_("compte de charge (SFD)"), max_length=40, blank=True)

    SAGE_FIELDS = (
        *ReferentialItem.SAGE_FIELDS,
        "siren",
        "vat_number",
        "city",
        "collective_account",
        "blocked",
        "payment_terms_days",
        "payment_mode",
        "default_expense_account",
    )

    class Meta(ReferentialItem.Meta):
        constraints = _unique("supplier")
        verbose_name = _("fournisseur")

    @property
    def usable(self) -> bool:
        return super().usable and not self.blocked

    @property
    def expense_account_code(self) -> str:
        return self.local_expense_account or self.default_expense_account


class Journal(ReferentialItem):
    type = models.CharField(max_length=20, default="od")
    SAGE_FIELDS = (*ReferentialItem.SAGE_FIELDS, "type")

    class Meta(ReferentialItem.Meta):
        constraints = _unique("journal")
        verbose_name = _("journal")


class TaxCode(ReferentialItem):
    """A VAT code of Sage. ``vat_category`` is the EN 16931 category it books (S standard, Z zero rate, E exempt, AE
    reverse charge, K intra-EU acquisition, G export, O outside the scope, L/M Canaries, Ceuta and Melilla; blank:
    S when the rate is positive, E otherwise). A code with a ``collected_account`` is self-assessed (autoliquidation):
    its VAT is booked both as deductible and as due, so that the supplier's line stays the invoice's total."""

    rate = models.DecimalField(max_digits=5, decimal_places=2, default=0)
    deductible_account = models.CharField(max_length=40, blank=True)
    collected_account = models.CharField(max_length=40, blank=True)
    vat_category = models.CharField(max_length=2, blank=True)
    SAGE_FIELDS = (*ReferentialItem.SAGE_FIELDS, "rate", "deductible_account", "collected_account", "vat_category")

    class Meta(ReferentialItem.Meta):
        constraints = _unique("taxcode")
        verbose_name = _("code TVA")

    @property
    def category(self) -> str:
        return self.vat_category or ("S" if self.rate > 0 else "E")


class AnalyticSection(ReferentialItem):
    axis = models.CharField(max_length=40)
    SAGE_FIELDS = (*ReferentialItem.SAGE_FIELDS, "axis")

    class Meta(ReferentialItem.Meta):
        constraints = _unique("analyticsection")
        verbose_name = _("section analytique")


class PaymentMode(ReferentialItem):
    class Meta(ReferentialItem.Meta):
        constraints = _unique("paymentmode")
        verbose_name = _("mode de règlement")


# Sage's kind → model, in the order a pull fetches them, with the French words of the UI.
REFERENTIAL_KINDS: dict[str, type[ReferentialItem]] = {
    "accounts": Account,
    "suppliers": Supplier,
    "journals": Journal,
    "tax-codes": TaxCode,
    "analytic-sections": AnalyticSection,
    "payment-modes": PaymentMode,
}
KIND_LABELS = {
    "accounts": _("Comptes"),
    "suppliers": _("Fournisseurs"),
    "journals": _("Journaux"),
    "tax-codes": _("Codes TVA"),
    "analytic-sections": _("Sections analytiques"),
    "payment-modes": _("Modes de règlement"),
}
