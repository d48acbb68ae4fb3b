from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _state_count_triggers(sender, using, **kwargs):
    from .counters import sqlite_triggers_ensure

    sqlite_triggers_ensure(using)


class InvoicesConfig(AppConfig):
    name = "invoices"
    verbose_name = "Factures"

    def ready(self):
        # SQLite drops a table's triggers when Django rebuilds the table in a migration (invoices/counters.py).
        post_migrate.connect(_state_count_triggers, sender=self, dispatch_uid="invoices_state_count_triggers")
