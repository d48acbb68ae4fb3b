"""Reads of the « Droits » screen."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Prefetch, Q, QuerySet

from companies.models import CompanyAccess
from core.models import AuditEvent

from .rights import RIGHTS, RIGHTS_BY_PERM


def _codes(permissions) -> set[str]:
    return {f"{p.content_type.app_label}.{p.codename}" for p in permissions} & set(RIGHTS_BY_PERM)


@dataclass
class MatrixRow:
    user: object
    direct: set[str]
    inherited: dict[str, list[str]]  # right → names of the groups that give it
    group_ids: set[int]
    all_companies: bool
    company_ids: set[int]
    cells: list[dict] = field(default_factory=list)


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


def matrix_rows(users) -> list[MatrixRow]:
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
        row = MatrixRow(
            user=user,
            direct=_codes(user.user_permissions.all()),
            inherited=inherited,
            group_ids={g.pk for g in user.groups.all()},
            all_companies=bool(access and access.all_companies),
            company_ids={c.pk for c in access.companies.all()} if access else set(),
        )
        row.cells = [
            {
                "right": right,
                "checked": right.perm in row.direct,
                "via": inherited.get(right.perm, []),
            }
            for right in RIGHTS
        ]
        rows.append(row)
    return rows


def group_rows() -> list[dict]:
    rows = []
    for group in Group.objects.order_by("name").prefetch_related("permissions__content_type"):
        codes = _codes(group.permissions.all())
        rows.append({"group": group, "cells": [{"right": r, "checked": r.perm in codes} for r in RIGHTS]})
    return rows


def rights_audit(limit: int = 30) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(action__startswith="rights.").select_related("actor")[:limit]
