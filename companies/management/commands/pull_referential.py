"""``python manage.py pull_referential [--company CODE]... [--all] [--full]``: pull referentials now."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import ngettext

from companies.lease import CompanyBusy
from companies.models import KIND_LABELS, Company
from companies.services import company_referential_pull


class Command(BaseCommand):
    help = "Récupère le référentiel Sage FRP 1000 d'une ou de toutes les sociétés, dans ce processus."

    def add_arguments(self, parser):
        parser.add_argument("--company", action="append", default=[], metavar="CODE", help="code de la société")
        parser.add_argument("--all", action="store_true", help="toutes les sociétés actives")
        parser.add_argument("--full", action="store_true", help="tout relire, pas seulement ce qui a changé")

    def handle(self, *args, company: list[str], all: bool, full: bool, **options):
        if not company and not all:
            raise CommandError("Indiquez --company CODE ou --all.")
        companies = Company.objects.select_related("connector")
        companies = companies.filter(active=True) if all else companies.filter(code__in=company)
        missing = set(company) - {c.code for c in companies}
        if missing:
            raise CommandError(f"Société inconnue dans SFD : {', '.join(sorted(missing))}")
        failures = 0
        for item in companies:
            try:
                outcome = company_referential_pull(company=item, full=full)
            except CompanyBusy as busy:
                self.stderr.write(str(busy))
                failures += 1
                continue
            if outcome.error:
                self.stderr.write(f"{item.code} : {outcome.error}")
                failures += 1
                continue
            self.stdout.write(f"{item.code} : {outcome.status} en {outcome.seconds} s")
            for kind, counts in outcome.counts.items():
                created, updated = counts["created"], counts["updated"]
                deactivated, unchanged = counts["deactivated"], counts["unchanged"]
                self.stdout.write(
                    f"  {KIND_LABELS[kind]} : "
                    + ", ".join(
                        (
                            ngettext("%(n)d créé", "%(n)d créés", created) % {"n": created},
                            ngettext("%(n)d mis à jour", "%(n)d mis à jour", updated) % {"n": updated},
                            ngettext("%(n)d désactivé", "%(n)d désactivés", deactivated) % {"n": deactivated},
                            ngettext("%(n)d inchangé", "%(n)d inchangés", unchanged) % {"n": unchanged},
                        )
                    )
                )
            for notice in outcome.notices:
                self.stdout.write(f"  {notice}")
            for problem in outcome.problems:
                self.stdout.write(f"  ignoré ({problem['kind']}) {problem['code']} : {problem['message']}")
        if failures:
            raise CommandError(
                ngettext("%(n)d société en échec.", "%(n)d sociétés en échec.", failures) % {"n": failures}
            )
