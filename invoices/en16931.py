"""EN 16931 read from the XML itself: the business terms (BT-/BG-) of an invoice, through the standard's two syntax
bindings (CII — Factur-X / ZUGFeRD 2 / XRechnung CII — and UBL 2.1), and the standard's calculation rules.

Over 450 lines, one reader per syntax of EN 16931 (CII and UBL) beside the rules they share: the mapping of a
business term reads across both.

Why not the ``factur-x`` library's ``parse_ubl_cii_xml``: it maps several terms wrongly or not at all for what SFD
books (document-level allowances without their VAT category, no buyer identifiers, the first payment term only, the
EXTENDED sub-lines counted twice, UBL ``ChargeIndicator`` written ``1``/``0`` taken as an allowance, no BT-113/BT-114,
no tax currency total BT-111, no line quantity and price to check BT-131 against). Every term is therefore read here
with the XPath of its binding (CEN/TS 16931-3-2 for UBL, 16931-3-3 for CII), exactly as written (``Decimal``, no
rounding), and works on a fragment as well as on a whole invoice (CEN's test files are fragments): a term that is
absent reads as None or empty, and a rule only judges the terms it has.

Nothing here knows SFD: ``invoices.einvoice`` turns a ``Document`` into what SFD imports.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from lxml import etree

CII_NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
}
UBL_NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
UBL_INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
UBL_CREDIT_NOTE = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"

# UNTDID 1001 codes that EN 16931 allows, by meaning (credit notes: 81, 83, 261, 262, 296, 308, 381, 396, 420, 458,
# 532; pro forma 325 is not a tax invoice). Any other code is not an invoice SFD can book.
CREDIT_NOTE_CODES = frozenset({"81", "83", "261", "262", "296", "308", "381", "396", "420", "458", "532"})
INVOICE_CODES = frozenset(
    {
        "71", "80", "82", "84", "102", "130", "202", "203", "204", "211", "218", "219", "295", "326", "331", "380",
        "382", "383", "384", "385", "386", "387", "388", "389", "390", "393", "394", "395", "456", "457", "527", "553",
        "575", "623", "633", "751", "780", "817", "870", "875", "876", "877", "935",
    }
)  # fmt: skip
PRO_FORMA_CODE = "325"

# Lines of an EXTENDED invoice that the totals count: no status reason, or a DETAIL of a group. A GROUP line sums its
# details and an INFORMATION line only informs: neither is counted, neither is booked (Factur-X 1.0 EXTENDED rules).
COUNTED_LINE_STATUSES = ("", "DETAIL")

HUNDRED = Decimal(100)
CENT = Decimal("0.01")


def round2(value: Decimal) -> Decimal:
    """XPath's ``round(x * 100) div 100`` as the CEN rules use it: half up, to the cent."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


class ReadError(ValueError):
    """A term is present but unreadable (an amount « 12,5O », a date « 31/02/2026 »); the message is French."""


@dataclass(frozen=True)
class Identifier:
    value: str
    scheme: str = ""


@dataclass(frozen=True)
class Party:
    name: str = ""  # BT-27 / BT-44
    trading_name: str = ""  # BT-28 / BT-45
    identifiers: tuple[Identifier, ...] = ()  # BT-29 / BT-46
    legal_id: Identifier | None = None  # BT-30 / BT-47
    vat_ids: tuple[str, ...] = ()  # BT-31 / BT-48
    tax_registration: str = ""  # BT-32
    country: str = ""  # BT-40 / BT-55
    electronic_address: Identifier | None = None  # BT-34 / BT-49

    @property
    def label(self) -> str:
        return self.name or self.trading_name


@dataclass(frozen=True)
class AllowanceCharge:
    """BG-20 / BG-21 (document), BG-27 / BG-28 (line), or an EXTENDED logistics service charge."""

    charge: bool
    amount: Decimal | None
    base: Decimal | None = None
    percent: Decimal | None = None
    vat_category: str = ""
    vat_rate: Decimal | None = None
    reason: str = ""
    reason_code: str = ""
    logistics: bool = False


@dataclass(frozen=True)
class Line:
    """BG-25."""

    id: str = ""  # BT-126
    name: str = ""  # BT-153
    description: str = ""  # BT-154
    quantity: Decimal | None = None  # BT-129
    net_price: Decimal | None = None  # BT-146
    base_quantity: Decimal | None = None  # BT-149
    gross_price: Decimal | None = None  # BT-148
    price_discount: Decimal | None = None  # BT-147
    amount: Decimal | None = None  # BT-131
    vat_category: str = ""  # BT-151
    vat_rate: Decimal | None = None  # BT-152
    allowances_charges: tuple[AllowanceCharge, ...] = ()
    parent_id: str = ""  # EXTENDED
    status_reason: str = ""  # EXTENDED: DETAIL, GROUP, INFORMATION

    @property
    def counted(self) -> bool:
        return self.status_reason.upper() in COUNTED_LINE_STATUSES


