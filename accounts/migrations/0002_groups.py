"""The two ready groups: Administrateur (every right) and Comptable."""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

from accounts.groups import DEFAULT_GROUPS

# The same two groups as accounts.groups (which recreates them after a flush).
RIGHTS = DEFAULT_GROUPS


def create_groups(apps, schema_editor):
    # Permissions are normally created after every migration; the groups need them now.
    for label in ("companies", "synchro", "connectors", "accounts", "invoices"):
        create_permissions(global_apps.get_app_config(label), verbosity=0, apps=apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, rights in RIGHTS.items():
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, codename in rights:
            group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=RIGHTS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("companies", "0001_initial"),
        ("synchro", "0001_initial"),
        ("connectors", "0001_initial"),
        ("invoices", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
