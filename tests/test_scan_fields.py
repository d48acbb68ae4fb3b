"""The fields of a paper invoice read from its text (``invoices.scan_fields``): French formats and the traps of real
invoices, on pages written here as text (``page_from_text`` lays them out as the OCR would: columns by spaces)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from invoices.scan_fields import HIGH, MEDIUM, amounts_in, dates_in, invoice_number_in, read_fields
from invoices.scan_text import Box, Word, page_from_text, page_from_words

# Valid identifiers (keys checked by python-stdnum): the seller, and the buyer (JNO).
SELLER_SIREN = "415238062"
SELLER_VAT = "FR40415238062"
SELLER_SIRET = "41523806200129"
SELLER_IBAN = "FR7630004000031234567890143"
BUYER_SIREN = "036981736"
BUYER_VAT = "FR15036981736"
BUYER_SIRET = "03698173600121"
NNBSP = "\u202f"

CLASSIC = f"""
PAPETERIE LEMOINE SARL                                      FACTURE
12 rue des Écoles                                           N° de facture : FA-2026-0412
69002 Lyon                                                  Date de livraison : 28/10/2026
Tél. 04 78 12 34 56                                         Date de facture : 02/11/2026
                                                            Échéance : 2 décembre 2026

                                                            Facturé à :
                                                            Société JNO
                                                            10 avenue de l'Europe
                                                            SIRET : 036 981 736 00121
                                                            N° TVA : {BUYER_VAT}

Désignation                          Qté        P.U. HT        TVA        Montant HT
Ramettes de papier A4 80 g            100         4,35 €       20 %         435,00 €
Cartouches d'encre noire               10        38,90 €       20 %         389,00 €
Livres de comptabilité                 10        47,60 €      5,5 %         476,00 €

                                                  Total HT avant remise     1{NNBSP}300,00 €
                                                  Remise 10 %                 -130,00 €
                                                  Total HT                  1{NNBSP}170,00 €
                                                  TVA 20 %                    148,32 €
                                                  TVA 5,5 %                    23,56 €
                                                  Total TTC                 1{NNBSP}341,88 €