@dataclass(frozen=True)
class VatBreakdown:
    """BG-23."""

    category: str
    rate: Decimal | None
    base: Decimal | None  # BT-116
    amount: Decimal | None  # BT-117
    exemption_reason: str = ""  # BT-120
    exemption_code: str = ""  # BT-121


@dataclass(frozen=True)
class PaymentTerm:
    due_date: dt.date | None
    description: str = ""
    amount: Decimal | None = None


@dataclass(frozen=True)
class Reference:
    number: str
    date: dt.date | None = None


@dataclass(frozen=True)
class Amount:
    value: Decimal
    currency: str = ""


@dataclass
class Document:
    syntax: str  # "cii" or "ubl"
    specification: str = ""  # BT-24
    number: str = ""  # BT-1
    type_code: str = ""  # BT-3
    issue_date: dt.date | None = None  # BT-2
    due_date: dt.date | None = None  # BT-9 (UBL; CII carries it in the payment terms)
    currency: str = ""  # BT-5
    tax_currency: str = ""  # BT-6
    seller: Party = field(default_factory=Party)
    buyer: Party = field(default_factory=Party)
    preceding: tuple[Reference, ...] = ()  # BG-3
    payment_terms: tuple[PaymentTerm, ...] = ()
    allowances_charges: tuple[AllowanceCharge, ...] = ()
    lines: tuple[Line, ...] = ()
    vat: tuple[VatBreakdown, ...] = ()
    line_total: Decimal | None = None  # BT-106
    allowance_total: Decimal | None = None  # BT-107
    charge_total: Decimal | None = None  # BT-108
    tax_exclusive: Decimal | None = None  # BT-109
    tax_totals: tuple[Amount, ...] = ()  # BT-110 (currency BT-5) and BT-111 (currency BT-6)
    tax_inclusive: Decimal | None = None  # BT-112
    prepaid: Decimal | None = None  # BT-113
    rounding: Decimal | None = None  # BT-114
    payable: Decimal | None = None  # BT-115

    @property
    def tax_total(self) -> Decimal | None:
        """BT-110: the VAT total in the invoice's currency (a total without currency is taken as in it)."""
        found = [t.value for t in self.tax_totals if t.currency in ("", self.currency)]
        return found[0] if len(found) == 1 else None

    @property
    def tax_total_accounting(self) -> Decimal | None:
        """BT-111: the VAT total in the tax currency BT-6, when it differs from the invoice's."""
        if not self.tax_currency or self.tax_currency == self.currency:
            return None
        found = [t.value for t in self.tax_totals if t.currency == self.tax_currency]
        return found[0] if found else None

    @property
    def counted_lines(self) -> tuple[Line, ...]:
        return tuple(line for line in self.lines if line.counted)

    @property
    def first_due_date(self) -> dt.date | None:
        dates = [self.due_date, *(term.due_date for term in self.payment_terms)]
        known = [date for date in dates if date]
        return min(known) if known else None


# --- values -------------------------------------------------------------------------------------------------

_DATE_102 = re.compile(r"^(\d{4})(\d{2})(\d{2})")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")


def _text(node) -> str:
    if node is None:
        return ""
    text = node if isinstance(node, str) else node.text
    return " ".join((text or "").split())


def read_decimal(value: str, what: str) -> Decimal | None:
    if not value:
        return None
    try:
        number = Decimal(value.replace(" ", ""))
    except InvalidOperation:
        raise ReadError(f"Montant illisible pour {what} : « {value[:40]} ».") from None
    if not number.is_finite():
        raise ReadError(f"Montant illisible pour {what} : « {value[:40]} ».")
    return number


def read_date(value: str, what: str) -> dt.date | None:
    """A date as written: CII's format 102 (``20261102``), or ISO (``2026-11-02``) with or without a time zone
    (``2026-11-02+01:00``, ``2026-11-02Z``): the day the issuer wrote, whatever its zone."""
    if not value:
        return None
    match = _DATE_102.match(value) or _ISO_DATE.match(value)
    try:
        if match is None:
            raise ValueError
        return dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise ReadError(f"Date illisible pour {what} : « {value[:40]} ».") from None


def _indicator(value: str) -> bool | None:
    """A charge indicator: ``true``/``false`` as XML booleans also read ``1``/``0`` (UBL files use both)."""
    lowered = value.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    return None


# Compiled XPath expressions, per thread (as the XSD validators: an lxml evaluator is not shared between threads),
# by namespaces and path: each expression is compiled once, not at each evaluation.
_compiled = threading.local()


