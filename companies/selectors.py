"""Reads of the companies app, always scoped to what the user may see."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet
from django.shortcuts import get_object_or_404

from .models import KIND_LABELS, REFERENTIAL_KINDS, Company, CompanyAccess


def _access(user) -> CompanyAccess | bool:
    """True: every company; False: none; else the access row with its list."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    access = CompanyAccess.objects.filter(user=user).first()
    if access is None:
        return False
    return True if access.all_companies else access


def visible_company_ids(user) -> list[int] | None:
    """The ids of the companies the user may see, or None for every company (no condition needed)."""
    access = _access(user)
    if isinstance(access, bool):
        return None if access else []
    return list(access.companies.values_list("pk", flat=True))


def companies_for_user(user) -> QuerySet[Company]:
    """The companies a user may see: all for a superuser or a user given « toutes les sociétés »."""
    access = _access(user)
    if isinstance(access, bool):
        return Company.objects.all() if access else Company.objects.none()
    return Company.objects.filter(pk__in=access.companies.values("pk"))


def company_for_user(user, pk) -> Company:
    """One company the user may see; any other answers 404, so that its existence does not leak."""
    return get_object_or_404(companies_for_user(user).select_related("connector"), pk=pk)


def company_referential_summary(company: Company) -> list[dict]:
    """Per kind: label, how many items, how many usable (active and still in Sage)."""
    summary = []
    for kind, model in REFERENTIAL_KINDS.items():
        totals = model.objects.filter(company=company).aggregate(
            total=Count("pk"), active=Count("pk", filter=Q(active=True, gone_upstream_at__isnull=True))
        )
        last = (company.pull_result or {}).get("counts", {}).get(kind, {})
        summary.append({"kind": kind, "label": KIND_LABELS[kind], "last": last, **totals})
    return summary
