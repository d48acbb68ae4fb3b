from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

from django import forms
from django.core.validators import URLValidator
from django.utils.translation import gettext_lazy as _

from .models import Connector, SyncSchedule


class SageURLField(forms.URLField):
    """A Sage FRP 1000 server's base URL: http or https, a host, nothing else that could carry a secret."""

    default_validators = [URLValidator(schemes=["http", "https"])]
    default_error_messages = {
        "invalid": _("Adresse invalide : saisissez une URL http:// ou https://, par exemple https://sage.example.com."),
    }

    def validate(self, value: str) -> None:
        super().validate(value)
        if not value:
            return
        parts = urlsplit(value)
        if parts.username is not None or parts.password is not None:
            raise forms.ValidationError(
                _("L'URL ne doit contenir ni identifiant ni mot de passe : la clé API se saisit dans son champ."),
                code="credentials",
            )
        if parts.query or parts.fragment:
            raise forms.ValidationError(
                _("L'URL du serveur ne doit contenir ni paramètres (« ? ») ni ancre (« # »)."), code="query"
            )


class ConnectorForm(forms.ModelForm):
    """The API key is write-only: the form says whether one is set, never shows it."""

    api_key = forms.CharField(
        label=_("Clé API"),
        required=False,
        max_length=500,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )

    url = SageURLField(label=_("URL du serveur Sage FRP 1000"), max_length=300, assume_scheme="https")

    class Meta:
        model = Connector
        fields = ["name", "url", "timeout_seconds"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Read before the form copies the submitted values onto the instance.
        self.stored_url = self.instance.url if self.instance.pk else None
        self.fields["timeout_seconds"].min_value = 1
        self.fields["timeout_seconds"].widget.attrs.update({"min": 1, "max": 300})
        if self.instance.has_api_key:
            self.fields["api_key"].help_text = _(
                "Une clé est enregistrée. Laissez vide pour la conserver ; à ressaisir si l'URL change."
            )
        else:
            self.fields["api_key"].help_text = _("Aucune clé enregistrée.")

    def clean_timeout_seconds(self) -> int:
        value = self.cleaned_data["timeout_seconds"]
        if not 1 <= value <= 300:
            raise forms.ValidationError(_("Entre 1 et 300 secondes."))
        return value

    def clean(self):
        data = super().clean()
        if data.get("api_key"):
            return data
        if not self.instance.has_api_key:
            self.add_error("api_key", _("Indiquez la clé API du serveur Sage FRP 1000."))
        elif self.stored_url is not None and data.get("url") and data["url"] != self.stored_url:
            # The stored key was given for the stored server: it is sent to another one only if typed again.
            self.add_error(
                "api_key",
                _(
                    "L'URL a changé : saisissez de nouveau la clé API (elle n'est envoyée qu'au serveur pour lequel "
                    "elle a été saisie)."
                ),
            )
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