def _compiled_for(namespaces: dict[str, str]) -> dict[str, etree.XPath]:
    """This thread's compiled expressions for these namespaces, by path."""
    caches = _compiled.__dict__.setdefault("caches", {})
    key = tuple(sorted(namespaces.items()))
    if key not in caches:
        caches[key] = {}
    return caches[key]


class _Reader:
    """XPath helpers bound to one syntax's namespaces."""

    def __init__(self, namespaces: dict[str, str]):
        self.ns = namespaces
        self._compiled = _compiled_for(namespaces)

    def all(self, node, path: str) -> list:
        if node is None:
            return []
        compiled = self._compiled.get(path)
        if compiled is None:
            compiled = self._compiled[path] = etree.XPath(path, namespaces=self.ns)
        return compiled(node)

    def one(self, node, path: str):
        found = self.all(node, path)
        return found[0] if found else None

    def text(self, node, path: str) -> str:
        return _text(self.one(node, path))

    def decimal(self, node, path: str, what: str) -> Decimal | None:
        return read_decimal(self.text(node, path), what)

    def date(self, node, path: str, what: str) -> dt.date | None:
        return read_date(self.text(node, path), what)

    def identifier(self, node, path: str) -> Identifier | None:
        found = self.one(node, path)
        value = _text(found)
        if not value:
            return None
        return Identifier(value, _text(found.get("schemeID")))


# --- CII (CEN/TS 16931-3-3) ----------------------------------------------------------------------------------


def _cii_party(r: _Reader, party) -> Party:
    if party is None:
        return Party()
    identifiers = [Identifier(_text(node), "") for node in r.all(party, "ram:ID") if _text(node)]
    identifiers += [Identifier(_text(node), _text(node.get("schemeID"))) for node in r.all(party, "ram:GlobalID")]
    return Party(
        name=r.text(party, "ram:Name"),
        trading_name=r.text(party, "ram:SpecifiedLegalOrganization/ram:TradingBusinessName"),
        identifiers=tuple(i for i in identifiers if i.value),
        legal_id=r.identifier(party, "ram:SpecifiedLegalOrganization/ram:ID"),
        vat_ids=tuple(
            _text(node) for node in r.all(party, "ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']") if _text(node)
        ),
        tax_registration=r.text(party, "ram:SpecifiedTaxRegistration/ram:ID[@schemeID='FC']"),
        country=r.text(party, "ram:PostalTradeAddress/ram:CountryID"),
        electronic_address=r.identifier(party, "ram:URIUniversalCommunication/ram:URIID"),
    )


def _cii_allowance_charge(r: _Reader, node, where: str) -> AllowanceCharge:
    indicator = _indicator(r.text(node, "ram:ChargeIndicator/udt:Indicator"))
    if indicator is None:
        raise ReadError(f"Indicateur remise/frais illisible ({where}).")
    return AllowanceCharge(
        charge=indicator,
        amount=r.decimal(node, "ram:ActualAmount", f"le montant d'une remise ou de frais ({where})"),
        base=r.decimal(node, "ram:BasisAmount", f"la base d'une remise ou de frais ({where})"),
        percent=r.decimal(node, "ram:CalculationPercent", f"le pourcentage d'une remise ou de frais ({where})"),
        vat_category=r.text(node, "ram:CategoryTradeTax/ram:CategoryCode").upper(),
        vat_rate=r.decimal(node, "ram:CategoryTradeTax/ram:RateApplicablePercent", f"le taux de TVA ({where})"),
        reason=r.text(node, "ram:Reason"),
        reason_code=r.text(node, "ram:ReasonCode"),
    )


