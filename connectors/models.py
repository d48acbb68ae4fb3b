"""Connectors (one Sage FRP 1000 server each) and the automatic synchronisation schedule."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from . import crypto
from .sage_frp1000.client import SageClient

INTERACTIVE_TIMEOUT = 10.0


class Connector(models.Model):
    """One Sage FRP 1000 server; each company is attached to one connector."""

    name = models.CharField(_("nom"), max_length=100, unique=True)
    url = models.URLField(_("URL du serveur Sage FRP 1000"), max_length=300)
    api_key_encrypted = models.TextField(blank=True, editable=False)
    timeout_seconds = models.PositiveSmallIntegerField(_("délai d'attente (secondes)"), default=30)
    # The last probe of the server's /health (connectors_health_refresh, every minute in the worker): /healthz reads
    # it instead of calling Sage for every anonymous request. Reset when the URL or the key changes.
    health_ok = models.BooleanField(null=True, editable=False)
    health_message = models.CharField(max_length=200, blank=True, editable=False)
    health_checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        default_permissions = ()
        permissions = [("manage_connectors", "Paramétrage des connecteurs")]

    def __str__(self) -> str:
        return self.name

    @property
    def has_api_key(self) -> bool:
        return bool(self.api_key_encrypted)

    def set_api_key(self, api_key: str) -> None:
        self.api_key_encrypted = crypto.encrypt(api_key)

    def decrypted_api_key(self) -> str:
        return crypto.decrypt(self.api_key_encrypted) if self.api_key_encrypted else ""

    # Templates must never render the key, even by mistake: they refuse to call what "alters data".
    decrypted_api_key.alters_data = True

    def client(self, *, interactive: bool = False) -> SageClient:
        """The gateway to this server. ``interactive``: a person waits on the answer in a web request, so one try
        of at most ``INTERACTIVE_TIMEOUT`` seconds, not the retries a worker can afford."""
        if interactive:
            timeout, retries = min(float(self.timeout_seconds), INTERACTIVE_TIMEOUT), 0
        else:
            timeout, retries = float(self.timeout_seconds), settings.SAGE_RETRIES
        return SageClient(
            self.url,
            self.decrypted_api_key(),
            timeout=timeout,
            retries=retries,
            backoff=settings.SAGE_BACKOFF_SECONDS,
            max_response_bytes=settings.SAGE_MAX_RESPONSE_BYTES,
        )


class SyncSchedule(models.Model):
    """« Je souhaite synchroniser mes connecteurs CHAQUE JOUR / CHAQUE SEMAINE à HH:MM » (Europe/Paris).

    One row. Celery beat ticks every minute and takes the slot when ``next_run_at`` is due, with a conditional
    UPDATE that moves ``next_run_at`` to the next occurrence after now: a slot runs once, and after a downtime
    the missed slots collapse into one catch-up run.
    """

    class Frequency(models.TextChoices):
        DAILY = "daily", _("CHAQUE JOUR")
        WEEKLY = "weekly", _("CHAQUE SEMAINE")

    class Weekday(models.IntegerChoices):
        MONDAY = 0, _("lundi")
        TUESDAY = 1, _("mardi")
        WEDNESDAY = 2, _("mercredi")
        THURSDAY = 3, _("jeudi")
        FRIDAY = 4, _("vendredi")
        SATURDAY = 5, _("samedi")
        SUNDAY = 6, _("dimanche")

    frequency = models.CharField(_("fréquence"), max_length=10, choices=Frequency.choices, default=Frequency.DAILY)
    weekday = models.PositiveSmallIntegerField(_("jour"), choices=Weekday.choices, null=True, blank=True)
    time = models.TimeField(_("heure"), default="12:00")
    enabled = models.BooleanField(_("synchronisation automatique activée"), default=False)
    next_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        default_permissions = ()

    def __str__(self) -> str:
        return f"{self.get_frequency_display()} {self.time:%H:%M}"
