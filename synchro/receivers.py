"""Reactions to what happens to invoices, in the same transaction."""

from __future__ import annotations

from django.dispatch import receiver
from django.utils import timezone

from invoices.signals import invoice_corrected

from .models import Anomaly


@receiver(invoice_corrected)
def clear_stale_anomalies(sender, invoice, **kwargs) -> None:
    """A corrected invoice is a new version: the anomalies of the previous one leave the list (kept in history)."""
    Anomaly.objects.filter(invoice=invoice, cleared_at__isnull=True, simulated=False).update(
        cleared_at=timezone.now(), cleared_reason=Anomaly.ClearedReason.CORRECTED
    )