def _cii_line(r: _Reader, node, index: int) -> Line:
    where = f"ligne {index}"
    agreement = r.one(node, "ram:SpecifiedLineTradeAgreement")
    settlement = r.one(node, "ram:SpecifiedLineTradeSettlement")
    gross = r.one(agreement, "ram:GrossPriceProductTradePrice")
    discounts = [
        r.decimal(item, "ram:ActualAmount", f"la remise sur prix ({where})")
        for item in r.all(gross, "ram:AppliedTradeAllowanceCharge[ram:ChargeIndicator/udt:Indicator='false']")
    ]
    return Line(
        id=r.text(node, "ram:AssociatedDocumentLineDocument/ram:LineID"),
        name=r.text(node, "ram:SpecifiedTradeProduct/ram:Name"),
        description=r.text(node, "ram:SpecifiedTradeProduct/ram:Description"),
        quantity=r.decimal(node, "ram:SpecifiedLineTradeDelivery/ram:BilledQuantity", f"la quantité ({where})"),
        net_price=r.decimal(agreement, "ram:NetPriceProductTradePrice/ram:ChargeAmount", f"le prix net ({where})"),
        base_quantity=r.decimal(
            agreement, "ram:NetPriceProductTradePrice/ram:BasisQuantity", f"la quantité de base du prix ({where})"
        ),
        gross_price=r.decimal(gross, "ram:ChargeAmount", f"le prix brut ({where})"),
        price_discount=sum((d for d in discounts if d is not None), Decimal(0)) if discounts else None,
        amount=r.decimal(
            settlement,
            "ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount",
            f"le montant net ({where})",
        ),
        vat_category=r.text(settlement, "ram:ApplicableTradeTax/ram:CategoryCode").upper(),
        vat_rate=r.decimal(settlement, "ram:ApplicableTradeTax/ram:RateApplicablePercent", f"le taux ({where})"),
        allowances_charges=tuple(
            _cii_allowance_charge(r, item, where) for item in r.all(settlement, "ram:SpecifiedTradeAllowanceCharge")
        ),
        parent_id=r.text(node, "ram:AssociatedDocumentLineDocument/ram:ParentLineID"),
        status_reason=r.text(node, "ram:AssociatedDocumentLineDocument/ram:LineStatusReasonCode").upper(),
    )


