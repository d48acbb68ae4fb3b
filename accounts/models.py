"""Rights that belong to no model of their own. No table: Django's permissions and groups carry everything."""

from django.db import models


class Rights(models.Model):
    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("manage_rights", "Gérer les droits")]

    def __str__(self) -> str:
        return "Droits"
