"""EN 16931 read as the standard means it: EXTENDED sub-lines, several payment terms, dates with a time zone, line
amounts with more than two decimals, VAT categories without VAT, the calculation rules and their tolerances, schema
errors in French, a profile XSD mismatch, and what is not an invoice."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal

import pytest
from lxml import etree

from companies.models import TaxCode
from invoices import en16931
from invoices.einvoice import EInvoiceError, french_schema_error, parse_einvoice
from invoices.en16931 import AllowanceCharge, Document, Line, VatBreakdown
from invoices.intake import tax_code_for
from invoices.samples.build_samples import cii_xml, ubl_xml
from tests.support.intake import einvoice_data

NS = en16931.CII_NS
EXTENDED = "urn:cen.eu:en16931:2017#conformant#urn:factur-x.eu:1p0:extended"


def refused(content: bytes) -> str:
    with pytest.raises(EInvoiceError) as error:
        parse_einvoice(content, "facture.xml")
    return str(error.value)


def edited(xml: bytes, edit) -> bytes:
    root = etree.fromstring(xml)
    edit(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def ram(name: str, text: str | None = None) -> etree._Element:
    element = etree.Element(f"{{{NS['ram']}}}{name}")
    element.text = text
    return element


# --- EXTENDED: sub-lines ------------------------------------------------------------------------------------


def with_sub_lines(root: etree._Element) -> None:
    """Line 1 (100.00) becomes a GROUP of two DETAIL lines (60 + 40), and an INFORMATION line (15) is added: the
    totals still say 100."""
    root.find("rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID", NS).text = EXTENDED
    transaction = root.find("rsm:SupplyChainTradeTransaction", NS)
    group = transaction.find("ram:IncludedSupplyChainTradeLineItem", NS)
    position = list(transaction).index(group)
    for offset, (line_id, status, amount) in enumerate(
        [("1.1", "DETAIL", "60.00"), ("1.2", "DETAIL", "40.00"), ("2", "INFORMATION", "15.00")], start=1
    ):
        line = copy.deepcopy(group)
        document = line.find("ram:AssociatedDocumentLineDocument", NS)
        document.find("ram:LineID", NS).text = line_id
        if status == "DETAIL":
            document.append(ram("ParentLineID", "1"))
        document.append(ram("LineStatusReasonCode", status))
        line.find("ram:SpecifiedTradeProduct/ram:Name", NS).text = f"Ligne {line_id}"
        for path in (
            "ram:SpecifiedLineTradeAgreement/ram:NetPriceProductTradePrice/ram:ChargeAmount",
            "ram:SpecifiedLineTradeSettlement/ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount",
        ):
            line.find(path, NS).text = amount
        transaction.insert(position + offset, line)
    group.find("ram:AssociatedDocumentLineDocument", NS).append(ram("LineStatusReasonCode", "GROUP"))


def test_extended_sub_lines_are_counted_once_and_information_lines_not_booked():
    invoice = parse_einvoice(edited(cii_xml(einvoice_data()), with_sub_lines))
    assert invoice.profile == "extended"
    assert [(line.label, line.amount_ht) for line in invoice.lines] == [
        ("Ligne 1.1", Decimal("60.00")),
        ("Ligne 1.2", Decimal("40.00")),
    ]
    assert (invoice.total_ht, invoice.total_ttc) == (Decimal("100.00"), Decimal("120.00"))


def test_logistics_service_charges_of_extended_are_charges():
    def add_logistics(root):
        with_sub_lines(root)
        settlement = root.find("rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement", NS)
        charge = ram("SpecifiedLogisticsServiceCharge")
        charge.append(ram("Description", "Transport"))
        charge.append(ram("AppliedAmount", "10.00"))
        tax = ram("AppliedTradeTax")
        for name, value in (("TypeCode", "VAT"), ("CategoryCode", "S"), ("RateApplicablePercent", "20.00")):
            tax.append(ram(name, value))
        charge.append(tax)
        # After the tax breakdown, before the payment terms, as the EXTENDED schema orders them.
        settlement.insert(list(settlement).index(settlement.find("ram:SpecifiedTradePaymentTerms", NS)), charge)
        settlement.find("ram:ApplicableTradeTax/ram:BasisAmount", NS).text = "110.00"
        settlement.find("ram:ApplicableTradeTax/ram:CalculatedAmount", NS).text = "22.00"
        totals = settlement.find("ram:SpecifiedTradeSettlementHeaderMonetarySummation", NS)
        totals.insert(1, ram("ChargeTotalAmount", "10.00"))
        for name, value in (
            ("TaxBasisTotalAmount", "110.00"), ("TaxTotalAmount", "22.00"), ("GrandTotalAmount", "132.00"),
            ("DuePayableAmount", "132.00"),
        ):  # fmt: skip
            totals.find(f"ram:{name}", NS).text = value

    invoice = parse_einvoice(edited(cii_xml(einvoice_data()), add_logistics))
    assert [(line.kind, line.label, line.amount_ht) for line in invoice.lines][-1] == (
        "charge", "Frais Transport", Decimal("10.00"),
    )  # fmt: skip
    assert invoice.total_ht == Decimal("110.00")


# --- fields -------------------------------------------------------------------------------------------------


def test_several_payment_terms_give_the_first_due_date_and_are_all_kept():
    def two_terms(root):
        settlement = root.find("rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement", NS)
        first = settlement.find("ram:SpecifiedTradePaymentTerms", NS)
        first.insert(0, ram("Description", "50 % à 60 jours"))
        later = copy.deepcopy(first)
        later.find("ram:Description", NS).text = "50 % à 30 jours"
        later.find("ram:DueDateDateTime/udt:DateTimeString", NS).text = "20261118"
        settlement.insert(list(settlement).index(first), later)

    invoice = parse_einvoice(edited(cii_xml(einvoice_data(due_date=dt.date(2026, 12, 31))), two_terms))
    assert invoice.due_date == dt.date(2026, 11, 18)
    assert [(term.due_date, term.description) for term in invoice.payment_terms] == [
        (dt.date(2026, 11, 18), "50 % à 30 jours"),
        (dt.date(2026, 12, 31), "50 % à 60 jours"),
    ]
    assert [term["due_date"] for term in invoice.facts()["payment_terms"]] == ["2026-11-18", "2026-12-31"]


@pytest.mark.parametrize("written", ["2026-11-02+01:00", "2026-11-02Z", "2026-11-02-05:00"])
def test_a_date_with_a_time_zone_is_the_day_written(written):
    xml = ubl_xml(einvoice_data()).replace(
        b"<cbc:IssueDate>2026-11-02</cbc:IssueDate>", f"<cbc:IssueDate>{written}</cbc:IssueDate>".encode()
    )
    assert written.encode() in xml
    assert parse_einvoice(xml).issue_date == dt.date(2026, 11, 2)


def test_line_amounts_with_more_than_two_decimals_are_kept_exactly():
    content = einvoice_data(lines=[("A", "33.3333", "20.00"), ("B", "33.3333", "20.00"), ("C", "33.3334", "20.00")])
    content |= {"BT-106": "100.00", "BT-109": "100.00", "BT-110": "20.00", "BT-112": "120.00", "BT-115": "120.00"}
    content["BG-23"][0] |= {"BT-116": "100.00", "BT-117": "20.00"}
    invoice = parse_einvoice(cii_xml(content))
    assert [line.amount_ht for line in invoice.lines] == [Decimal("33.3333"), Decimal("33.3333"), Decimal("33.3334")]


def test_vat_categories_without_vat_keep_their_category_and_a_rate_of_zero():
    content = einvoice_data(lines=[("Formation", "100.00", "0.00")])
    content["BG-25"][0]["BT-151"] = "E"
    content["BG-23"] = [{"BT-116": "100.00", "BT-117": "0.00", "BT-118": "E", "BT-119": "0.00", "BT-120": "Exonéré"}]
    content |= {"BT-110": "0.00", "BT-112": "100.00", "BT-115": "100.00"}
    invoice = parse_einvoice(ubl_xml(content))
    assert [(line.vat_category, line.vat_rate) for line in invoice.lines] == [("E", Decimal("0.00"))]
    assert [(vat.category, vat.rate, vat.amount, vat.exemption) for vat in invoice.vat] == [
        ("E", Decimal("0.00"), Decimal("0.00"), "Exonéré")
    ]


def _code(code: str, rate: str, category: str = "", collected: str = "") -> TaxCode:
    return TaxCode(code=code, rate=Decimal(rate), vat_category=category, collected_account=collected)


CODES = [
    _code("AI20", "20", "K", "445200"), _code("AL20", "20", "AE", "445710"), _code("EXO", "0", "E"),
    _code("HC", "0", "O"), _code("T10", "10"), _code("T20", "20", "S"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("category", "rate", "expected"),
    [
        ("S", "20", "T20"), ("S", "10", "T10"), ("", "10", "T10"), ("S", "8.5", None), ("AE", "0", "AL20"),
        ("K", "0", "AI20"), ("E", "0", "EXO"), ("O", "0", "HC"), ("Z", "0", "EXO"), ("G", "0", "EXO"),
        ("", None, None),
    ],
)  # fmt: skip
def test_a_line_finds_the_tax_code_of_its_category_and_rate(category, rate, expected):
    found = tax_code_for(category, Decimal(rate) if rate else None, CODES)
    assert (found.code if found else None) == expected


# --- the calculation rules, as CEN's own test files state them ------------------------------------------------


def _vat(amount: str) -> Document:
    return Document("cii", vat=(VatBreakdown("S", Decimal("19.00"), Decimal("-72.50"), Decimal(amount)),))


@pytest.mark.parametrize(("amount", "breaks"), [("-13.78", False), ("-12.78", False), ("-14.78", False),
                                                  ("-12.77", True), ("-14.79", True)])  # fmt: skip
def test_br_co_17_allows_one_unit_of_currency_either_way(amount, breaks):
    assert ("BR-CO-17" in [b.rule for b in en16931.check(_vat(amount))]) is breaks


def test_br_co_15_wants_the_vat_total_in_the_invoices_currency_once():
    base = {"currency": "DKK", "tax_exclusive": Decimal(4000), "tax_inclusive": Decimal(4675)}
    ok = Document(
        "cii",
        tax_currency="EUR",
        tax_totals=(en16931.Amount(Decimal(675), "DKK"), en16931.Amount(Decimal("628.62"), "EUR")),
        **base,
    )
    twice = Document(
        "cii", tax_totals=(en16931.Amount(Decimal(675), "DKK"), en16931.Amount(Decimal(679), "DKK")), **base
    )
    other = Document("cii", tax_totals=(en16931.Amount(Decimal(675), "EUR"),), **base)
    assert [b.rule for b in en16931.check(ok)] == []
    assert [b.rule for b in en16931.check(twice)] == ["BR-CO-15"]
    assert [b.rule for b in en16931.check(other)] == ["BR-CO-15"]


def test_category_bases_must_add_up():
    lines = (Line(amount=Decimal(100), vat_category="E", vat_rate=Decimal(0)),)
    charge = AllowanceCharge(charge=True, amount=Decimal(10), vat_category="E", vat_rate=Decimal(0))
    fine = Document("cii", lines=lines, allowances_charges=(charge,), charge_total=Decimal(10),
                    vat=(VatBreakdown("E", Decimal(0), Decimal(110), Decimal(0)),))  # fmt: skip
    wrong = Document("cii", lines=lines, vat=(VatBreakdown("E", Decimal(0), Decimal(120), Decimal(5)),))
    assert en16931.check(fine) == []
    assert [b.rule for b in en16931.check(wrong)] == ["BR-CO-17", "BR-E-08", "BR-E-09"]


def test_a_line_whose_quantity_and_price_do_not_give_its_amount_is_imported_to_check():
    content = einvoice_data()
    content["BG-25"][0] |= {"BT-129": "3", "BT-146": "30.00"}  # 3 × 30 = 90, the line says 100
    invoice = parse_einvoice(cii_xml(content))
    assert invoice.warnings == (
        "PEPPOL-EN16931-R120 : ligne 1 : quantité × prix net − remises + frais = 90,00, la ligne dit 100,00."
        " Vérifiez la ligne sur la facture, puis enregistrez-la.",
    )
    within = einvoice_data()
    within["BG-25"][0] |= {"BT-129": "3", "BT-146": "33.34"}  # 100.02: within the two cents the rule allows
    assert parse_einvoice(cii_xml(within)).warnings == ()


def test_amount_due_is_the_total_less_what_was_paid_plus_the_rounding():
    content = einvoice_data() | {"BT-113": "20.00", "BT-115": "100.00"}
    invoice = parse_einvoice(cii_xml(content))
    assert (invoice.prepaid, invoice.amount_due) == (Decimal("20.00"), Decimal("100.00"))
    assert "BR-CO-16" in refused(cii_xml(einvoice_data() | {"BT-113": "20.00", "BT-115": "120.00"}))


# --- schema and profile -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "french"),
    [
        (
            "Element '{urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100}"
            "InvoiceeTradeParty': This element is not expected. Expected is ( {urn:x}SellerTradeParty ).",
            "élément InvoiceeTradeParty inattendu, ligne 42",
        ),
        (
            "Element '{urn:x}ExchangedDocument': Missing child element(s). Expected is ( {urn:x}TypeCode ).",
            "élément ExchangedDocument incomplet : il manque TypeCode, ligne 42",
        ),
        (
            "Element '{urn:x}TaxBasisTotalAmount': 'douze' is not a valid value of the atomic type 'xs:decimal'.",
            "élément TaxBasisTotalAmount : valeur « douze » invalide (un nombre attendu), ligne 42",
        ),
        (
            "Element '{urn:x}TypeCode': [facet 'enumeration'] The value '999' is not an element of the set {'380'}.",
            "élément TypeCode : valeur « 999 » hors de la liste autorisée, ligne 42",
        ),
    ],
)
def test_schema_errors_are_said_in_french(message, french):
    assert french_schema_error(message, 42) == french


def test_a_file_valid_by_en16931_but_not_by_its_profile_xsd_is_accepted_with_a_note():
    def sub_line_in_an_en16931_profile(root):
        document = root.find(".//ram:AssociatedDocumentLineDocument", NS)
        document.append(ram("ParentLineID", "0"))  # EXTENDED's, unknown to the EN 16931 profile's XSD

    invoice = parse_einvoice(edited(cii_xml(einvoice_data()), sub_line_in_an_en16931_profile))
    assert invoice.notes == (
        f"Non conforme au schéma du profil Factur-X EN 16931 (élément ParentLineID inattendu, ligne {_line_of()}),"
        " mais conforme au schéma CII de la norme : acceptée selon les règles de l'EN 16931.",
    )


def _line_of() -> int:
    root = etree.fromstring(
        edited(cii_xml(einvoice_data()), lambda r: r.find(".//ram:AssociatedDocumentLineDocument", NS).append(ram("X")))
    )
    return root.find(".//ram:X", NS).sourceline


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (
            b'<rsm:SCRDMCCBDACIOMessageStructure xmlns:rsm="urn:un:unece:uncefact:data:standard:'
            b'SCRDMCCBDACIOMessageStructure:100"/>',
            "Document Order-X (commande) : ce n'est pas une facture.",
        ),
        (
            b'<rsm:CrossIndustryDocument xmlns:rsm="urn:ferd:CrossIndustryDocument:invoice:1p0"/>',
            "Facture ZUGFeRD 1.0 : ce format antérieur à la norme EN 16931",
        ),
        (b'<testSet xmlns="http://difi.no/xsd/vefa/validator/1.0"/>', "Jeu de tests de validation (testSet du CEN)"),
    ],
)
def test_what_is_not_an_invoice_is_refused_in_french(content, reason):
    assert refused(content).startswith(reason)


@pytest.mark.parametrize(
    ("type_code", "reason"),
    [("325", "Facture pro forma (type 325) : ce n'est pas une facture comptable"), ("220", "Document de type 220")],
)
def test_a_pro_forma_or_an_order_code_is_not_imported(type_code, reason):
    assert refused(cii_xml(einvoice_data(type_code=type_code))).startswith(reason)
