"""``python manage.py import_invoices [--company CODE]...``: read the scan folders now, in this process."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from invoices.intake import Outcome, intake_companies, intake_company


class Command(BaseCommand):
    help = "Importe les factures (Factur-X, UBL, CII) déposées dans le répertoire de scan des sociétés."

    def add_arguments(self, parser):
        parser.add_argument(
            "--company", action="append", default=[], metavar="CODE", help="code de la société (toutes sinon)"
        )

    def handle(self, *args, company: list[str], **options):
        companies = intake_companies().order_by("code", "pk")
        if company:
            companies = companies.filter(code__in=company)
            missing = set(company) - {c.code for c in companies}
            if missing:
                raise CommandError(
                    f"Société inconnue, inactive ou sans répertoire de scan : {', '.join(sorted(missing))}"
                )
        refused = 0
        for item in companies:
            report = intake_company(company=item)
            if report.error:
                self.stderr.write(report.error)
                continue
            counts = ", ".join(f"{report.count(outcome)} {outcome.label}" for outcome in Outcome)
            self.stdout.write(f"{item.code} ({report.directory}) : {len(report.files)} fichier(s) — {counts}")
            for file in report.files:
                line = f"  {file.name} : {file.outcome_label}"
                if file.invoice_id:
                    line += f" — facture id {file.invoice_id}"
                if file.reason:
                    line += " — " + file.reason.replace("\n", " ")
                self.stdout.write(line)
            refused += report.count(Outcome.REFUSED)
        if refused:
            self.stdout.write(f"{refused} fichier(s) refusé(s) : voyez le .txt à côté de chacun dans erreurs/.")
