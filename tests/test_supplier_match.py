"""Which supplier of the referential a paper invoice comes from (``invoices.supplier_match``): by SIREN, SIRET or
VAT number first, then IBAN, then name — and never a wrong supplier with high confidence."""

from __future__ import annotations

from invoices.scan_fields import read_fields
from invoices.scan_text import page_from_text
from invoices.supplier_match import (
    HIGH,
    MEDIUM,
    Clue,
    KnownSupplier,
    clues_from_reading,
    name_similarity,
    supplier_match,
)

LEMOINE = KnownSupplier("F0001", "Papeterie Lemoine SARL", siren="415238062", vat="FR40415238062")
LEMOINE_NEIGHBOUR = KnownSupplier("F0002", "Papeterie Lemoinne", siren="528712342", vat="FR22528712342")
GARNIER = KnownSupplier(
    "F0003", "Transports Garnier et Fils SAS", siren="602345175", iban="FR7630004000031234567890143"
)
# A company of the group that also sells to the others: its identifiers appear as the buyer's on invoices.
JNO = KnownSupplier("G0001", "Société JNO", siren="036981736", vat="FR15036981736")
REFERENTIAL = [LEMOINE, LEMOINE_NEIGHBOUR, GARNIER, JNO]


def test_a_siren_read_surely_finds_its_supplier_with_high_confidence():
    match = supplier_match(clues=[Clue("siren", "415238062", 0.95)], suppliers=REFERENTIAL)
    assert (match.code, match.method) == ("F0001", "siren")
    assert match.confidence >= HIGH and match.sure


def test_a_vat_number_or_a_siret_finds_the_supplier_through_its_siren():
    assert supplier_match(clues=[Clue("vat", "FR40415238062", 0.9)], suppliers=REFERENTIAL).code == "F0001"
    assert supplier_match(clues=[Clue("siret", "41523806200129", 0.9)], suppliers=REFERENTIAL).code == "F0001"


def test_the_confidence_is_no_more_than_the_reading_of_the_identifier():
    match = supplier_match(clues=[Clue("siren", "415238062", 0.55)], suppliers=REFERENTIAL)
    assert match.code == "F0001"
    assert match.confidence == 0.55


def test_two_suppliers_with_the_same_siren_give_none_with_high_confidence():
    twin = KnownSupplier("F0009", "Papeterie Lemoine (Lyon)", siren="415238062")
    match = supplier_match(clues=[Clue("siren", "415238062", 0.99)], suppliers=[*REFERENTIAL, twin])
    assert match.confidence <= MEDIUM
    assert not match.sure
    assert set(match.alternatives) | {match.code} == {"F0001", "F0009"}


def test_a_siret_tells_two_establishments_apart():
    lyon = KnownSupplier("F0001", "Papeterie Lemoine Lyon", siret="41523806200129")
    paris = KnownSupplier("F0009", "Papeterie Lemoine Paris", siret="41523806200111")
    match = supplier_match(clues=[Clue("siret", "41523806200129", 0.95)], suppliers=[lyon, paris])
    assert match.code == "F0001"
    assert match.sure


def test_an_identifier_of_a_second_entity_of_the_page_is_only_a_hint():
    match = supplier_match(clues=[Clue("siren", "036981736", 0.95, rank=1)], suppliers=REFERENTIAL)
    assert match.code == "G0001"
    assert not match.sure


def test_an_iban_finds_its_supplier_below_a_legal_identifier():
    match = supplier_match(clues=[Clue("iban", "FR76 3000 4000 0312 3456 7890 143", 0.99)], suppliers=REFERENTIAL)
    assert (match.code, match.method) == ("F0003", "iban")
    assert HIGH <= match.confidence < 0.9


def test_an_iban_shared_by_two_suppliers_finds_none():
    factor = KnownSupplier("F0010", "Affacturage Nord", iban=GARNIER.iban)
    match = supplier_match(clues=[Clue("iban", GARNIER.iban, 0.99)], suppliers=[*REFERENTIAL, factor])
    assert match.code is None


def test_a_name_alone_is_at_most_medium():
    match = supplier_match(clues=[Clue("name", "TRANSPORTS GARNIER ET FILS", 0.9)], suppliers=REFERENTIAL)
    assert (match.code, match.method) == ("F0003", "name")
    assert MEDIUM <= match.confidence < HIGH


def test_two_close_names_give_none():
    match = supplier_match(clues=[Clue("name", "Papeterie Lemoine", 0.9)], suppliers=REFERENTIAL)
    assert match.code is None
    assert set(match.alternatives) == {"F0001", "F0002"}


def test_a_name_far_from_every_supplier_gives_none():
    assert supplier_match(clues=[Clue("name", "Boulangerie du Port", 0.9)], suppliers=REFERENTIAL).code is None
    assert supplier_match(clues=[], suppliers=REFERENTIAL).code is None


def test_names_are_compared_without_accents_case_or_legal_form():
    assert name_similarity("SOCIETE GENERALE D'ELECTRICITE S.A.S.", "Générale d'Électricité") == 1.0
    assert name_similarity("Dupont Transports", "Transports Dupont SARL") == 1.0


def test_the_buyer_of_an_invoice_is_never_taken_for_its_supplier():
    """JNO is in the referential (a company of the group that also sells); the invoice is addressed to it."""
    text = """
TRANSPORTS GARNIER ET FILS SAS                       FACTURE N° 2026-118
ZI des Gravières, 21000 Dijon                        Date : 09/11/2026

                                                     Facturé à :
                                                     Société JNO
                                                     SIREN : 036 981 736
                                                     N° TVA : FR15036981736

Total HT   640,00 €
TVA 20 %   128,00 €
Total TTC  768,00 €

Transports Garnier et Fils SAS – SIREN 602 345 175 – RCS Dijon
"""
    reading = read_fields([page_from_text(text)])
    match = supplier_match(clues=clues_from_reading(reading), suppliers=REFERENTIAL)
    assert match.code == "F0003"
    assert match.sure


def test_without_any_identifier_the_name_on_the_page_is_a_medium_hint():
    reading = read_fields([page_from_text("Transports Garnier et Fils SAS\nZI des Gravières\n\nFacture n° 77\n")])
    match = supplier_match(clues=clues_from_reading(reading), suppliers=REFERENTIAL)
    assert match.code == "F0003"
    assert not match.sure
