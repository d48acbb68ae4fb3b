from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext as _

from .models import AuditEvent, Heartbeat

AUTOMATIC = "automatique"


def actor_label(actor) -> str:
    """Who did it, as the histories write it: the user's full name (or login), « automatique » for the schedule."""
    if actor is None or not getattr(actor, "is_authenticated", False):
        return _(AUTOMATIC)
    return (actor.get_full_name() or actor.get_username())[:150]


def audit_record(
    *, actor, action: str, summary: str, company_code: str = "", details: dict | None = None
) -> AuditEvent:
    """Write one audit row; ``actor`` None means the schedule (« automatique »)."""
    label = actor_label(actor)
    return AuditEvent.objects.create(
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        actor_label=label,
        action=action,
        summary=summary[:500],
        company_code=company_code,
        details=details or {},
    )


def heartbeat_touch(name: str) -> None:
    """Record that ``name`` is alive now (the scheduler's tick calls it with « beat » every minute)."""
    Heartbeat.objects.update_or_create(name=name, defaults={"at": timezone.now()})
