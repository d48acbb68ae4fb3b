"""What every app shares: the audit log.

``core`` sits below every other app (``synchro → invoices → companies → connectors → core``), so that each
of them, and ``accounts``, can write an audit row without importing one another.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """Who did what, when: every export, every change of rights or settings, every referential pull."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # « automatique » for the schedule, or the user's name frozen at the time.
    actor_label = models.CharField(max_length=150)
    action = models.CharField(max_length=60, db_index=True)
    summary = models.CharField(max_length=500)
    company_code = models.CharField(max_length=40, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        default_permissions = ()

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action}"


class Heartbeat(models.Model):
    """The last sign of life of a periodic process (« beat »: the scheduler's tick), read by /healthz."""

    name = models.CharField(max_length=50, primary_key=True)
    at = models.DateTimeField()

    class Meta:
        default_permissions = ()

    def __str__(self) -> str:
        return f"{self.name} {self.at:%Y-%m-%d %H:%M:%S}"
