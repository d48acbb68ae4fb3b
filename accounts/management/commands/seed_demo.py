"""``python manage.py seed_demo``: the demo of the manual page, ready to click through.

Creates the Sage FRP 1000 connector (from SAGE_FRP1000_URL / SAGE_FRP1000_API_KEY), the ten companies of the
manual with their scan directories, and the demo users; pulls every company's referential from the Sage
server (the stub in ``make run``); then loads about thirty invoices in every status — some integrated, some
designed to be refused by Sage (blocked supplier, inactive account, closed period, duplicate invoice number)
so that the anomaly journey can be shown — and drops sample e-invoices into two scan folders for « Importer ».
Running it again changes nothing that exists.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from companies.lease import CompanyBusy
from companies.models import Company, CompanyAccess
from companies.services import company_referential_pull
from connectors.models import Connector

from . import _demo_invoices as demo_invoices

# The manual's table: Société, Code de la société, Répertoire de scan.
DEMO_COMPANIES = (
    ("AKAO", "AKAO", "C0071000325_data_9"),
    ("avirer", "avirer", "C0071000325_data_25"),
    ("JNO", "JNO", "C0071000325_data_6"),
    ("MULTI", "MULTI", "C0071000325_data_8"),
    ("S4", "S4", "C0071000325_data_4"),
    ("SA AKAO", "SA AKAO", "C0071000325_data_15"),
    ("Société 1", "Société 1", "C0071000325_data_1"),
    ("Société JNO", "SJNO", "C0071000325_data_27"),
    ("Société S1", "S1", "C0071000325_data_3"),
    ("Société S2", "S2", "C0071000325_data_2"),
)

DEMO_USERS = (
    # username, password, first name, last name, group, superuser
    ("admin", "sfd-demo-admin", "Alice", "Administratrice", "Administrateur", True),
    ("comptable", "sfd-demo-comptable", "Bruno", "Comptable", "Comptable", False),
)


class Command(BaseCommand):
    help = "Charge la démonstration : connecteur, les dix sociétés du manuel, utilisateurs, référentiel."

    def add_arguments(self, parser):
        parser.add_argument("--no-pull", action="store_true", help="ne pas récupérer le référentiel depuis Sage")

    def handle(self, *args, no_pull: bool = False, **options):
        connector, created = Connector.objects.get_or_create(
            name="Sage FRP 1000",
            defaults={
                "url": settings.SAGE_FRP1000_URL,
                "timeout_seconds": int(settings.SAGE_FRP1000_TIMEOUT),
            },
        )
        if created or not connector.has_api_key:
            connector.set_api_key(settings.SAGE_FRP1000_API_KEY)
            connector.save()
        for name, code, scan_directory in DEMO_COMPANIES:
            Company.objects.get_or_create(
                connector=connector, code=code, defaults={"name": name, "scan_directory": scan_directory}
            )
            (settings.SCAN_ROOT / scan_directory).mkdir(parents=True, exist_ok=True)
        self._users()
        if not no_pull:
            self._pull(connector)
            demo_invoices.load(stdout=self.stdout)
        demo_invoices.drop_samples(stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS("Démonstration chargée."))

    def _users(self) -> None:
        User = get_user_model()
        for username, password, first, last, group_name, superuser in DEMO_USERS:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={"first_name": first, "last_name": last, "email": f"{username}@example.com"},
            )
            if created:
                user.set_password(password)
                user.is_superuser = superuser
                user.is_staff = superuser
                user.save()
                group = Group.objects.filter(name=group_name).first()
                if group is not None:
                    user.groups.add(group)
                CompanyAccess.objects.get_or_create(user=user, defaults={"all_companies": True})

    def _pull(self, connector: Connector) -> None:
        for company in Company.objects.filter(connector=connector, pull_status=Company.PullStatus.IDLE):
            try:
                outcome = company_referential_pull(company=company)
            except CompanyBusy as busy:
                self.stdout.write(self.style.WARNING(str(busy)))
                continue
            if outcome.error:
                self.stdout.write(self.style.WARNING(f"{company.code} : {outcome.error}"))
            else:
                self.stdout.write(f"{company.code} : référentiel récupéré ({outcome.seconds} s)")
