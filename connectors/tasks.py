"""Thin Celery tasks of the connectors."""

from __future__ import annotations

from celery import shared_task

from .services import connectors_health_refresh


@shared_task(ignore_result=True)
def connectors_health_task() -> int:
    """Beat's probe of every Sage FRP 1000 server, read by /healthz."""
    return len(connectors_health_refresh())
