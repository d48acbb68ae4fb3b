"""Rights that act on every company are held only by a user who sees every company.

The connectors (URL, key, timeout) serve every company attached to them and the schedule synchronises them all: a
user limited to some companies who holds « Paramétrage des connecteurs », directly or through a group, would act on
companies he cannot see. Checked here, every ``has_perm`` agrees — the views, the menu, the templates — instead of
each view remembering it.
"""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend

from .rights import EVERY_COMPANY_RIGHTS
from .selectors import sees_every_company


class CompanyScopedModelBackend(ModelBackend):
    def has_perm(self, user_obj, perm, obj=None) -> bool:
        # The companies are read only for a holder of such a right (the model backend caches the rights).
        if not super().has_perm(user_obj, perm, obj):
            return False
        return perm not in EVERY_COMPANY_RIGHTS or sees_every_company(user_obj)
