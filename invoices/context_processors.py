"""What the menu shows of « Imports »: the refused files nobody has seen yet (the badge)."""

from __future__ import annotations

from django.utils.functional import cached_property

from .selectors import unseen_refused_count

VIEW = "invoices.view_invoices"


class ImportsBadge:
    """Counted only when a template shows it (the menu of a whole page), not for every partial an htmx poll
    renders."""

    def __init__(self, user):
        self._user = user

    @cached_property
    def count(self) -> int:
        return unseen_refused_count(self._user)


def imports_badge(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.has_perm(VIEW):
        return {}
    return {"imports_badge": ImportsBadge(user)}