Pénalités de retard : trois fois le taux d'intérêt légal.
Papeterie Lemoine SARL au capital de 10 000 € – SIREN 415 238 062 – RCS Lyon – TVA intracommunautaire {SELLER_VAT}
IBAN : FR76 3000 4000 0312 3456 7890 143 – BIC BNPAFRPPXXX
"""


@pytest.fixture(scope="module")
def classic():
    return read_fields([page_from_text(CLASSIC)])


# --- values --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 234,56", "1234.56"),
        ("1.234,56 EUR", "1234.56"),
        ("1234.56", "1234.56"),
        ("1,234.56", "1234.56"),
        ("€ 1 234,56", "1234.56"),
        ("1 234,56 €", "1234.56"),
        (f"12{NNBSP}345,60", "12345.60"),
        ("1\u00a0234,56", "1234.56"),
        ("-130,00 €", "-130.00"),
        ("40 €", "40.00"),
        ("1 2O4,5O", "1204.50"),
    ],
)
def test_it_reads_amounts_in_every_french_form(text, expected):
    assert [str(value) for value, _span in amounts_in(text)] == [expected]


def test_a_percentage_is_not_an_amount():
    assert [str(value) for value, _span in amounts_in("TVA 20,00 % 48,00")] == ["48.00"]


@pytest.mark.parametrize(
    "text",
    ["02/11/2026", "2/11/26", "02.11.26", "02-11-2026", "2026-11-02", "2 novembre 2026", "2 nov. 2026",
     "le 2 Novembre 2026", "November 2, 2026", "O2/11/2O26"],
)  # fmt: skip
def test_it_reads_dates_in_every_french_form(text):
    assert [value for value, _span in dates_in(text)] == [dt.date(2026, 11, 2)]


def test_it_reads_the_first_of_the_month_and_refuses_impossible_dates():
    assert [value for value, _span in dates_in("1er décembre 2026")] == [dt.date(2026, 12, 1)]
    assert dates_in("31/02/2026") == []


def test_an_invoice_number_is_a_token_with_a_digit_never_a_date_or_an_amount():
    assert invoice_number_in(": FA-2026-0412 du 02/11/2026")[0] == "FA-2026-0412"
    assert invoice_number_in("du 02/11/2026") is None
    assert invoice_number_in(" 150,00 EUR") is None
    # OCR look-alikes inside the digits of a number.
    assert invoice_number_in("FA-2026-O5O1")[0] == "FA-2026-0501"
    assert invoice_number_in("INVO489-26")[0] == "INV0489-26"


# --- a classic French invoice and its traps -------------------------------------------------------------------


def test_it_reads_the_number_after_its_label(classic):
    assert classic.number.value == "FA-2026-0412"
    assert classic.number.source.how == "label"
    assert classic.number.confidence >= HIGH


def test_the_invoice_date_is_not_the_delivery_date(classic):
    assert classic.issue_date.value == dt.date(2026, 11, 2)
    assert "Date de facture" in classic.issue_date.source.text


def test_the_due_date_is_read_in_words_and_after_the_invoice_date(classic):
    assert classic.due_date.value == dt.date(2026, 12, 2)
    assert classic.due_date.confidence >= HIGH


def test_the_total_before_discount_is_not_the_total_ht(classic):
    assert classic.total_ht.value == Decimal("1170.00")


def test_totals_that_add_up_are_sure(classic):
    assert (classic.total_tva.value, classic.total_ttc.value) == (Decimal("171.88"), Decimal("1341.88"))
    assert classic.totals_agree is True
    assert min(classic.total_ht.confidence, classic.total_ttc.confidence) >= HIGH
    assert classic.flags == ()


def test_it_reads_the_vat_per_rate(classic):
    assert [(item.rate, item.amount) for item in classic.vat] == [
        (Decimal("20"), Decimal("148.32")),
        (Decimal("5.5"), Decimal("23.56")),
    ]


def test_the_seller_identifiers_come_from_the_footer_not_the_buyer_block(classic):
    supplier = classic.supplier
    assert (supplier.siren.value, supplier.vat.value, supplier.iban.value) == (SELLER_SIREN, SELLER_VAT, SELLER_IBAN)
    assert supplier.siren.confidence >= HIGH
    assert BUYER_SIREN not in {item.value[:9] for item in supplier.candidates}
    assert supplier.names[0].value == "PAPETERIE LEMOINE SARL"


def test_the_buyer_siret_and_vat_number_are_the_buyers(classic):
    assert classic.buyer.siret.value == BUYER_SIRET
    assert classic.buyer.vat.value == BUYER_VAT
    assert classic.buyer.siren.value == BUYER_SIREN
    assert classic.buyer.names[0].value == "Société JNO"


# --- totals that do not add up --------------------------------------------------------------------------------


def test_totals_that_do_not_add_up_are_flagged_never_trusted():
    reading = read_fields(
        [
            page_from_text(
                "FACTURE N° 2026-77\nDate : 03/11/2026\n\nTotal HT   100,00\nTVA 20 %   20,00\nTotal TTC   125,00\n"
            )
        ]
    )
    assert reading.totals_agree is False
    assert any("ne concordent pas" in flag for flag in reading.flags)
    assert max(reading.total_ht.confidence, reading.total_tva.confidence, reading.total_ttc.confidence) < MEDIUM


def test_the_misread_total_is_the_one_the_vat_rate_does_not_explain():
    """OCR read « 1 872,06 » for « 1 872,00 »: HT × 20 % is the TVA read, so the TTC is the wrong one."""
    reading = read_fields(
        [page_from_text("Facture n° 77\n\nTotal HT : 1 560,00 €\nTVA (20%) : 312,00 €\nTotal TTC : 1 872,06 €\n")]
    )
    assert (reading.total_ht.value, reading.total_tva.value) == (Decimal("1560.00"), Decimal("312.00"))
    assert reading.total_ttc.value == Decimal("1872.00")
    assert reading.total_ttc.source.how == "arithmetic"
    assert reading.totals_agree is False
    assert reading.flags == (
        "Les totaux ne concordent pas : HT 1\u202f560,00 + TVA 312,00 ≠ TTC 1\u202f872,06. À vérifier.",
    )
    assert max(reading.total_ht.confidence, reading.total_tva.confidence, reading.total_ttc.confidence) < MEDIUM


def test_a_missing_total_is_computed_and_said_so():
    reading = read_fields([page_from_text("Facture n° 12-A\n\nMontant HT : 200,00 €\nNet à payer : 240,00 €\n")])
    assert reading.total_tva.value == Decimal("40.00")
    assert reading.total_tva.source.how == "arithmetic"
    assert reading.total_tva.confidence < HIGH


def test_a_due_date_before_the_invoice_date_is_flagged():
    reading = read_fields([page_from_text("Facture n° 5001\nDate de facture : 10/11/2026\nÉchéance : 10/10/2026\n")])
    assert any("antérieure" in flag for flag in reading.flags)
    assert reading.due_date.confidence < MEDIUM


# --- layouts ----------------------------------------------------------------------------------------------------

TABLES = """
TRANSPORTS GARNIER                                                 FACTURE

N° de facture     Date de facture     Date d'échéance     Devise
2026/0042         03.11.26            03.12.26            EUR

Code    Taux    Base HT     Montant TVA
T1      20%     640.00      128.00

