"""Running a run's lines in the command's own process, and saying how each company went."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import ngettext

from companies.lease import CompanyBusy
from synchro.models import SyncRun
from synchro.runs import run_company_execute


def execute_and_report(command: BaseCommand, run: SyncRun, *, simulate: bool = False) -> None:
    failures = 0
    for line in run.companies.select_related("company"):
        try:
            line = run_company_execute(run_company_id=line.pk)
        except CompanyBusy as busy:
            command.stderr.write(str(busy))
            failures += 1
            continue
        integrated = (
            ngettext("%(n)d passerait", "%(n)d passeraient", line.integrated)
            if simulate
            else ngettext("%(n)d intégrée", "%(n)d intégrées", line.integrated)
        ) % {"n": line.integrated}
        updated = ngettext("%(n)d mise à jour", "%(n)d mises à jour", line.updated) % {"n": line.updated}
        command.stdout.write(
            f"{line.company.code} : {line.get_status_display()} — {integrated}, {updated},"
            f" {line.rejected} en anomalie, {line.unknown} à vérifier" + (f" — {line.error}" if line.error else "")
        )
        failures += line.status == line.Status.FAILED
    command.stdout.write(f"Exécution n° {run.pk} : voir Administration → Visuel Synchronisations → Historique.")
    if failures:
        raise CommandError(ngettext("%(n)d société en échec.", "%(n)d sociétés en échec.", failures) % {"n": failures})
