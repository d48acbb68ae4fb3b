"""Fewer indexes on the invoice, whose every state change (twice per export) writes an entry in each of them.

- the company's own index goes: every index that starts with the company (``invoice_company_status``, the unique
  number per supplier) serves the same lookups;
- ``invoice_export_open_count`` goes: the Visuel counts come from ``InvoiceStateCount`` (migration 0004);
- the file fingerprint and the BAP's author are indexed only where they have a value (PostgreSQL also kept a second,
  ``LIKE``, index of the fingerprint, never used).
"""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("companies", "0001_initial"),
        ("invoices", "0004_state_counts"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(model_name="invoice", name="invoice_export_open_count"),
        migrations.AlterField(
            model_name="invoice",
            name="company",
            field=models.ForeignKey(
                db_index=False,
                on_delete=models.deletion.PROTECT,
                related_name="invoices",
                to="companies.company",
                verbose_name="société",
            ),
        ),
        migrations.AlterField(
            model_name="invoice",
            name="source_hash",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AlterField(
            model_name="invoice",
            name="bap_by",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddIndex(
            model_name="invoice",
            index=models.Index(
                condition=models.Q(("source_hash", ""), _negated=True),
                fields=["source_hash"],
                name="invoice_source_hash",
            ),
        ),
        migrations.AddIndex(
            model_name="invoice",
            index=models.Index(condition=models.Q(("bap_by__isnull", False)), fields=["bap_by"], name="invoice_bap_by"),
        ),
    ]
