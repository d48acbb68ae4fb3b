"""``python manage.py rotate_encryption_key``: re-encrypt every stored API key under the newest key.

Rotation: put the new Fernet key first in ``SFD_ENCRYPTION_KEYS`` (the old ones after it), restart, run
this command, then remove the old keys once it reports no unreadable key.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import ngettext

from connectors import crypto
from connectors.models import Connector


class Command(BaseCommand):
    help = "Rechiffre les clés API des connecteurs avec la clé la plus récente de SFD_ENCRYPTION_KEYS."

    def handle(self, *args, **options):
        rotated = 0
        unreadable = []
        for connector in Connector.objects.exclude(api_key_encrypted="").order_by("pk"):
            try:
                token = crypto.rotate(connector.api_key_encrypted)
            except crypto.SecretUnreadable:
                unreadable.append(connector.name)
                continue
            # Only if the key was not changed in the meantime: a key typed in the UI is already current.
            rotated += Connector.objects.filter(pk=connector.pk, api_key_encrypted=connector.api_key_encrypted).update(
                api_key_encrypted=token
            )
        self.stdout.write(
            ngettext(
                "%(n)d clé API rechiffrée avec la clé la plus récente.",
                "%(n)d clés API rechiffrées avec la clé la plus récente.",
                rotated,
            )
            % {"n": rotated}
        )
        if unreadable:
            raise CommandError(
                "Clé API illisible avec les clés de SFD_ENCRYPTION_KEYS pour : "
                + ", ".join(f"« {name} »" for name in unreadable)
                + ". Remettez l'ancienne clé dans SFD_ENCRYPTION_KEYS (après la nouvelle) et relancez la"
                " commande, ou ressaisissez la clé API dans « Paramétrage des connecteurs ». Ne retirez pas"
                " l'ancienne clé avant que cette commande ne signale plus aucune clé illisible."
            )
