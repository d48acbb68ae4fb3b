from __future__ import annotations

import datetime as dt

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Connector, SyncSchedule


class ConnectorForm(forms.ModelForm):
    """The API key is write-only: the form says whether one is set, never shows it."""

    api_key = forms.CharField(
        label=_("Clé API"),
        required=False,
        max_length=500,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )

    url = forms.URLField(label=_("URL du serveur Sage FRP 1000"), max_length=300, assume_scheme="https")

    class Meta:
        model = Connector
        fields = ["name", "url", "timeout_seconds"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["timeout_seconds"].min_value = 1
        self.fields["timeout_seconds"].widget.attrs.update({"min": 1, "max": 300})
        if self.instance.has_api_key:
            self.fields["api_key"].help_text = _("Une clé est enregistrée. Laissez vide pour la conserver.")
        else:
            self.fields["api_key"].help_text = _("Aucune clé enregistrée.")

    def clean_timeout_seconds(self) -> int:
        value = self.cleaned_data["timeout_seconds"]
        if not 1 <= value <= 300:
            raise forms.ValidationError(_("Entre 1 et 300 secondes."))
        return value

    def clean(self):
        data = super().clean()
        if not self.instance.has_api_key and not data.get("api_key"):
            self.add_error("api_key", _("Indiquez la clé API du serveur Sage FRP 1000."))
        return data


class ScheduleForm(forms.Form):
    """« Je souhaite synchroniser mes connecteurs CHAQUE JOUR / CHAQUE SEMAINE à HH:MM »: saving it switches the
    automatic synchronisation on (there is no box to tick; switching it off is a button of its own)."""

    frequency = forms.ChoiceField(
        label=_("Je souhaite synchroniser mes connecteurs"), choices=SyncSchedule.Frequency.choices
    )
    weekday = forms.TypedChoiceField(
        label=_("Jour"),
        choices=[("", "—"), *SyncSchedule.Weekday.choices],
        coerce=int,
        required=False,
        empty_value=None,
    )
    time = forms.TimeField(
        label=_("à"),
        input_formats=["%H:%M"],
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        error_messages={"invalid": _("Heure invalide : saisissez HH:MM, par exemple 12:00.")},
    )

    def clean(self):
        data = super().clean()
        if data.get("frequency") == SyncSchedule.Frequency.WEEKLY and data.get("weekday") is None:
            self.add_error("weekday", _("Choisissez le jour de la semaine."))
        return data

    @classmethod
    def initial_from(cls, schedule: SyncSchedule) -> dict:
        return {
            "frequency": schedule.frequency,
            "weekday": schedule.weekday,
            "time": schedule.time if isinstance(schedule.time, dt.time) else None,
        }
