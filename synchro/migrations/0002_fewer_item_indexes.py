"""Fewer indexes on the item, whose every change of status (twice per export) writes an entry in each of them: the
invoice and the company are served by the indexes that start with them, and the key's uniqueness becomes a
constraint (``unique=True`` also made PostgreSQL keep a ``LIKE`` index of the key, never used)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("companies", "0001_initial"),
        ("invoices", "0001_initial"),
        ("synchro", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="syncitem",
            name="company",
            field=models.ForeignKey(
                db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="companies.company"
            ),
        ),
        migrations.AlterField(
            model_name="syncitem",
            name="invoice",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="sync_items",
                to="invoices.invoice",
            ),
        ),
        migrations.AlterField(
            model_name="syncitem",
            name="key",
            field=models.CharField(max_length=80),
        ),
        migrations.AddConstraint(
            model_name="syncitem",
            constraint=models.UniqueConstraint(fields=("key",), name="syncitem_key_unique"),
        ),
    ]