def read_cii(root) -> Document:
    """The terms of a CII invoice (``rsm:CrossIndustryInvoice``), or of a fragment of one."""
    r = _Reader(CII_NS)
    header = r.one(root, "rsm:ExchangedDocument")
    transaction = r.one(root, "rsm:SupplyChainTradeTransaction")
    agreement = r.one(transaction, "ram:ApplicableHeaderTradeAgreement")
    settlement = r.one(transaction, "ram:ApplicableHeaderTradeSettlement")
    totals = r.one(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    allowances = [
        _cii_allowance_charge(r, node, "document") for node in r.all(settlement, "ram:SpecifiedTradeAllowanceCharge")
    ]
    allowances += [
        AllowanceCharge(
            charge=True,
            amount=r.decimal(node, "ram:AppliedAmount", "des frais de service logistique"),
            vat_category=r.text(node, "ram:AppliedTradeTax/ram:CategoryCode").upper(),
            vat_rate=r.decimal(node, "ram:AppliedTradeTax/ram:RateApplicablePercent", "le taux de frais logistiques"),
            reason=r.text(node, "ram:Description"),
            logistics=True,
        )
        for node in r.all(settlement, "ram:SpecifiedLogisticsServiceCharge")
    ]
    return Document(
        syntax="cii",
        specification=r.text(
            root, "rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID"
        ),
        number=r.text(header, "ram:ID"),
        type_code=r.text(header, "ram:TypeCode"),
        issue_date=r.date(header, "ram:IssueDateTime/udt:DateTimeString", "la date de facture (BT-2)"),
        currency=r.text(settlement, "ram:InvoiceCurrencyCode").upper(),
        tax_currency=r.text(settlement, "ram:TaxCurrencyCode").upper(),
        seller=_cii_party(r, r.one(agreement, "ram:SellerTradeParty")),
        buyer=_cii_party(r, r.one(agreement, "ram:BuyerTradeParty")),
        preceding=tuple(
            Reference(
                r.text(node, "ram:IssuerAssignedID"),
                r.date(node, "ram:FormattedIssueDateTime/qdt:DateTimeString", "la date de la facture corrigée"),
            )
            for node in r.all(settlement, "ram:InvoiceReferencedDocument")
            if r.text(node, "ram:IssuerAssignedID")
        ),
        payment_terms=tuple(
            PaymentTerm(
                due_date=r.date(node, "ram:DueDateDateTime/udt:DateTimeString", "l'échéance (BT-9)"),
                description=r.text(node, "ram:Description"),
                amount=r.decimal(node, "ram:PartialPaymentAmount", "le montant d'une échéance"),
            )
            for node in r.all(settlement, "ram:SpecifiedTradePaymentTerms")
        ),
        allowances_charges=tuple(allowances),
        lines=tuple(
            _cii_line(r, node, index)
            for index, node in enumerate(r.all(transaction, "ram:IncludedSupplyChainTradeLineItem"), start=1)
        ),
        vat=tuple(
            VatBreakdown(
                category=r.text(node, "ram:CategoryCode").upper(),
                rate=r.decimal(node, "ram:RateApplicablePercent", "le taux de TVA (BT-119)"),
                base=r.decimal(node, "ram:BasisAmount", "la base de TVA (BT-116)"),
                amount=r.decimal(node, "ram:CalculatedAmount", "le montant de TVA (BT-117)"),
                exemption_reason=r.text(node, "ram:ExemptionReason"),
                exemption_code=r.text(node, "ram:ExemptionReasonCode"),
            )
            for node in r.all(settlement, "ram:ApplicableTradeTax")
        ),
        line_total=r.decimal(totals, "ram:LineTotalAmount", "la somme des lignes (BT-106)"),
        allowance_total=r.decimal(totals, "ram:AllowanceTotalAmount", "le total des remises (BT-107)"),
        charge_total=r.decimal(totals, "ram:ChargeTotalAmount", "le total des frais (BT-108)"),
        tax_exclusive=r.decimal(totals, "ram:TaxBasisTotalAmount", "le total HT (BT-109)"),
        tax_totals=tuple(
            Amount(read_decimal(_text(node), "le total de TVA (BT-110)"), _text(node.get("currencyID")).upper())
            for node in r.all(totals, "ram:TaxTotalAmount")
            if _text(node)
        ),
        tax_inclusive=r.decimal(totals, "ram:GrandTotalAmount", "le total TTC (BT-112)"),
        prepaid=r.decimal(totals, "ram:TotalPrepaidAmount", "le montant déjà payé (BT-113)"),
        rounding=r.decimal(totals, "ram:RoundingAmount", "l'arrondi (BT-114)"),
        payable=r.decimal(totals, "ram:DuePayableAmount", "le montant à payer (BT-115)"),
    )


# --- UBL (CEN/TS 16931-3-2) ----------------------------------------------------------------------------------


def _ubl_party(r: _Reader, party) -> Party:
    if party is None:
        return Party()
    schemes = r.all(party, "cac:PartyTaxScheme")
    vat = [r.text(node, "cbc:CompanyID") for node in schemes if r.text(node, "cac:TaxScheme/cbc:ID").upper() == "VAT"]
    other = [r.text(node, "cbc:CompanyID") for node in schemes if r.text(node, "cac:TaxScheme/cbc:ID").upper() != "VAT"]
    return Party(
        name=r.text(party, "cac:PartyLegalEntity/cbc:RegistrationName"),
        trading_name=r.text(party, "cac:PartyName/cbc:Name"),
        identifiers=tuple(
            Identifier(_text(node), _text(node.get("schemeID")))
            for node in r.all(party, "cac:PartyIdentification/cbc:ID")
            if _text(node)
        ),
        legal_id=r.identifier(party, "cac:PartyLegalEntity/cbc:CompanyID"),
        vat_ids=tuple(value for value in vat if value),
        tax_registration=next((value for value in other if value), ""),
        country=r.text(party, "cac:PostalAddress/cac:Country/cbc:IdentificationCode"),
        electronic_address=r.identifier(party, "cbc:EndpointID"),
    )


def _ubl_allowance_charge(r: _Reader, node, where: str) -> AllowanceCharge:
    indicator = _indicator(r.text(node, "cbc:ChargeIndicator"))
    if indicator is None:
        raise ReadError(f"Indicateur remise/frais illisible ({where}) : « {r.text(node, 'cbc:ChargeIndicator')} ».")
    return AllowanceCharge(
        charge=indicator,
        amount=r.decimal(node, "cbc:Amount", f"le montant d'une remise ou de frais ({where})"),
        base=r.decimal(node, "cbc:BaseAmount", f"la base d'une remise ou de frais ({where})"),
        percent=r.decimal(node, "cbc:MultiplierFactorNumeric", f"le pourcentage d'une remise ou de frais ({where})"),
        vat_category=r.text(node, "cac:TaxCategory/cbc:ID").upper(),
        vat_rate=r.decimal(node, "cac:TaxCategory/cbc:Percent", f"le taux de TVA ({where})"),
        reason=r.text(node, "cbc:AllowanceChargeReason"),
        reason_code=r.text(node, "cbc:AllowanceChargeReasonCode"),
    )


def _ubl_line(r: _Reader, node, index: int) -> Line:
    where = f"ligne {index}"
    price = r.one(node, "cac:Price")
    price_allowance = r.one(price, "cac:AllowanceCharge[cbc:ChargeIndicator='false' or cbc:ChargeIndicator='0']")
    return Line(
        id=r.text(node, "cbc:ID"),
        name=r.text(node, "cac:Item/cbc:Name"),
        description=r.text(node, "cac:Item/cbc:Description"),
        quantity=r.decimal(node, "cbc:InvoicedQuantity|cbc:CreditedQuantity", f"la quantité ({where})"),
        net_price=r.decimal(price, "cbc:PriceAmount", f"le prix net ({where})"),
        base_quantity=r.decimal(price, "cbc:BaseQuantity", f"la quantité de base du prix ({where})"),
        gross_price=r.decimal(price_allowance, "cbc:BaseAmount", f"le prix brut ({where})"),
        price_discount=r.decimal(price_allowance, "cbc:Amount", f"la remise sur prix ({where})"),
        amount=r.decimal(node, "cbc:LineExtensionAmount", f"le montant net ({where})"),
        vat_category=r.text(node, "cac:Item/cac:ClassifiedTaxCategory/cbc:ID").upper(),
        vat_rate=r.decimal(node, "cac:Item/cac:ClassifiedTaxCategory/cbc:Percent", f"le taux ({where})"),
        allowances_charges=tuple(_ubl_allowance_charge(r, item, where) for item in r.all(node, "cac:AllowanceCharge")),
    )


def read_ubl(root) -> Document:
    """The terms of a UBL 2.1 ``Invoice`` or ``CreditNote``, or of a fragment of one."""
    r = _Reader(UBL_NS)
    credit_note = etree.QName(root).localname == "CreditNote"
    totals = r.one(root, "cac:LegalMonetaryTotal")
    tax_totals = r.all(root, "cac:TaxTotal")
    return Document(
        syntax="ubl",
        specification=r.text(root, "cbc:CustomizationID"),
        number=r.text(root, "cbc:ID"),
        type_code=r.text(root, "cbc:CreditNoteTypeCode" if credit_note else "cbc:InvoiceTypeCode"),
        issue_date=r.date(root, "cbc:IssueDate", "la date de facture (BT-2)"),
        due_date=r.date(
            root, "cac:PaymentMeans/cbc:PaymentDueDate" if credit_note else "cbc:DueDate", "l'échéance (BT-9)"
        ),
        currency=r.text(root, "cbc:DocumentCurrencyCode").upper(),
        tax_currency=r.text(root, "cbc:TaxCurrencyCode").upper(),
        seller=_ubl_party(r, r.one(root, "cac:AccountingSupplierParty/cac:Party")),
        buyer=_ubl_party(r, r.one(root, "cac:AccountingCustomerParty/cac:Party")),
        preceding=tuple(
            Reference(r.text(node, "cbc:ID"), r.date(node, "cbc:IssueDate", "la date de la facture corrigée"))
            for node in r.all(root, "cac:BillingReference/cac:InvoiceDocumentReference")
            if r.text(node, "cbc:ID")
        ),
        payment_terms=tuple(
            PaymentTerm(
                due_date=r.date(node, "cbc:PaymentDueDate", "l'échéance (BT-9)"),
                description=r.text(node, "cbc:Note"),
                amount=r.decimal(node, "cbc:Amount", "le montant d'une échéance"),
            )
            for node in r.all(root, "cac:PaymentTerms")
        ),
        allowances_charges=tuple(
            _ubl_allowance_charge(r, node, "document") for node in r.all(root, "cac:AllowanceCharge")
        ),
        lines=tuple(
            _ubl_line(r, node, index)
            for index, node in enumerate(r.all(root, "cac:InvoiceLine|cac:CreditNoteLine"), start=1)
        ),
        vat=tuple(
            VatBreakdown(
                category=r.text(node, "cac:TaxCategory/cbc:ID").upper(),
                rate=r.decimal(node, "cac:TaxCategory/cbc:Percent", "le taux de TVA (BT-119)"),
                base=r.decimal(node, "cbc:TaxableAmount", "la base de TVA (BT-116)"),
                amount=r.decimal(node, "cbc:TaxAmount", "le montant de TVA (BT-117)"),
                exemption_reason=r.text(node, "cac:TaxCategory/cbc:TaxExemptionReason"),
                exemption_code=r.text(node, "cac:TaxCategory/cbc:TaxExemptionReasonCode"),
            )
            for total in tax_totals
            for node in r.all(total, "cac:TaxSubtotal")
        ),
        line_total=r.decimal(totals, "cbc:LineExtensionAmount", "la somme des lignes (BT-106)"),
        allowance_total=r.decimal(totals, "cbc:AllowanceTotalAmount", "le total des remises (BT-107)"),
        charge_total=r.decimal(totals, "cbc:ChargeTotalAmount", "le total des frais (BT-108)"),
        tax_exclusive=r.decimal(totals, "cbc:TaxExclusiveAmount", "le total HT (BT-109)"),
        tax_totals=tuple(
            Amount(read_decimal(_text(node), "le total de TVA (BT-110)"), _text(node.get("currencyID")).upper())
            for total in tax_totals
            for node in r.all(total, "cbc:TaxAmount")
            if _text(node)
        ),
        tax_inclusive=r.decimal(totals, "cbc:TaxInclusiveAmount", "le total TTC (BT-112)"),
        prepaid=r.decimal(totals, "cbc:PrepaidAmount", "le montant déjà payé (BT-113)"),
        rounding=r.decimal(totals, "cbc:PayableRoundingAmount", "l'arrondi (BT-114)"),
        payable=r.decimal(totals, "cbc:PayableAmount", "le montant à payer (BT-115)"),
    )


# --- the standard's calculation rules -----------------------------------------------------------------------


@dataclass(frozen=True)
class Breach:
    """One rule of EN 16931 (or of Peppol BIS for the line arithmetic) that the document breaks."""

    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.rule} : {self.message}"


