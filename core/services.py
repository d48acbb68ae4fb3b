from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext as _

from .models import AuditEvent, Heartbeat

AUTOMATIC = "automatique"


def audit_record(
    *, actor, action: str, summary: str, company_code: str = "", details: dict | None = None
) -> AuditEvent:
    """Write one audit row; ``actor`` None means the schedule (« automatique »)."""
    if actor is not None and actor.is_authenticated:
        label = actor.get_full_name() or actor.get_username()
    else:
        actor = None
        label = _(AUTOMATIC)
    return AuditEvent.objects.create(
        actor=actor,
        actor_label=label[:150],
        action=action,
        summary=summary[:500],
        company_code=company_code,
        details=details or {},
    )


def heartbeat_touch(name: str) -> None:
    """Record that ``name`` is alive now (the scheduler's tick calls it with « beat » every minute)."""
    Heartbeat.objects.update_or_create(name=name, defaults={"at": timezone.now()})
