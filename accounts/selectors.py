"""Reads of the « Droits » screen, scoped to what the manager who reads it may change."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Prefetch, Q, QuerySet
from django.utils.translation import gettext_lazy as _

from companies.models import Company, CompanyAccess
from companies.selectors import visible_company_ids
from core.models import AuditEvent

from .rights import RIGHTS, RIGHTS_BY_PERM

RIGHT_NOT_HELD = _("Vous n'avez pas ce droit : vous ne pouvez pas le donner.")
GROUP_NOT_HELD = _("Ce groupe donne des droits que vous n'avez pas : vous ne pouvez pas y ajouter quelqu'un.")
EVERY_COMPANY_ONLY = _(
    "« Toutes les sociétés », les groupes et leurs droits agissent sur toutes les sociétés : seul un gestionnaire "
    "des droits qui voit toutes les sociétés peut les modifier."
)
SEES_MORE = _(
    "Voit des sociétés que vous ne voyez pas : seul un gestionnaire des droits qui voit toutes les sociétés peut "
    "modifier ses droits."
)
INEFFECTIVE = _("Sans effet : ce droit demande « Toutes les sociétés ».")


def sees_every_company(user) -> bool:
    """Superusers and users given « Toutes les sociétés »; remembered on the user object for the request."""
    cached = getattr(user, "_sfd_sees_every_company", None)
    if cached is None:
        cached = visible_company_ids(user) is None
        user._sfd_sees_every_company = cached
    return cached


def _perm_names(permissions) -> set[str]:
    return {f"{p.content_type.app_label}.{p.codename}" for p in permissions}


def _codes(permissions) -> set[str]:
    return _perm_names(permissions) & set(RIGHTS_BY_PERM)


@dataclass(frozen=True)
class ManagerScope:
    """What a manager of the « Droits » screen may touch: the companies he sees and the rights he holds.

    A manager limited to some companies changes only users who see nothing beyond them, and never what acts on
    every company (« Toutes les sociétés », groups). Nobody but a superuser gives a right he does not hold.
    """

    manager: object
    every_company: bool
    company_ids: frozenset[int]
    held: frozenset[str]

    def covers(self, *, all_companies: bool, company_ids: set[int]) -> bool:
        """Whether a user who sees these companies sees nothing beyond the manager's."""
        return self.every_company or (not all_companies and company_ids <= self.company_ids)

    def may_give_group(self, group: Group) -> bool:
        if not self.every_company:
            return False
        # The group's every permission, not only the screen's rights: joining gives them all.
        return self.manager.has_perms(_perm_names(group.permissions.all()))


def manager_scope(manager) -> ManagerScope:
    ids = visible_company_ids(manager)
    every = ids is None
    return ManagerScope(
        manager=manager,
        every_company=every,
        company_ids=frozenset(Company.objects.values_list("pk", flat=True) if every else ids),
        held=frozenset(perm for perm in RIGHTS_BY_PERM if manager.has_perm(perm)),
    )


@dataclass
class MatrixRow:
    user: object
    direct: set[str]
    inherited: dict[str, list[str]]  # right → names of the groups that give it
    group_ids: set[int]
    all_companies: bool
    company_ids: set[int]
    editable: bool = True
    locked_reason: str = ""
    hidden_companies: bool = False
    cells: list[dict] = field(default_factory=list)
    groups: list[dict] = field(default_factory=list)


def users_for_matrix(query: str = "") -> QuerySet:
    users = get_user_model().objects.filter(is_active=True).order_by("username")
    if query:
        users = users.filter(
            Q(username__icontains=query)
            | Q(first_name__icontains=query)
            | Q(last_name__icontains=query)
            | Q(email__icontains=query)
        )
    return users.prefetch_related(
        "user_permissions__content_type",
        Prefetch("groups", queryset=Group.objects.prefetch_related("permissions__content_type")),
        Prefetch("company_access", queryset=CompanyAccess.objects.prefetch_related("companies")),
    )


def groups_for_matrix() -> list[Group]:
    return list(Group.objects.order_by("name").prefetch_related("permissions__content_type"))


def matrix_rows(users, *, scope: ManagerScope, groups: list[Group]) -> list[MatrixRow]:
    """One row per user, each control marked with whether this manager may change it, and why not."""
    givable_groups = {group.pk for group in groups if scope.may_give_group(group)}
    rows = []
    for user in users:
        inherited: dict[str, list[str]] = {}
        for group in user.groups.all():
            for code in _codes(group.permissions.all()):
                inherited.setdefault(code, []).append(group.name)
        try:
            access = user.company_access
        except CompanyAccess.DoesNotExist:
            access = None
        all_companies = bool(access and access.all_companies)
        company_ids = {c.pk for c in access.companies.all()} if access else set()
        editable = scope.covers(all_companies=all_companies, company_ids=company_ids)
        row = MatrixRow(
            user=user,
            direct=_codes(user.user_permissions.all()),
            inherited=inherited,
            group_ids={g.pk for g in user.groups.all()},
            all_companies=all_companies,
            company_ids=company_ids & scope.company_ids,
            editable=editable,
            locked_reason="" if editable else str(SEES_MORE),
            hidden_companies=bool(company_ids - scope.company_ids),
        )
        for right in RIGHTS:
            checked = right.perm in row.direct
            # Taking a right away is always within a manager's reach; giving one needs to hold it.
            not_held = not checked and right.perm not in scope.held
            row.cells.append(
                {
                    "right": right,
                    "checked": checked,
                    "via": inherited.get(right.perm, []),
                    "disabled": not editable or not_held,
                    "why": str(RIGHT_NOT_HELD) if editable and not_held else "",
                    "ineffective": right.every_company and not all_companies and (checked or right.perm in inherited),
                }
            )
        for group in groups:
            member = group.pk in row.group_ids
            if not editable or not scope.every_company:
                why = "" if not editable else str(EVERY_COMPANY_ONLY)
                disabled = True
            else:
                disabled = not member and group.pk not in givable_groups
                why = str(GROUP_NOT_HELD) if disabled else ""
            row.groups.append({"group": group, "checked": member, "disabled": disabled, "why": why})
        rows.append(row)
    return rows


def group_rows(*, scope: ManagerScope, groups: list[Group]) -> list[dict]:
    rows = []
    for group in groups:
        codes = _codes(group.permissions.all())
        cells = []
        for right in RIGHTS:
            checked = right.perm in codes
            not_held = scope.every_company and not checked and right.perm not in scope.held
            cells.append(
                {
                    "right": right,
                    "checked": checked,
                    "disabled": not scope.every_company or not_held,
                    "why": str(RIGHT_NOT_HELD) if not_held else "",
                }
            )
        rows.append({"group": group, "cells": cells})
    return rows


def rights_audit(scope: ManagerScope, limit: int = 30) -> list[AuditEvent]:
    """The latest changes of rights this manager may read: a limited manager reads only those about users who
    saw nothing beyond his companies, before and after the change (the summaries name companies)."""
    events = AuditEvent.objects.filter(action__startswith="rights.").order_by("-at", "-id")
    if scope.every_company:
        return list(events[:limit])
    shown: list[AuditEvent] = []
    for event in events.iterator(chunk_size=200):
        details = event.details or {}
        companies = details.get("companies")
        within = isinstance(companies, list) and set(companies) <= scope.company_ids
        if details.get("all_companies") is False and within:
            shown.append(event)
            if len(shown) == limit:
                break
    return shown
