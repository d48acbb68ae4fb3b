from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Droits"

    def ready(self) -> None:
        from .groups import ensure_default_groups

        # post_migrate is sent app by app in INSTALLED_APPS order: accounts comes last, when every right exists.
        post_migrate.connect(ensure_default_groups, sender=self, dispatch_uid="accounts.ensure_default_groups")
