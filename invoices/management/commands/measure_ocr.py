"""``python manage.py measure_ocr [DIR] [--details] [--json] [--intake]``: how well scans are read, against their
truth; ``--intake`` measures the whole wiring (the intake, the reading task, the invoice it pre-fills)."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from invoices.scan import Limits, OcrUnavailable
from invoices.scan_measure import documents, measure
from invoices.scan_measure_intake import measure_intake

DEFAULT_FOLDER = Path(settings.BASE_DIR) / "tests" / "fixtures" / "scans"


class Command(BaseCommand):
    help = (
        "Mesure la lecture des factures papier (OCR, fournisseur, champs) sur un dossier de documents accompagnés"
        " de leur vérité (<nom>.json)."
    )

    def add_arguments(self, parser):
        parser.add_argument("folder", nargs="?", default=str(DEFAULT_FOLDER), help="dossier des documents")
        parser.add_argument("--details", action="store_true", help="ce qui est faux, document par document")
        parser.add_argument("--json", action="store_true", dest="as_json", help="un objet JSON au lieu du tableau")
        parser.add_argument(
            "--intake",
            action="store_true",
            help="par l'import et la tâche de lecture (ce que la facture contient), dans une transaction annulée",
        )
        parser.add_argument("--page-seconds", type=float, default=Limits.page_seconds, help="délai par page (s)")

    def handle(self, *args, folder: str, details: bool, as_json: bool, page_seconds: float, intake: bool, **options):
        path = Path(folder)
        if not path.is_dir():
            raise CommandError(f"Dossier introuvable : {path}")
        if not documents(path):
            raise CommandError(f"Aucun document accompagné de sa vérité (<nom>.json) dans {path}.")
        try:
            report = measure_intake(path) if intake else measure(path, limits=Limits(page_seconds=page_seconds))
        except OcrUnavailable as error:
            raise CommandError(str(error)) from None
        if as_json:
            self.stdout.write(json.dumps(report.as_dict(), ensure_ascii=False))
        else:
            self.stdout.write("\n".join(report.lines(details=details)))