Total HT          Total TVA          Total TTC
640.00            128.00             768.00
"""


def test_values_under_their_labels_in_tables():
    reading = read_fields([page_from_text(TABLES)])
    assert reading.number.value == "2026/0042"
    assert (reading.issue_date.value, reading.due_date.value) == (dt.date(2026, 11, 3), dt.date(2026, 12, 3))
    assert (reading.total_ht.value, reading.total_tva.value, reading.total_ttc.value) == (
        Decimal("640.00"),
        Decimal("128.00"),
        Decimal("768.00"),
    )
    assert [(item.rate, item.base, item.amount) for item in reading.vat] == [
        (Decimal("20"), Decimal("640.00"), Decimal("128.00"))
    ]


def test_one_line_totals_and_a_title_number():
    reading = read_fields(
        [
            page_from_text(
                "FACTURE FA-2026-0501 du 02/11/2026\n"
                "Fournitures Petit SAS - SIREN 942904814 - TVA FR66942904814\n"
                "Client : JNO\n\n"
                "Ramettes de papier : 250.00 EUR HT, TVA 20.00 %\n\n"
                "Total HT 250.00 - TVA 50.00 - TTC 300.00 EUR\n"
            )
        ]
    )
    assert reading.number.value == "FA-2026-0501"
    assert reading.issue_date.value == dt.date(2026, 11, 2)
    assert (reading.total_ht.value, reading.total_tva.value, reading.total_ttc.value) == (
        Decimal("250.00"),
        Decimal("50.00"),
        Decimal("300.00"),
    )
    assert reading.supplier.siren.value == "942904814"


def test_an_associated_invoice_is_not_this_invoice():
    reading = read_fields(
        [
            page_from_text(
                "AVOIR N° : AV-0099\nDate : 31/01/2026\n"
                "N° DE FACTURE ASSOCIÉE : F20260003\nDATE DE FACTURE ASSOCIÉE : 01/01/2026\n"
            )
        ]
    )
    assert reading.number.value == "AV-0099"
    assert reading.issue_date.value == dt.date(2026, 1, 31)


def test_two_columns_emitter_and_client_each_with_their_identifiers():
    text = f"""
Émetteur                                   Client
Papeterie Lemoine SARL                     Société JNO
12 rue des Écoles                          10 avenue de l'Europe
SIRET : {SELLER_SIRET}                     SIREN : {BUYER_SIREN}
TVA intracom. : {SELLER_VAT}               TVA intracom. : {BUYER_VAT}

Facture n° F000150
"""
    reading = read_fields([page_from_text(text)])
    assert reading.supplier.siret.value == SELLER_SIRET
    assert reading.supplier.vat.value == SELLER_VAT
    assert reading.buyer.vat.value == BUYER_VAT
    assert {item.value for item in reading.supplier.candidates}.isdisjoint({BUYER_SIREN, BUYER_VAT})


def test_a_third_partys_identifiers_and_wrong_keys_are_not_the_sellers():
    text = f"""
Papeterie Lemoine SARL
SIREN : 123 456 789
N° TVA : FR32 123 456 789

Bénéficiaire
NOM : AFFACTURAGE NORD
SIREN : 303656847

Mentions : SIREN {SELLER_SIREN}
"""
    reading = read_fields([page_from_text(text)])
    # 123 456 789 fails its key; the factoring company is a third party.
    assert reading.supplier.siren.value == SELLER_SIREN
    assert "303656847" not in {item.value for item in reading.supplier.candidates}


def test_a_buyer_vat_number_said_inline_is_the_buyers():
    reading = read_fields(
        [page_from_text(f"Papeterie Lemoine SARL   TVA {SELLER_VAT}\n\nVotre n° TVA : {BUYER_VAT}\n")]
    )
    assert reading.supplier.vat.value == SELLER_VAT
    assert reading.buyer.vat.value == BUYER_VAT


def test_a_siret_label_at_the_end_of_the_row_above():
    reading = read_fields([page_from_text(f"Cabinet Fontaine · 27 bd Haussmann, Paris · SIRET\n{SELLER_SIRET}\n")])
    assert reading.supplier.siret.value == SELLER_SIRET
    assert reading.supplier.siret.source.how == "label"


def test_the_ocr_confidence_of_the_words_lowers_the_fields_confidence():
    def word(text, left, top, confidence):
        return Word(text, Box(left, top, left + 10 * len(text), top + 16), confidence)

    def page(confidence):
        words = [
            (0, word("Total", 0, 0, 0.95)),
            (0, word("HT", 60, 0, 0.95)),
            (0, word("100,00", 300, 0, confidence)),
            (1, word("Total", 0, 20, 0.95)),
            (1, word("TTC", 60, 20, 0.95)),
            (1, word("120,00", 300, 20, confidence)),
        ]
        return page_from_words(1, words)

    sure, unsure = read_fields([page(0.96)]), read_fields([page(0.40)])
    assert sure.total_ht.value == unsure.total_ht.value == Decimal("100.00")
    assert unsure.total_ht.confidence < sure.total_ht.confidence


def test_a_page_that_could_not_be_read_is_left_out():
    from invoices.scan_text import Page

    reading = read_fields(
        [Page(1, error="Page 1 non lue : délai de lecture dépassé (60 s)."), page_from_text(TABLES, 2)]
    )
    assert reading.number.value == "2026/0042"
    assert reading.number.source.page == 2


def test_nothing_to_read_gives_nothing():
    reading = read_fields([])
    assert reading.number is None and reading.total_ttc is None and reading.supplier.candidates == ()
