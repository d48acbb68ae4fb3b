from __future__ import annotations

import re

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Company
from .services import company_scan_directory_conflict, scan_directory_conflict_message

_SAFE_DIRECTORY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\- ]{0,199}$")


class CompanySettingsForm(forms.ModelForm):
    """SFD's own settings of a company; a referential pull never changes them."""

    class Meta:
        model = Company
        fields = ["scan_directory", "purchase_journal_code"]
        help_texts = {
            "scan_directory": _("Dossier sous la racine des scans où déposer les factures de cette société."),
            "purchase_journal_code": _("Code du journal Sage FRP 1000 où sont intégrées les factures d'achat."),
        }

    def clean_scan_directory(self) -> str:
        value = self.cleaned_data["scan_directory"].strip()
        if value and (not _SAFE_DIRECTORY.match(value) or ".." in value):
            raise forms.ValidationError(
                _("Nom de dossier invalide : lettres, chiffres, espaces, « _ », « - » et « . » seulement.")
            )
        if value:
            other = company_scan_directory_conflict(scan_directory=value, exclude_pk=self.instance.pk)
            if other is not None:
                raise forms.ValidationError(scan_directory_conflict_message(other, value))
        return value

    def clean_purchase_journal_code(self) -> str:
        value = self.cleaned_data["purchase_journal_code"].strip()
        if not value:
            raise forms.ValidationError(_("Indiquez le code du journal des achats."))
        return value
