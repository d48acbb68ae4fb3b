"""Where an invoice's due date came from: the supplier's payment terms (it then follows the invoice date), the
e-invoice, or the accountant (both kept as they are).

Existing invoices: a due date equal to the invoice date plus the supplier's terms is the terms' (the default); any
other due date is kept as it is, read from the e-invoice when the invoice came from a file, else typed.
"""

import datetime as dt

from django.db import migrations, models

CHUNK = 5000


def sources_of_existing_due_dates(apps, schema_editor):
    Invoice = apps.get_model("invoices", "Invoice")
    kept: dict[str, list[int]] = {"document": [], "typed": []}
    rows = Invoice.objects.filter(due_date__isnull=False).values_list(
        "pk", "invoice_date", "due_date", "supplier__payment_terms_days", "source_file"
    )
    for pk, invoice_date, due_date, terms, source_file in rows.iterator(chunk_size=CHUNK):
        if invoice_date is not None and terms is not None and due_date == invoice_date + dt.timedelta(days=terms):
            continue
        kept["document" if source_file else "typed"].append(pk)
    for source, pks in kept.items():
        for start in range(0, len(pks), CHUNK):
            Invoice.objects.filter(pk__in=pks[start : start + CHUNK]).update(due_date_source=source)


class Migration(migrations.Migration):
    dependencies = [
        ("invoices", "0005_fewer_invoice_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="invoice",
            name="due_date_source",
            field=models.CharField(
                choices=[
                    ("terms", "délai de paiement du fournisseur"),
                    ("document", "facture électronique"),
                    ("typed", "saisie"),
                ],
                db_default="terms",
                default="terms",
                max_length=10,
                verbose_name="origine de l'échéance",
            ),
        ),
        migrations.RunPython(sources_of_existing_due_dates, migrations.RunPython.noop, elidable=True),
    ]
