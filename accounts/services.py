"""Writes of the « Droits » screen: one transaction, one audit row per changed user or group."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from companies.models import Company, CompanyAccess
from core.services import audit_record

from .rights import RIGHTS_BY_PERM, permissions_by_perm

MANAGE_RIGHTS = "accounts.manage_rights"


class RightsError(Exception):
    pass


@dataclass
class UserRights:
    user_id: int
    perms: set[str] = field(default_factory=set)
    group_ids: set[int] = field(default_factory=set)
    all_companies: bool = False
    company_ids: set[int] = field(default_factory=set)


@dataclass
class GroupRights:
    group_id: int
    perms: set[str] = field(default_factory=set)


def _labels(perms: set[str]) -> str:
    return ", ".join(str(RIGHTS_BY_PERM[p].label) for p in sorted(perms))


def _direct_perms(user) -> set[str]:
    return {f"{p.content_type.app_label}.{p.codename}" for p in user.user_permissions.all()} & set(RIGHTS_BY_PERM)


def rights_holders_count(perm_codename: str = MANAGE_RIGHTS) -> int:
    """Active users who hold a right, directly, through a group, or as superusers."""
    permission = permissions_by_perm()[perm_codename]
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(is_superuser=True) | Q(user_permissions=permission) | Q(groups__permissions=permission))
        .distinct()
        .count()
    )


@transaction.atomic
def rights_save(
    *, actor, users: list[UserRights], groups: list[GroupRights], visible_company_ids: set[int]
) -> list[str]:
    """Save the matrix as submitted; returns the French lines of what changed. Nothing is saved on error."""
    permissions = permissions_by_perm()
    User = get_user_model()
    changes: list[str] = []
    by_id = {
        u.pk: u
        for u in User.objects.select_for_update()
        .filter(pk__in=[u.user_id for u in users])
        .prefetch_related("user_permissions__content_type", "groups")
    }
    group_objects = {g.pk: g for g in Group.objects.all()}
    companies = {c.pk: c for c in Company.objects.filter(pk__in=visible_company_ids)}

    for wanted in users:
        user = by_id[wanted.user_id]
        if user.is_superuser:
            continue  # a superuser has every right; nothing to change here
        lines = []
        current = _direct_perms(user)
        added, removed = wanted.perms - current, current - wanted.perms
        if added:
            user.user_permissions.add(*(permissions[p] for p in added))
            lines.append(_("droits ajoutés : %(rights)s") % {"rights": _labels(added)})
        if removed:
            user.user_permissions.remove(*(permissions[p] for p in removed))
            lines.append(_("droits retirés : %(rights)s") % {"rights": _labels(removed)})
        current_groups = {g.pk for g in user.groups.all()}
        if wanted.group_ids != current_groups:
            user.groups.set([group_objects[pk] for pk in wanted.group_ids])
            names = ", ".join(sorted(group_objects[pk].name for pk in wanted.group_ids)) or _("aucun")
            lines.append(_("groupes : %(groups)s") % {"groups": names})
        access, _created = CompanyAccess.objects.get_or_create(user=user)
        # Companies the administrator cannot see are left as they were: they are not theirs to give or take.
        current_companies = set(access.companies.values_list("pk", flat=True))
        hidden = current_companies - visible_company_ids
        new_companies = wanted.company_ids | hidden
        if access.all_companies != wanted.all_companies or new_companies != current_companies:
            access.all_companies = wanted.all_companies
            access.save(update_fields=["all_companies"])
            access.companies.set(new_companies)
            scope = (
                _("toutes les sociétés")
                if wanted.all_companies
                else ", ".join(sorted(companies[pk].code for pk in wanted.company_ids)) or _("aucune société")
            )
            lines.append(_("sociétés : %(scope)s") % {"scope": scope})
        if lines:
            summary = f"{user.get_username()} — " + " ; ".join(lines)
            changes.append(summary)
            audit_record(actor=actor, action="rights.user_changed", summary=summary, details={"user": user.pk})

    for wanted in groups:
        group = group_objects[wanted.group_id]
        current = {
            f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")
        } & set(RIGHTS_BY_PERM)
        added, removed = wanted.perms - current, current - wanted.perms
        lines = []
        if added:
            group.permissions.add(*(permissions[p] for p in added))
            lines.append(_("droits ajoutés : %(rights)s") % {"rights": _labels(added)})
        if removed:
            group.permissions.remove(*(permissions[p] for p in removed))
            lines.append(_("droits retirés : %(rights)s") % {"rights": _labels(removed)})
        if lines:
            summary = _("groupe %(name)s") % {"name": group.name} + " — " + " ; ".join(lines)
            changes.append(summary)
            audit_record(actor=actor, action="rights.group_changed", summary=summary, details={"group": group.pk})

    if rights_holders_count() == 0:
        raise RightsError(
            _(
                "Enregistrement refusé : plus personne n'aurait le droit « Gérer les droits ». "
                "Vous ne pouvez pas retirer ce droit au dernier utilisateur qui l'a."
            )
        )
    return changes
