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
        _("connexion et synchronisation automatique"),
    ),
    Right("accounts.manage_rights", _("Gérer les droits"), _("cet écran")),
    Right("invoices.view_invoices", _("Voir les factures"), _("liste et détail des factures")),
    Right("invoices.edit_invoices", _("Modifier les factures"), _("corriger et valider")),
    Right("invoices.give_bap", _("Donner le bon à payer"), _("BAP")),
)
RIGHTS_BY_PERM = {right.perm: right for right in RIGHTS}


def permissions_by_perm() -> dict[str, Permission]:
    wanted = {(r.app_label, r.codename) for r in RIGHTS}
    found = Permission.objects.select_related("content_type").filter(codename__in=[codename for _, codename in wanted])
    return {
        f"{p.content_type.app_label}.{p.codename}": p for p in found if (p.content_type.app_label, p.codename) in wanted
    }
