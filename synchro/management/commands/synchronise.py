"""``python manage.py synchronise [--company CODE]...``: the automatic run (referential then entries), now."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from companies.models import Company
from synchro.models import SyncRun
from synchro.runs import run_start

from ._runs import execute_and_report


class Command(BaseCommand):
    help = "Lance une synchronisation complète (référentiel puis écritures) dans ce processus."

    def add_arguments(self, parser):
        parser.add_argument("--company", action="append", default=[], metavar="CODE", help="code de la société")

    def handle(self, *args, company: list[str], **options):
        companies = Company.objects.filter(active=True).select_related("connector")
        if company:
            companies = companies.filter(code__in=company)
        if not companies:
            raise CommandError("Aucune société active à synchroniser.")
        run = run_start(
            trigger=SyncRun.Trigger.SYNC_NOW, user=None, companies=list(companies), include_pull=True, dispatch=False
        )
        execute_and_report(self, run)
