"""Writes of the « Droits » screen: one transaction, one audit row per changed user or group."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from companies.models import Company, CompanyAccess
from core.services import audit_record

from .rights import RIGHTS_BY_PERM, permissions_by_perm
from .selectors import ManagerScope, manager_scope

MANAGE_RIGHTS = "accounts.manage_rights"


class RightsError(Exception):
    pass


class RightsDenied(PermissionDenied):
    """A change the manager may not make: the screen never offers it, so the request was forged or stale."""


@dataclass
class UserRights:
    """What the screen submitted for one user. ``None``: the field was not offered to this manager, keep it."""

    user_id: int
    perms: set[str] = field(default_factory=set)
    group_ids: set[int] | None = None
    all_companies: bool | None = None
    company_ids: set[int] = field(default_factory=set)


@dataclass
class GroupRights:
    group_id: int
    perms: set[str] = field(default_factory=set)


def _labels(perms: set[str]) -> str:
    return ", ".join(str(RIGHTS_BY_PERM[p].label) for p in sorted(perms))


def _direct_perms(user) -> set[str]:
    return {f"{p.content_type.app_label}.{p.codename}" for p in user.user_permissions.all()} & set(RIGHTS_BY_PERM)


def _codes_of(group: Group) -> set[str]:
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()} & set(RIGHTS_BY_PERM)


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


def _denied_unless(allowed: bool, message: str, **params) -> None:
    if not allowed:
        raise RightsDenied(message % params)


def _check_user_change(
    *, scope: ManagerScope, user, before: dict, after: dict, new_perms: set[str], groups: dict
) -> None:
    """Refuse what this manager may not change for this user (see ``ManagerScope``)."""
    name = user.get_username()
    _denied_unless(
        scope.covers(all_companies=before["all"], company_ids=before["companies"]),
        _("%(name)s voit des sociétés que vous ne voyez pas : vous ne pouvez pas modifier ses droits."),
        name=name,
    )
    _denied_unless(
        after["companies"] <= scope.company_ids,
        _("Vous ne pouvez donner que les sociétés que vous voyez vous-même."),
    )
    if not scope.every_company:
        _denied_unless(
            after["all"] == before["all"],
            _("Seul un gestionnaire des droits qui voit toutes les sociétés peut donner « Toutes les sociétés »."),
        )
        _denied_unless(
            after["groups"] == before["groups"],
            _("Seul un gestionnaire des droits qui voit toutes les sociétés peut changer les groupes de %(name)s."),
            name=name,
        )
    not_held = new_perms - scope.held
    _denied_unless(
        not not_held,
        _("Vous ne pouvez pas donner un droit que vous n'avez pas : %(rights)s."),
        rights=_labels(not_held),
    )
    for pk in sorted(after["groups"] - before["groups"]):
        _denied_unless(
            scope.may_give_group(groups[pk]),
            _("Le groupe %(group)s donne des droits que vous n'avez pas : vous ne pouvez pas y ajouter %(name)s."),
            group=groups[pk].name,
            name=name,
        )


@transaction.atomic
def rights_save(*, actor, users: list[UserRights], groups: list[GroupRights]) -> list[str]:
    """Save the matrix as submitted; returns the French lines of what changed. Nothing is saved on error.

    Raises ``RightsDenied`` for any change outside what ``actor`` may change (``accounts.selectors.ManagerScope``).
    """
    scope = manager_scope(actor)
    permissions = permissions_by_perm()
    User = get_user_model()
    changes: list[str] = []
    by_id = {
        u.pk: u
        for u in User.objects.select_for_update()
        .filter(pk__in=[u.user_id for u in users])
        .prefetch_related("user_permissions__content_type", "groups")
    }
    group_objects = {g.pk: g for g in Group.objects.prefetch_related("permissions__content_type")}

    for wanted in users:
        user = by_id[wanted.user_id]
        if user.is_superuser:
            continue  # a superuser has every right; nothing to change here
        access, _created = CompanyAccess.objects.select_for_update().get_or_create(user=user)
        before = {
            "all": access.all_companies,
            "companies": set(access.companies.values_list("pk", flat=True)),
            "groups": {g.pk for g in user.groups.all()},
        }
        after = {
            "all": before["all"] if wanted.all_companies is None else wanted.all_companies,
            "companies": set(wanted.company_ids),
            "groups": before["groups"] if wanted.group_ids is None else set(wanted.group_ids),
        }
        current = _direct_perms(user)
        added, removed = wanted.perms - current, current - wanted.perms
        _check_user_change(scope=scope, user=user, before=before, after=after, new_perms=added, groups=group_objects)
        lines = []
        if added:
            user.user_permissions.add(*(permissions[p] for p in added))
            lines.append(_("droits ajoutés : %(rights)s") % {"rights": _labels(added)})
        if removed:
            user.user_permissions.remove(*(permissions[p] for p in removed))
            lines.append(_("droits retirés : %(rights)s") % {"rights": _labels(removed)})
        if after["groups"] != before["groups"]:
            user.groups.set([group_objects[pk] for pk in after["groups"]])
            names = ", ".join(sorted(group_objects[pk].name for pk in after["groups"])) or _("aucun")
            lines.append(_("groupes : %(groups)s") % {"groups": names})
        if after["all"] != before["all"] or after["companies"] != before["companies"]:
            access.all_companies = after["all"]
            access.save(update_fields=["all_companies"])
            access.companies.set(after["companies"])
            codes = Company.objects.filter(pk__in=after["companies"]).order_by("code").values_list("code", flat=True)
            scope_label = _("toutes les sociétés") if after["all"] else ", ".join(codes) or _("aucune société")
            lines.append(_("sociétés : %(scope)s") % {"scope": scope_label})
        if lines:
            summary = f"{user.get_username()} — " + " ; ".join(lines)
            changes.append(summary)
            # The companies the user saw before and after: who may read this line (``rights_audit``).
            details = {
                "user": user.pk,
                "all_companies": before["all"] or after["all"],
                "companies": sorted(before["companies"] | after["companies"]),
            }
            audit_record(actor=actor, action="rights.user_changed", summary=summary, details=details)

    for wanted in groups:
        group = group_objects[wanted.group_id]
        current = _codes_of(group)
        added, removed = wanted.perms - current, current - wanted.perms
        if not added and not removed:
            continue
        _denied_unless(
            scope.every_company,
            _("Seul un gestionnaire des droits qui voit toutes les sociétés peut changer les droits d'un groupe."),
        )
        _denied_unless(
            not (added - scope.held),
            _("Vous ne pouvez pas donner un droit que vous n'avez pas : %(rights)s."),
            rights=_labels(added - scope.held),
        )
        lines = []
        if added:
            group.permissions.add(*(permissions[p] for p in added))
            lines.append(_("droits ajoutés : %(rights)s") % {"rights": _labels(added)})
        if removed:
            group.permissions.remove(*(permissions[p] for p in removed))
            lines.append(_("droits retirés : %(rights)s") % {"rights": _labels(removed)})
        summary = _("groupe %(name)s") % {"name": group.name} + " — " + " ; ".join(lines)
        changes.append(summary)
        audit_record(
            actor=actor,
            action="rights.group_changed",
            summary=summary,
            details={"group": group.pk, "all_companies": True},
        )

    if rights_holders_count() == 0:
        raise RightsError(
            _(
                "Enregistrement refusé : plus personne n'aurait le droit « Gérer les droits ». "
                "Vous ne pouvez pas retirer ce droit au dernier utilisateur qui l'a."
            )
        )
    return changes