def french_amount(value: Decimal | None) -> str:
    return "—" if value is None else f"{value:f}".replace(".", ",")


def amount_sum(values: Iterable[Decimal | None]) -> Decimal:
    return sum((value for value in values if value is not None), Decimal(0))


def _zero(value: Decimal | None) -> Decimal:
    return Decimal(0) if value is None else value


def _document_allowances(doc: Document, *, charge: bool) -> list[AllowanceCharge]:
    return [item for item in doc.allowances_charges if item.charge is charge]


def _rule_totals(doc: Document) -> list[Breach]:
    breaches = []
    lines = doc.counted_lines
    if doc.line_total is not None and lines:
        expected = round2(amount_sum(line.amount for line in lines))
        if doc.line_total != expected:
            breaches.append(
                Breach(
                    "BR-CO-10",
                    f"la somme des lignes (BT-106 = {french_amount(doc.line_total)}) n'est pas celle des montants"
                    f" nets des lignes ({french_amount(expected)}).",
                )
            )
    for rule, charge, total, term in (
        ("BR-CO-11", False, doc.allowance_total, "des remises (BT-107)"),
        ("BR-CO-12", True, doc.charge_total, "des frais (BT-108)"),
    ):
        items = _document_allowances(doc, charge=charge)
        if not items and total is None:
            continue
        plain = round2(amount_sum(i.amount for i in items if not i.logistics))
        logistics = [i for i in items if i.logistics]
        expected = plain + round2(amount_sum(i.amount for i in logistics))
        # EXTENDED adds its logistics charges to BT-108, a cent of tolerance per item.
        tolerance = CENT * len(items) if logistics else Decimal(0)
        if abs(_zero(total) - expected) > tolerance:
            breaches.append(
                Breach(
                    rule,
                    f"le total {term} ({french_amount(total)}) n'est pas la somme de ses éléments"
                    f" ({french_amount(expected)}).",
                )
            )
    if doc.tax_exclusive is not None and doc.line_total is not None:
        expected = round2(doc.line_total - _zero(doc.allowance_total) + _zero(doc.charge_total))
        if doc.tax_exclusive != expected:
            breaches.append(
                Breach(
                    "BR-CO-13",
                    f"le total HT (BT-109 = {french_amount(doc.tax_exclusive)}) n'est pas la somme des lignes moins"
                    f" les remises plus les frais ({french_amount(expected)}).",
                )
            )
    in_currency = [t for t in doc.tax_totals if t.currency in ("", doc.currency)]
    if len(in_currency) == 1 and doc.vat:
        expected = round2(amount_sum(vat.amount for vat in doc.vat))
        if in_currency[0].value != expected:
            breaches.append(
                Breach(
                    "BR-CO-14",
                    f"le total de TVA (BT-110 = {french_amount(in_currency[0].value)}) n'est pas la somme de la TVA"
                    f" par taux ({french_amount(expected)}).",
                )
            )
    if doc.tax_inclusive is not None and doc.tax_exclusive is not None:
        with_vat = len(in_currency) == 1 and doc.tax_inclusive == round2(doc.tax_exclusive + in_currency[0].value)
        if not with_vat and doc.tax_inclusive != doc.tax_exclusive:
            if len(in_currency) != 1:
                detail = (
                    f"le total de TVA dans la devise de la facture ({doc.currency or '?'}) doit figurer une fois,"
                    f" il figure {len(in_currency)} fois."
                )
            else:
                detail = (
                    f"le total TTC (BT-112 = {french_amount(doc.tax_inclusive)}) n'est pas le total HT plus la TVA"
                    f" ({french_amount(round2(doc.tax_exclusive + in_currency[0].value))})."
                )
            breaches.append(Breach("BR-CO-15", detail))
    if doc.payable is not None and doc.tax_inclusive is not None:
        expected = doc.tax_inclusive - _zero(doc.prepaid) + _zero(doc.rounding)
        if doc.payable != expected:
            breaches.append(
                Breach(
                    "BR-CO-16",
                    f"le montant à payer (BT-115 = {french_amount(doc.payable)}) n'est pas le TTC moins le déjà payé"
                    f" plus l'arrondi ({french_amount(expected)}).",
                )
            )
    return breaches


