from django.apps import AppConfig


class SynchroConfig(AppConfig):
    name = "synchro"
    verbose_name = "Visuel Synchronisations"

    def ready(self) -> None:
        from . import receivers  # noqa: F401 - connects to the invoices' signals
