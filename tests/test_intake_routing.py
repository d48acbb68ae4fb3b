"""The buyer of an e-invoice decides its company; the same invoice is imported once whatever files bring it; the
seller is recognised only by what truly identifies it (issue 14 §3, §4, §5)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from companies.models import Company, Supplier
from invoices.intake import ERRORS_DIR, PROCESSED_DIR, Outcome, french_vat_number, intake_company
from invoices.models import IntakeFile, Invoice, InvoiceEvent
from invoices.samples.build_samples import cii_xml, facturx_pdf, seller, ubl_xml
from tests.support.intake import an_invoice, drop, left_in, outcomes, supplier_party


def buyer_party(company: Company, *, siren: bool = True, vat: bool = False) -> dict:
    party = {"name": company.name, "country_code": "FR"}
    if siren:
        party |= {"legal_identifier": company.siren, "legal_identifier_schemeid": "0002"}
    if vat:
        party["vat_identifier"] = french_vat_number(company.siren)
    return party


# --- routing ------------------------------------------------------------------------------------------------


def test_an_invoice_addressed_to_another_company_of_the_group_goes_to_it(jno_ready, multi_ready):
    assert multi_ready.siren and multi_ready.siren != jno_ready.siren
    # MULTI's supplier F0001, addressed to MULTI by its SIREN, dropped in JNO's folder.
    data = an_invoice(multi_ready, number="FA-MULTI", buyer=buyer_party(multi_ready))
    drop(jno_ready, "pour-multi.xml", cii_xml(data))

    report = intake_company(company=jno_ready)

    invoice = Invoice.objects.get(number="FA-MULTI")
    assert (invoice.company, invoice.supplier.code) == (multi_ready, "F0001")
    record = IntakeFile.objects.get()
    assert (record.company, record.routed_to, record.outcome, record.invoice) == (
        jno_ready, multi_ready, Outcome.CREATED, invoice,
    )  # fmt: skip
    routed = f"Adressée à la société MULTI (MULTI, SIREN {multi_ready.siren} (MULTI)) : facture créée dans MULTI."
    assert record.reason.splitlines()[0] == routed == report.files[0].reason.splitlines()[0]
    assert routed in InvoiceEvent.objects.get(invoice=invoice).message
    # The file stays where it landed; the invoice says where that is.
    assert record.path == invoice.source_file == f"{jno_ready.scan_directory}/{PROCESSED_DIR}/pour-multi.xml"
    assert not Invoice.objects.filter(company=jno_ready).exists()


def test_the_buyer_is_found_by_its_french_vat_number_too(jno_ready, multi_ready):
    data = an_invoice(multi_ready, buyer=buyer_party(multi_ready, siren=False, vat=True))
    drop(jno_ready, "pour-multi.xml", ubl_xml(data))
    intake_company(company=jno_ready)
    assert Invoice.objects.get().company == multi_ready


def test_an_invoice_addressed_to_the_folders_company_stays_there(jno_ready, multi_ready):
    drop(jno_ready, "pour-jno.pdf", facturx_pdf(an_invoice(jno_ready, buyer=buyer_party(jno_ready, vat=True))))
    intake_company(company=jno_ready)
    assert Invoice.objects.get().company == jno_ready
    assert IntakeFile.objects.get().routed_to is None


def test_an_invoice_addressed_to_nobody_of_the_group_is_refused_naming_its_buyer(jno_ready, multi_ready):
    stranger = {"name": "Boulangerie Dupain", "country_code": "FR", "legal_identifier": "732829320",
                "legal_identifier_schemeid": "0002"}  # fmt: skip
    drop(jno_ready, "ailleurs.xml", cii_xml(an_invoice(jno_ready, buyer=stranger)))
    report = intake_company(company=jno_ready)
    assert outcomes(report) == {"ailleurs.xml": Outcome.REFUSED}
    assert report.files[0].reason == (
        "Adressée à SIREN 732829320 (Boulangerie Dupain), qui n'est aucune société du groupe : refusée. Vérifiez le"
        " SIREN des sociétés (Administration → Société, « Mettre à jour les sociétés ») ou renvoyez la facture à son"
        " destinataire."
    )
    assert not Invoice.objects.exists() and left_in(jno_ready)[ERRORS_DIR] == ["ailleurs.xml", "ailleurs.xml.txt"]


def test_a_buyer_without_siren_or_vat_leaves_the_invoice_in_the_folders_company(jno_ready, multi_ready):
    # Only a GLN: nothing SFD knows its companies by; the folder is the only sign of the addressee.
    gln = {
        "name": "MULTI",
        "country_code": "FR",
        "legal_identifier": "5790000436057",
        "legal_identifier_schemeid": "0088",
    }
    data = an_invoice(jno_ready, buyer=gln)
    drop(jno_ready, "sans-siren.xml", cii_xml(data))
    intake_company(company=jno_ready)
    assert Invoice.objects.get().company == jno_ready


def test_an_inactive_company_receives_nothing(jno_ready, multi_ready):
    Company.objects.filter(pk=multi_ready.pk).update(active=False)
    drop(jno_ready, "pour-multi.xml", cii_xml(an_invoice(multi_ready, buyer=buyer_party(multi_ready))))
    report = intake_company(company=jno_ready)
    assert outcomes(report) == {"pour-multi.xml": Outcome.REFUSED}
    assert "qui n'est aucune société du groupe" in report.files[0].reason


# --- twins --------------------------------------------------------------------------------------------------


def test_an_xml_and_its_factur_x_pdf_are_imported_once_even_with_an_unknown_supplier(jno_ready):
    unknown = seller("Transports Martin SARL", siren="612345678", vat="FR24612345678")
    data = an_invoice(jno_ready, seller=unknown)
    drop(jno_ready, "facture.xml", cii_xml(data))
    drop(jno_ready, "facture.pdf", facturx_pdf(data))
    drop(jno_ready, "scan-du-jour.xml", ubl_xml(data))
    report = intake_company(company=jno_ready)
    invoice = Invoice.objects.get()
    assert invoice.supplier is None
    assert outcomes(report) == {
        "facture.pdf": Outcome.CREATED, "facture.xml": Outcome.DUPLICATE, "scan-du-jour.xml": Outcome.DUPLICATE,
    }  # fmt: skip
    assert {item.reason for item in report.files if item.outcome == Outcome.DUPLICATE} == {
        f"Déjà reçue : facture N° FA-100 (/factures/{invoice.pk}/) — même facture (fournisseur, numéro, date et"
        " montant)."
    }
    assert set(IntakeFile.objects.filter(outcome=Outcome.DUPLICATE).values_list("invoice", flat=True)) == {invoice.pk}


def test_the_same_number_from_two_sellers_is_two_invoices(jno_ready):
    drop(jno_ready, "a.xml", cii_xml(an_invoice(jno_ready, code="F0001")))
    drop(jno_ready, "b.xml", cii_xml(an_invoice(jno_ready, code="F0002")))
    assert outcomes(intake_company(company=jno_ready)) == {"a.xml": Outcome.CREATED, "b.xml": Outcome.CREATED}


def test_twins_dropped_in_two_folders_for_the_same_company_are_imported_once(jno_ready, multi_ready):
    data = an_invoice(multi_ready, buyer=buyer_party(multi_ready))
    drop(jno_ready, "envoi-1.xml", cii_xml(data))
    drop(multi_ready, "envoi-2.pdf", facturx_pdf(data))
    intake_company(company=jno_ready)
    report = intake_company(company=multi_ready)
    assert outcomes(report) == {"envoi-2.pdf": Outcome.DUPLICATE}
    assert Invoice.objects.filter(company=multi_ready).count() == 1


# --- the seller ---------------------------------------------------------------------------------------------


def test_a_foreign_vat_number_never_gives_a_siren(jno_ready):
    # A German VAT number whose nine digits are a French supplier's SIREN: not that supplier.
    french = Supplier.objects.get(company=jno_ready, code="F0001")
    foreign = seller("Papierfabrik GmbH", vat=f"DE{french.siren}")
    drop(jno_ready, "allemand.xml", cii_xml(an_invoice(jno_ready, seller=foreign)))
    intake_company(company=jno_ready)
    invoice = Invoice.objects.get()
    assert invoice.supplier is None
    assert invoice.incomplete_reason.startswith(f"Fournisseur inconnu : TVA DE{french.siren} (Papierfabrik GmbH).")


def test_a_supplier_is_matched_by_its_vat_number_when_there_is_no_siren(jno_ready):
    Supplier.objects.filter(company=jno_ready, code="F0003").update(siren="", vat_number="NO999999999MVA")
    drop(jno_ready, "norvegien.xml", ubl_xml(an_invoice(jno_ready, seller=seller("Fjord AS", vat="NO999999999MVA"))))
    intake_company(company=jno_ready)
    assert Invoice.objects.get().supplier.code == "F0003"


def test_an_invalid_siren_is_no_siren(jno_ready):
    party = supplier_party(jno_ready, "F0001", vat=False) | {"legal_identifier": "123456789"}  # key does not check
    drop(jno_ready, "faux-siren.xml", cii_xml(an_invoice(jno_ready, seller=party)))
    intake_company(company=jno_ready)
    assert Invoice.objects.get().supplier is None


def test_a_credit_note_issued_while_its_invoice_is_in_sfd_is_linked_to_it(jno_ready):
    drop(jno_ready, "facture.xml", cii_xml(an_invoice(jno_ready)))
    intake_company(company=jno_ready)
    original = Invoice.objects.get()
    avoir = an_invoice(jno_ready, number="AV-7", type_code="381", issue_date=dt.date(2026, 11, 20))
    avoir["BG-3"] = [{"BT-25": "FA-100", "BT-26": dt.date(2026, 11, 2)}]
    drop(jno_ready, "avoir.xml", ubl_xml(avoir))
    intake_company(company=jno_ready)
    credit = Invoice.objects.get(number="AV-7")
    assert (credit.kind, credit.corrects, credit.corrected_number) == (Invoice.Kind.CREDIT_NOTE, original, "FA-100")
    assert list(original.credit_notes.all()) == [credit]


def test_line_amounts_with_more_decimals_are_kept_and_booked_to_the_total(jno_ready):
    data = an_invoice(
        jno_ready, lines=[("A", "33.3333", "20.00"), ("B", "33.3333", "20.00"), ("C", "33.3334", "20.00")]
    )
    data |= {"BT-106": "100.00", "BT-109": "100.00", "BT-110": "20.00", "BT-112": "120.00", "BT-115": "120.00"}
    data["BG-23"][0] |= {"BT-116": "100.00", "BT-117": "20.00"}
    drop(jno_ready, "decimales.xml", cii_xml(data))
    intake_company(company=jno_ready)
    invoice = Invoice.objects.get()
    assert list(invoice.lines.values_list("source_amount", "amount_ht")) == [
        (Decimal("33.3333"), Decimal("33.33")), (Decimal("33.3333"), Decimal("33.33")),
        (Decimal("33.3334"), Decimal("33.34")),
    ]  # fmt: skip
    assert invoice.status == Invoice.Status.TO_VALIDATE, invoice.incomplete_reason


def test_the_french_vat_number_of_a_siren_that_is_not_ascii_digits_has_no_key_and_no_crash():
    assert french_vat_number("732829320") == "FR44732829320"
    assert french_vat_number("12345678²") == "FR0012345678²"  # « ² » passes isdigit(), int() refuses it
