"""``python manage.py export_entries [--company CODE]... [--simulate]``: export what waits, in this process."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from companies.models import Company
from companies.services import CompanyBusy
from synchro.models import SyncRun
from synchro.services import run_company_execute, run_start


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
        kind = "creation" if simulate else "all"
        run = run_start(trigger=trigger, user=None, companies=list(companies), selection={"kind": kind}, dispatch=False)
        failures = 0
        for line in run.companies.select_related("company"):
            try:
                line = run_company_execute(run_company_id=line.pk)
            except CompanyBusy as busy:
                self.stderr.write(str(busy))
                failures += 1
                continue
            verb = "passeraient" if simulate else "intégrée(s)"
            self.stdout.write(
                f"{line.company.code} : {line.get_status_display()} — {line.integrated} {verb}, {line.updated} mise(s)"
                f" à jour, {line.rejected} en anomalie, {line.unknown} à vérifier"
                + (f" — {line.error}" if line.error else "")
            )
            failures += line.status == line.Status.FAILED
        self.stdout.write(f"Exécution n° {run.pk} : voir Administration → Visuel Synchronisations → Historique.")
        if failures:
            raise CommandError(f"{failures} société(s) en échec.")
