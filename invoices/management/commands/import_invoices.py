"""``python manage.py import_invoices [--company CODE]...``: read the scan folders now, in this process."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import ngettext

from invoices.intake import Outcome, intake_companies, intake_company


def outcome_count(outcome: str, count: int) -> str:
    """« 1 facture créée », « 2 refusées »… : each outcome with its number, in agreement."""
    words = {
        Outcome.CREATED: ngettext("%(n)d facture créée", "%(n)d factures créées", count),
        Outcome.DUPLICATE: ngettext("%(n)d déjà reçue", "%(n)d déjà reçues", count),
        Outcome.REFUSED: ngettext("%(n)d refusée", "%(n)d refusées", count),
        Outcome.IGNORED: ngettext("%(n)d ignorée", "%(n)d ignorées", count),
        Outcome.PENDING: ngettext("%(n)d en attente", "%(n)d en attente", count),
    }
    return words[outcome] % {"n": count}


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
        not_imported = 0
        for item in companies:
            report = intake_company(company=item)
            if report.error:
                self.stderr.write(report.error)
                continue
            counts = ", ".join(outcome_count(outcome, report.count(outcome)) for outcome in Outcome)
            files = ngettext("%(n)d fichier", "%(n)d fichiers", len(report.files)) % {"n": len(report.files)}
            self.stdout.write(f"{item.code} ({report.directory}) : {files} — {counts}")
            for file in report.files:
                line = f"  {file.name} : {file.outcome_label}"
                if file.invoice_id:
                    line += f" — facture id {file.invoice_id}"
                if file.reason:
                    line += " — " + file.reason.replace("\n", " ")
                self.stdout.write(line)
            not_imported += report.count(Outcome.REFUSED) + report.count(Outcome.DUPLICATE)
        if not_imported:
            self.stdout.write(
                ngettext(
                    "%(n)d fichier non importé : voyez le .txt à côté de lui dans erreurs/.",
                    "%(n)d fichiers non importés : voyez le .txt à côté de chacun dans erreurs/.",
                    not_imported,
                )
                % {"n": not_imported}
            )
