"""The rights of the « Droits » screen: Django permissions, in the order the matrix shows them."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import Permission
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Right:
    perm: str  # app_label.codename
    label: str
    help: str
    # The right acts on every company at once (the connectors and the schedule serve them all): only a user who
    # sees every company holds it, whatever his groups say (``accounts.backends``).
    every_company: bool = False

    @property
    def app_label(self) -> str:
        return self.perm.partition(".")[0]

    @property
    def codename(self) -> str:
        return self.perm.partition(".")[2]


RIGHTS = (
    Right(
        "companies.update_companies",
        _("Mettre à jour les sociétés"),
        _("Administration → Société, référentiel"),
    ),
    Right("synchro.view_synchronisations", _("Visuel Synchronisations"), _("voir et exporter les écritures")),
    Right(
        "connectors.manage_connectors",
        _("Paramétrage des connecteurs"),
        _("connexion et synchronisation automatique, pour toutes les sociétés"),
        every_company=True,
    ),
    Right("accounts.manage_rights", _("Gérer les droits"), _("cet écran")),
    Right("invoices.view_invoices", _("Voir les factures"), _("liste et détail des factures")),
    Right("invoices.edit_invoices", _("Modifier les factures"), _("corriger et valider")),
    Right("invoices.give_bap", _("Donner le bon à payer"), _("BAP")),
)
RIGHTS_BY_PERM = {right.perm: right for right in RIGHTS}
EVERY_COMPANY_RIGHTS = frozenset(right.perm for right in RIGHTS if right.every_company)


def permissions_by_perm() -> dict[str, Permission]:
    wanted = {(r.app_label, r.codename) for r in RIGHTS}
    found = Permission.objects.select_related("content_type").filter(codename__in=[codename for _, codename in wanted])
    return {
        f"{p.content_type.app_label}.{p.codename}": p for p in found if (p.content_type.app_label, p.codename) in wanted
    }