def _rule_vat(doc: Document) -> list[Breach]:
    breaches = []
    for vat in doc.vat:
        if vat.amount is None:
            continue
        if vat.rate is None or round2(vat.rate).quantize(Decimal(1), rounding=ROUND_HALF_UP) == 0:
            ok = vat.amount.quantize(Decimal(1), rounding=ROUND_HALF_UP) == 0
            expected = Decimal(0)
        else:
            if vat.base is None:
                continue
            expected = round2(abs(vat.base) * vat.rate / HUNDRED)
            # CEN's own rule allows one unit of currency either way (its test files say so).
            ok = abs(abs(vat.amount) - expected) <= 1
        if not ok:
            breaches.append(
                Breach(
                    "BR-CO-17",
                    f"la TVA au taux de {french_amount(vat.rate)} % ({french_amount(vat.amount)}) n'est pas la base"
                    f" ({french_amount(vat.base)}) multipliée par le taux ({french_amount(expected)}).",
                )
            )
    return breaches


# Per category: whether BT-116 must equal its lines, charges and allowances exactly (per rate) or within one unit
# of currency, as CEN's rules BR-x-08 write it; and whether its VAT must be zero (BR-x-09, BR-O-09…).
_CATEGORY_RULES = {
    "S": ("BR-S-08", Decimal(0), True, None),
    "Z": ("BR-Z-08", Decimal(1), False, "BR-Z-09"),
    "E": ("BR-E-08", Decimal(1), False, "BR-E-09"),
    "AE": ("BR-AE-08", Decimal(1), False, "BR-AE-09"),
    "K": ("BR-IC-08", Decimal(1), False, "BR-IC-09"),
    "G": ("BR-G-08", Decimal(1), False, "BR-G-09"),
    "O": ("BR-O-08", Decimal(0), False, "BR-O-09"),
    "L": ("BR-IG-08", Decimal(1), True, None),
    "M": ("BR-IP-08", Decimal(1), True, None),
}


