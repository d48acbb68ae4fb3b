from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from invoices.forms import DATE_WIDGET, PeriodFilterForm
from invoices.models import ExportState

from .hints import HINTS
from .models import SyncItem

STATUS_CHOICES = [
    ("", _("Tous")),
    (ExportState.TO_EXPORT, _("à exporter")),
    (ExportState.SENDING, _("en cours")),
    (ExportState.INTEGRATED, _("intégrée")),
    (ExportState.REJECTED, _("anomalie")),
    (ExportState.UNKNOWN, _("à vérifier")),
]


class VisuelFilterForm(PeriodFilterForm):
    """The filters of Visuel Synchronisations; the same ones describe « Tout cocher »'s selection."""

    type = forms.ChoiceField(choices=SyncItem.Kind.choices, required=False, widget=forms.HiddenInput)
    company = forms.ModelChoiceField(queryset=None, required=False, label=_("Société"), empty_label=_("Toutes"))
    status = forms.ChoiceField(choices=STATUS_CHOICES, required=False, label=_("Statut"))
    supplier = forms.CharField(required=False, max_length=100, label=_("Fournisseur"))
    date_from = forms.DateField(required=False, label=_("Du"), widget=DATE_WIDGET)
    date_to = forms.DateField(required=False, label=_("Au"), widget=DATE_WIDGET)
    # An open anomaly of this code (the « Tableau de bord » links each code here): Sage's codes, SFD's own, and
    # REJECTED for a refusal that came without a code.
    anomaly = forms.ChoiceField(
        choices=[("", _("Toutes")), *((code, code) for code in sorted({*HINTS, "REJECTED"}))],
        required=False,
        label=_("Anomalie"),
    )

    @property
    def kind(self) -> str:
        """The tab, even when another field is invalid (its errors are shown on the tab the user was on)."""
        self.is_valid()
        return self.cleaned_data.get("type") or SyncItem.Kind.CREATION

    def selection_filters(self) -> dict:
        """JSON-safe filters for a run's selection."""
        data = self.cleaned_data
        return {
            "company": data["company"].pk if data.get("company") else None,
            "status": data.get("status") or "",
            "supplier": data.get("supplier") or "",
            "date_from": data["date_from"].isoformat() if data.get("date_from") else "",
            "date_to": data["date_to"].isoformat() if data.get("date_to") else "",
            "anomaly": data.get("anomaly") or "",
        }
