from __future__ import annotations

import re
from decimal import Decimal

from django import forms
from django.db.models import Q
from django.forms import BaseInlineFormSet, inlineformset_factory
from django.utils.translation import gettext_lazy as _

from companies.models import Account, AnalyticSection, PaymentMode, Supplier, TaxCode

from .models import IntakeFile, Invoice, InvoiceLine
from .services import LineData, duplicate_number_message

DATE_WIDGET = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class PeriodFilterForm(forms.Form):
    """A filter form with a period (``date_from``/``date_to``) and a company among the user's."""

    def __init__(self, *args, companies, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["company"].queryset = companies
        bootstrap(self)

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", _("La fin de la période précède son début."))
        return data


class InvoiceFilterForm(PeriodFilterForm):
    company = forms.ModelChoiceField(queryset=None, required=False, label=_("Société"), empty_label=_("Toutes"))
    status = forms.ChoiceField(choices=[("", _("Tous")), *Invoice.Status.choices], required=False, label=_("Statut"))
    supplier = forms.CharField(required=False, max_length=100, label=_("Fournisseur"))
    number = forms.CharField(required=False, max_length=60, label=_("N° de facture"))
    bap = forms.ChoiceField(
        choices=[("", _("Tous")), ("yes", _("Bon à payer")), ("no", _("Sans BAP"))], required=False, label=_("BAP")
    )
    date_from = forms.DateField(required=False, label=_("Du"), widget=DATE_WIDGET)
    date_to = forms.DateField(required=False, label=_("Au"), widget=DATE_WIDGET)


def bootstrap(form: forms.BaseForm, size: str = "sm") -> None:
    """Bootstrap classes on every widget of a form rendered field by field."""
    for field in form.fields.values():
        widget = field.widget
        if isinstance(widget, forms.CheckboxInput):
            css = "form-check-input"
        elif isinstance(widget, forms.Select):
            css = f"form-select form-select-{size}"
        else:
            css = f"form-control form-control-{size}"
        widget.attrs["class"] = css


def _usable_or(queryset, current_ids):
    """What may be chosen: the usable items, plus the ones already chosen (so that a form shows them)."""
    return queryset.filter(Q(active=True, gone_upstream_at__isnull=True) | Q(pk__in=[i for i in current_ids if i]))


class InvoiceForm(forms.ModelForm):
    class Meta:
        model = Invoice
        fields = [
            "supplier", "kind", "number", "invoice_date", "due_date", "currency", "exchange_rate",
            "total_ht", "total_tva", "total_ttc", "label", "payment_mode",
        ]  # fmt: skip
        widgets = {"invoice_date": DATE_WIDGET, "due_date": DATE_WIDGET}
        help_texts = {
            "label": _("Vide : « Fact. numéro fournisseur » ; 60 caractères au plus dans Sage FRP 1000."),
            "exchange_rate": _("Facture dans une autre devise que l'euro : combien d'euros vaut une unité."),
        }

    # What the due date does when the invoice date changes, by where it came from.
    DUE_DATE_HELP = {
        Invoice.DueDateSource.TERMS: _(
            "Calculée avec le délai de paiement du fournisseur : elle suit la date de facture. "
            "Saisissez-en une pour la fixer."
        ),
        Invoice.DueDateSource.DOCUMENT: _(
            "Lue dans la facture électronique : elle ne suit pas la date de facture. "
            "Videz-la pour la calculer avec le délai de paiement du fournisseur."
        ),
        Invoice.DueDateSource.TYPED: _(
            "Saisie : elle ne suit pas la date de facture. "
            "Videz-la pour la calculer avec le délai de paiement du fournisseur."
        ),
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        company = self.instance.company
        self.fields["supplier"].queryset = Supplier.objects.filter(company=company).filter(
            Q(active=True, gone_upstream_at__isnull=True, blocked=False) | Q(pk=self.instance.supplier_id)
        )
        self.fields["supplier"].label_from_instance = lambda s: f"{s.code} – {s.label}"
        modes = PaymentMode.objects.filter(company=company, active=True)
        self.fields["payment_mode"] = forms.ChoiceField(
            choices=[("", _("Celui du fournisseur"))] + [(m.code, f"{m.code} – {m.label}") for m in modes],
            required=False,
            label=_("Mode de règlement"),
        )
        self.fields["currency"] = forms.CharField(max_length=3, label=_("Devise"), initial="EUR")
        for name in ("total_ht", "total_tva", "total_ttc"):
            self.fields[name].widget.attrs["step"] = "0.01"
        self.fields["due_date"].help_text = self.DUE_DATE_HELP.get(
            self.instance.due_date_source, self.DUE_DATE_HELP[Invoice.DueDateSource.TERMS]
        )
        self.fields["exchange_rate"].widget.attrs["step"] = "0.000001"
        bootstrap(self)

    def clean_currency(self) -> str:
        currency = self.cleaned_data["currency"].strip().upper()
        if not _CURRENCY.match(currency):
            raise forms.ValidationError(
                _("Devise %(c)s invalide : un code ISO 4217 de trois lettres (EUR, USD, CHF…).") % {"c": currency}
            )
        return currency

    def clean_exchange_rate(self) -> Decimal | None:
        rate = self.cleaned_data.get("exchange_rate")
        if rate is not None and rate <= 0:
            raise forms.ValidationError(_("Le cours doit être positif."))
        return rate

    def clean(self):
        data = super().clean()
        invoice_date, due_date = data.get("invoice_date"), data.get("due_date")
        # Untouched, the terms' due date is computed again from the new invoice date when saved (``invoice_update``):
        # only a due date that stays as it is can precede the invoice date.
        follows_the_date = (
            self.instance.due_date_source == Invoice.DueDateSource.TERMS and due_date == self.instance.due_date
        )
        if invoice_date and due_date and due_date < invoice_date and not follows_the_date:
            self.add_error("due_date", _("L'échéance précède la date de facture."))
        if data.get("currency") == "EUR":
            # An invoice in euros has no rate: one left from a former currency would be meaningless.
            data["exchange_rate"] = None
        supplier, number = data.get("supplier"), data.get("number")
        # The company is not a field of the form, so Django's own check of the unique (company, supplier, number)
        # leaves it out: without this, the database refuses the save.
        if supplier and number:
            twins = Invoice.objects.filter(company_id=self.instance.company_id, supplier=supplier, number=number)
            if twins.exclude(pk=self.instance.pk).exists():
                self.add_error("number", duplicate_number_message(supplier, number))
        return data

    def accounting_fields(self) -> dict:
        data = self.cleaned_data
        return {
            "supplier_id": data["supplier"].pk if data.get("supplier") else None,
            **{name: data.get(name) for name in self.Meta.fields if name != "supplier"},
        }


class LineForm(forms.ModelForm):
    class Meta:
        model = InvoiceLine
        fields = ["kind", "label", "amount_ht", "account", "tax_code", "analytic_section"]

    def __init__(self, *args, company, **kwargs):
        super().__init__(*args, **kwargs)
        current = self.instance
        self.fields["account"].queryset = _usable_or(
            Account.objects.filter(company=company).filter(code__startswith="6"), [current.account_id]
        )
        self.fields["account"].label_from_instance = lambda a: f"{a.code} – {a.label}"
        self.fields["tax_code"].queryset = _usable_or(TaxCode.objects.filter(company=company), [current.tax_code_id])
        self.fields["tax_code"].label_from_instance = lambda t: f"{t.code} ({t.rate} %)"
        self.fields["analytic_section"].queryset = _usable_or(
            AnalyticSection.objects.filter(company=company), [current.analytic_section_id]
        )
        self.fields["analytic_section"].label_from_instance = lambda s: f"{s.axis}/{s.code} – {s.label}"
        self.fields["amount_ht"].widget.attrs["step"] = "0.01"
        # A line without nature is an ordinary line (and a form posted before the nature existed stays valid).
        self.fields["kind"].required = False
        bootstrap(self)

    def clean_amount_ht(self) -> Decimal:
        amount = self.cleaned_data["amount_ht"]
        if amount is not None and amount < 0:
            raise forms.ValidationError(
                _(
                    "Le montant HT ne peut pas être négatif : une remise se saisit en nature « Remise »,"
                    " un avoir en positif."
                )
            )
        return amount


class BaseLineFormSet(BaseInlineFormSet):
    def __init__(self, *args, **kwargs):
        self.company = kwargs["instance"].company
        super().__init__(*args, **kwargs)

    def get_form_kwargs(self, index):
        return super().get_form_kwargs(index) | {"company": self.company}

    @property
    def empty_form(self):
        form = self.form(
            auto_id=self.auto_id,
            prefix=self.add_prefix("__prefix__"),
            empty_permitted=True,
            use_required_attribute=False,
            company=self.company,
            renderer=self.renderer,
        )
        self.add_fields(form, None)
        return form

    def clean(self):
        super().clean()
        if not any(form.cleaned_data and not form.cleaned_data.get("DELETE") for form in self.forms):
            raise forms.ValidationError(_("Une facture a au moins une ligne."))

    def line_data(self) -> list[LineData]:
        lines = []
        for form in self.forms:
            data = form.cleaned_data
            if not data or data.get("DELETE"):
                continue
            # What the electronic invoice said of the line stays with it while its amount does.
            kept = form.instance
            lines.append(
                LineData(
                    label=data["label"],
                    amount_ht=data["amount_ht"],
                    account_id=data["account"].pk if data.get("account") else None,
                    tax_code_id=data["tax_code"].pk if data.get("tax_code") else None,
                    analytic_section_id=data["analytic_section"].pk if data.get("analytic_section") else None,
                    kind=data.get("kind") or InvoiceLine.Kind.LINE,
                    vat_category=kept.vat_category,
                    source_amount=kept.source_amount if kept.amount_ht == data["amount_ht"] else None,
                )
            )
        return lines


LineFormSet = inlineformset_factory(
    Invoice, InvoiceLine, form=LineForm, formset=BaseLineFormSet, extra=1, can_delete=True, min_num=0
)


class IntakeFileFilterForm(PeriodFilterForm):
    """« Imports »: the files that reached the scan folders, by company, outcome, period (when received) and name."""

    company = forms.ModelChoiceField(queryset=None, required=False, label=_("Société"), empty_label=_("Toutes"))
    outcome = forms.ChoiceField(
        choices=[("", _("Tous")), *IntakeFile.Outcome.choices], required=False, label=_("Résultat")
    )
    date_from = forms.DateField(required=False, label=_("Reçus du"), widget=DATE_WIDGET)
    date_to = forms.DateField(required=False, label=_("Au"), widget=DATE_WIDGET)
    name = forms.CharField(required=False, max_length=100, label=_("Nom du fichier"))
    unseen = forms.BooleanField(required=False, label=_("Refusés non vus"))