def _rule_categories(doc: Document) -> list[Breach]:
    breaches = []
    lines = doc.counted_lines
    if not lines:
        return breaches
    for vat in doc.vat:
        rules = _CATEGORY_RULES.get(vat.category)
        if rules is None or vat.base is None:
            continue
        rule, tolerance, per_rate, zero_rule = rules

        def matches(category: str, rate: Decimal | None, vat=vat, per_rate=per_rate) -> bool:
            if category != vat.category:
                return False
            return not per_rate or _zero(rate) == _zero(vat.rate)

        charges = [i for i in doc.allowances_charges if matches(i.vat_category, i.vat_rate)]
        expected = (
            round2(amount_sum(line.amount for line in lines if matches(line.vat_category, line.vat_rate)))
            + round2(amount_sum(i.amount for i in charges if i.charge))
            - round2(amount_sum(i.amount for i in charges if not i.charge))
        )
        if abs(vat.base - expected) > tolerance:
            breaches.append(
                Breach(
                    rule,
                    f"la base de TVA de la catégorie {vat.category} (BT-116 = {french_amount(vat.base)}) n'est pas la"
                    f" somme de ses lignes, frais et remises ({french_amount(expected)}).",
                )
            )
        if zero_rule and vat.amount is not None and vat.amount != 0:
            breaches.append(
                Breach(zero_rule, f"la catégorie {vat.category} ne porte pas de TVA ({french_amount(vat.amount)}).")
            )
    return breaches


LINE_TOLERANCE = Decimal("0.02")


def _rule_lines(doc: Document) -> list[Breach]:
    """Quantity × net price / base quantity + line charges − line allowances = line net amount, within two cents
    (PEPPOL-EN16931-R120, the rule every EN 16931 validator of the Peppol network applies)."""
    breaches = []
    for index, line in enumerate(doc.lines, start=1):
        if not line.counted or None in (line.quantity, line.net_price, line.amount):
            continue
        base_quantity = line.base_quantity or Decimal(1)
        charges = amount_sum(i.amount for i in line.allowances_charges if i.charge)
        allowances = amount_sum(i.amount for i in line.allowances_charges if not i.charge)
        expected = line.quantity * line.net_price / base_quantity + charges - allowances
        if abs(line.amount - expected) > LINE_TOLERANCE:
            breaches.append(
                Breach(
                    "PEPPOL-EN16931-R120",
                    f"ligne {line.id or index} : quantité × prix net − remises + frais ="
                    f" {french_amount(round2(expected))}, la ligne dit {french_amount(line.amount)}.",
                )
            )
    return breaches


RULES: tuple[Callable[[Document], list[Breach]], ...] = (_rule_totals, _rule_vat, _rule_categories, _rule_lines)


def check(doc: Document) -> list[Breach]:
    """Every calculation rule of EN 16931 the document breaks (an empty list: it agrees with itself)."""
    return [breach for rule in RULES for breach in rule(doc)]
