"""``python manage.py purge_history [--days N]``: forget finished runs older than the retention.

What is purged: finished runs and their per-company lines, the anomalies of simulations, and login attempts older
than a day. What stays: the invoices, what was sent (SyncItem), the anomalies of real exports (the history of each
invoice) and the audit log.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from django.utils.translation import ngettext

from accounts.models import LoginAttempt
from core.services import audit_record
from synchro.models import Anomaly, SyncRun


class Command(BaseCommand):
    help = "Supprime l'historique des synchronisations plus ancien que la durée de conservation."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=settings.SYNC_HISTORY_RETENTION_DAYS, help="jours conservés")

    def handle(self, *args, days: int, **options):
        if days < 1:
            self.stderr.write("--days doit être au moins 1.")
            return
        cutoff = timezone.now() - dt.timedelta(days=days)
        with transaction.atomic():
            simulated, _ = Anomaly.objects.filter(simulated=True, created_at__lt=cutoff).delete()
            # Login attempts only matter for the lockout window; a day is plenty for an investigation.
            LoginAttempt.objects.filter(at__lt=timezone.now() - dt.timedelta(days=1)).delete()
            runs = SyncRun.objects.filter(finished_at__isnull=False, finished_at__lt=cutoff)
            count = runs.count()
            runs.delete()
            purged = ngettext("%(n)d exécution", "%(n)d exécutions", count) % {"n": count}
            older = ngettext("plus de %(n)d jour", "plus de %(n)d jours", days) % {"n": days}
            audit_record(actor=None, action="synchro.history_purged", summary=f"Historique purgé : {purged} de {older}")
        anomalies = ngettext("%(n)d anomalie simulée", "%(n)d anomalies simulées", simulated) % {"n": simulated}
        self.stdout.write(f"Historique purgé ({older}) : {purged}, {anomalies}.")
