"""Rights that belong to no model of their own. No table: Django's permissions and groups carry everything."""

from django.db import models


class Rights(models.Model):
    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("manage_rights", "Gérer les droits")]

    def __str__(self) -> str:
        return "Droits"


class LoginAttempt(models.Model):
    """One try at the login form: repeated failures lock the name (and the address) for a while."""

    username = models.CharField(max_length=150, db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    succeeded = models.BooleanField(default=False)

    class Meta:
        default_permissions = ()
        indexes = [models.Index(fields=["ip", "at"], name="loginattempt_ip_at")]

    def __str__(self) -> str:
        return f"{self.username} {self.at:%Y-%m-%d %H:%M} {'ok' if self.succeeded else 'échec'}"
