"""The two ready groups, Administrateur and Comptable; created by migration, recreated if missing.

A flush (as the test suite's transactional tests do) empties tables without replaying data migrations; the
``post_migrate`` signal that follows recreates what is missing here, without touching groups that exist (an
administrator may have changed their rights).
"""

from __future__ import annotations

DEFAULT_GROUPS = {
    "Administrateur": [
        ("companies", "update_companies"),
        ("synchro", "view_synchronisations"),
        ("connectors", "manage_connectors"),
        ("accounts", "manage_rights"),
        ("invoices", "view_invoices"),
        ("invoices", "edit_invoices"),
        ("invoices", "give_bap"),
    ],
    "Comptable": [
        ("synchro", "view_synchronisations"),
        ("invoices", "view_invoices"),
        ("invoices", "edit_invoices"),
        ("invoices", "give_bap"),
    ],
}


def ensure_default_groups(sender=None, **kwargs) -> None:
    from django.contrib.auth.models import Group, Permission

    for name, rights in DEFAULT_GROUPS.items():
        # Two processes migrating at once (two containers started together) make one group: the unique name decides.
        group, created = Group.objects.get_or_create(name=name)
        if not created:
            continue
        for app_label, codename in rights:
            permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if permission is not None:
                group.permissions.add(permission)
