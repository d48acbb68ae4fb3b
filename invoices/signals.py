"""Signals the invoices app sends, so that what depends on invoices (synchro) reacts without being imported."""

from django.dispatch import Signal

# Sent inside the transaction that makes a new version of an invoice's accounting content
# (kwargs: invoice, previous_export_state). The anomalies of the previous version are stale from then on.
invoice_corrected = Signal()
