"""``python manage.py synchronise [--company CODE]...``: the automatic run (referential then entries), now."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from companies.models import Company
from companies.services import CompanyBusy
from synchro.models import SyncRun
from synchro.services import run_company_execute, run_start


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
            trigger=SyncRun.Trigger.MANUAL, user=None, companies=list(companies), include_pull=True, dispatch=False
        )
        failures = 0
        for line in run.companies.select_related("company"):
            try:
                line = run_company_execute(run_company_id=line.pk)
            except CompanyBusy as busy:
                self.stderr.write(str(busy))
                failures += 1
                continue
            self.stdout.write(
                f"{line.company.code} : {line.get_status_display()} — {line.integrated} intégrée(s),"
                f" {line.rejected} en anomalie" + (f" — {line.error}" if line.error else "")
            )
            failures += line.status == line.Status.FAILED
        if failures:
            raise CommandError(f"{failures} société(s) en échec.")
