"""``python manage.py export_entries [--company CODE]... [--simulate]``: export what waits, in this process."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from companies.models import Company
from synchro.models import SyncRun
from synchro.runs import run_start

from ._runs import execute_and_report


class Command(BaseCommand):
    help = "Exporte vers Sage FRP 1000 les écritures et mises à jour à exporter (ou les simule)."

    def add_arguments(self, parser):
        parser.add_argument("--company", action="append", default=[], metavar="CODE", help="code de la société")
        parser.add_argument("--simulate", action="store_true", help="mode simulation de Sage : rien n'est comptabilisé")

    def handle(self, *args, company: list[str], simulate: bool, **options):
        companies = Company.objects.filter(active=True).select_related("connector")
        if company:
            companies = companies.filter(code__in=company)
            missing = set(company) - {c.code for c in companies}
            if missing:
                raise CommandError(f"Société inconnue ou inactive : {', '.join(sorted(missing))}")
        trigger = SyncRun.Trigger.SIMULATION if simulate else SyncRun.Trigger.EXPORT
        selection = {"kind": "creation" if simulate else "all"}
        run = run_start(trigger=trigger, user=None, companies=list(companies), selection=selection, dispatch=False)
        execute_and_report(self, run, simulate=simulate)
