"""Build the sample invoices of the demo with the ``factur-x`` library: ``python -m invoices.samples.build_samples``.

The generated files are committed beside this script (one folder per company code) and copied into the scan
folders by the demo; nothing is ever downloaded. The sellers are suppliers of the Sage stub's demo referential
(``connectors/sage_frp1000/stub/demo.py``, ``suppliers_for(code)``), copied here rather than imported because
nothing outside the tests and the ``make run`` wiring may import the stub; ``tests/test_einvoice_parsing.py``
checks that they still match. The functions are also what the tests use to craft invoices of their own.
Rebuilding changes the bytes of the PDFs (the library stamps the time into them), not their content.
"""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal
from pathlib import Path

import facturx

from invoices.accounting import ZERO, cents

HERE = Path(__file__).resolve().parent
EN16931 = "urn:cen.eu:en16931:2017"


def seller(name: str, *, siren: str = "", vat: str = "", city: str = "Paris") -> dict:
    party = {"name": name, "country_code": "FR", "city": city, "postcode": "75001", "addr_l1": "1 rue de la Paix"}
    if siren:
        party |= {"legal_identifier": siren, "legal_identifier_schemeid": "0002"}
    if vat:
        party["vat_identifier"] = vat
    return party


def invoice_data(
    *,
    number: str,
    seller: dict,
    buyer: str | dict,
    lines: list[tuple[str, str, str]],
    issue_date: dt.date,
    due_date: dt.date | None = None,
    currency: str = "EUR",
    type_code: str = "380",
) -> dict:
    """An EN 16931 invoice as the library's data dict (BT-/BG- keys), totals computed from ``lines``.

    ``lines`` are (label, amount HT, VAT rate) with decimal strings; ``buyer`` a name, or a party like ``seller``'s.
    """
    bases: dict[Decimal, Decimal] = {}
    for _label, amount, rate in lines:
        bases[Decimal(rate)] = bases.get(Decimal(rate), ZERO) + Decimal(amount)
    breakdown = [
        {"BT-116": f"{base:.2f}", "BT-117": f"{cents(base * rate / 100):.2f}", "BT-118": "S", "BT-119": f"{rate:.2f}"}
        for rate, base in sorted(bases.items())
    ]
    total_ht = sum(bases.values(), ZERO)
    total_tva = sum((Decimal(vat["BT-117"]) for vat in breakdown), ZERO)
    data = {
        "BT-1": number,
        "BT-2": issue_date,
        "BT-3": type_code,
        "BT-5": currency,
        "BT-24": EN16931,
        # CII wants a delivery block; the delivery date is the simplest thing to put in it.
        "BT-72": issue_date,
        "BG-4": seller,
        "BG-7": buyer if isinstance(buyer, dict) else {"name": buyer, "country_code": "FR"},
        "BG-23": breakdown,
        "BT-106": f"{total_ht:.2f}",
        "BT-109": f"{total_ht:.2f}",
        "BT-110": f"{total_tva:.2f}",
        "BT-112": f"{total_ht + total_tva:.2f}",
        "BT-115": f"{total_ht + total_tva:.2f}",
        "BG-25": [
            {
                "BT-126": str(index),
                "BT-129": "1",
                "BT-130": "C62",
                "BT-131": amount,
                "BT-146": amount,
                "BT-151": "S",
                "BT-152": rate,
                "BT-153": label,
            }
            for index, (label, amount, rate) in enumerate(lines, start=1)
        ],
    }
    if due_date:
        data["BT-9"] = due_date
    return data


def cii_xml(data: dict) -> bytes:
    # No schematron: the library would send the XML to a remote Saxon server. The XSD is checked locally.
    return facturx.generate_cii_xml(copy.deepcopy(data), level="en16931", check_schematron=False)


def ubl_xml(data: dict) -> bytes:
    return facturx.generate_ubl_xml(copy.deepcopy(data), level="en16931", check_schematron=False)


def _pdf_text(text: str) -> bytes:
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return escaped.encode("cp1252")


def minimal_pdf(text_lines: list[str]) -> bytes:
    """A one-page PDF showing ``text_lines``: the human-readable side of a Factur-X invoice."""
    stream = b"BT /F1 11 Tf 56 780 Td 15 TL " + b" ".join(b"(" + _pdf_text(t) + b") '" for t in text_lines) + b" ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >>"
        b" /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
    ]
    pdf = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(pdf))
        pdf += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(pdf)
    pdf += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    pdf += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    pdf += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(pdf)


def readable_lines(data: dict) -> list[str]:
    kind = "AVOIR" if data["BT-3"] == "381" else "FACTURE"
    text = [
        f"{kind} {data['BT-1']} du {data['BT-2']:%d/%m/%Y}",
        f"{data['BG-4']['name']} - SIREN {data['BG-4'].get('legal_identifier', '-')}"
        f" - TVA {data['BG-4'].get('vat_identifier', '-')}",
        f"Client : {data['BG-7']['name']}",
        "",
    ]
    text += [f"{line['BT-153']} : {line['BT-131']} {data['BT-5']} HT, TVA {line['BT-152']} %" for line in data["BG-25"]]
    text += ["", f"Total HT {data['BT-109']} - TVA {data['BT-110']} - TTC {data['BT-112']} {data['BT-5']}"]
    return text


def facturx_pdf(data: dict, xml: bytes | None = None) -> bytes:
    """A Factur-X PDF (EN 16931 profile): the readable page with the CII XML embedded, checked against the XSD."""
    return facturx.generate_from_binary(
        minimal_pdf(readable_lines(data)),
        xml if xml is not None else cii_xml(data),
        flavor="factur-x",
        level="en16931",
        check_xsd=xml is None,
        lang="fr-FR",
    )


# The demo referential's suppliers (Sage stub, demo.suppliers_for) used below; see the module docstring.
JNO_F0001 = seller("Fournitures Petit SAS", siren="942904814", vat="FR66942904814")
JNO_F0002 = seller("Imprimerie Moreau SA", siren="841174006", vat="FR03841174006", city="Lyon")
JNO_F0004_VAT_ONLY = seller("Voyages David SASU", vat="FR38333488369", city="Nantes")
JNO_F0005 = seller("Informatique Vincent SARL", siren="867394405", vat="FR20867394405", city="Lille")
JNO_F0012 = seller("Télécom Nicolas SA", siren="429379407", vat="FR58429379407")
MULTI_F0001 = seller("Voyages Leroy SAS", siren="608350559", vat="FR84608350559", city="Bordeaux")
MULTI_F0002 = seller("Informatique Laurent SA", siren="475665089", vat="FR52475665089", city="Toulouse")
# In no demo referential: its invoice stays « à compléter » until the supplier exists.
UNKNOWN = seller("Transports Martin SARL", siren="612345678", vat="FR24612345678", city="Dijon")


def _date(day: int, month: int = 11) -> dt.date:
    return dt.date(2026, month, day)


def samples() -> list[tuple[str, str, str, dict]]:
    """(company code, file name, format, data) of every sample."""
    return [
        ("JNO", "FA-2026-0501.pdf", "facturx", invoice_data(
            number="FA-2026-0501", seller=JNO_F0001, buyer="JNO", issue_date=_date(2), due_date=_date(17, 12),
            lines=[("Ramettes de papier A4 et fournitures de bureau", "250.00", "20.00")],
        )),
        ("JNO", "FA-2026-0502.pdf", "facturx", invoice_data(
            number="FA-2026-0502", seller=JNO_F0002, buyer="JNO", issue_date=_date(4), due_date=_date(4, 12),
            lines=[
                ("Impression de 500 brochures", "400.00", "20.00"),
                ("Livres et revues techniques", "120.00", "10.00"),
            ],
        )),
        ("JNO", "AV-2026-0031.pdf", "facturx", invoice_data(
            number="AV-2026-0031", seller=JNO_F0005, buyer="JNO", issue_date=_date(5), type_code="381",
            lines=[("Avoir : remise commerciale sur licences", "150.00", "20.00")],
        )),
        ("JNO", "INV-2026-0077.xml", "ubl", invoice_data(
            number="INV-2026-0077", seller=JNO_F0004_VAT_ONLY, buyer="JNO", issue_date=_date(6),
            due_date=_date(6, 12), lines=[("Billets de train Paris - Lyon", "180.00", "10.00")],
        )),
        ("JNO", "FA-2026-0610.pdf", "facturx", invoice_data(
            number="FA-2026-0610", seller=UNKNOWN, buyer="JNO", issue_date=_date(9), due_date=_date(9, 12),
            lines=[("Transport de palettes Dijon - Paris", "640.00", "20.00")],
        )),
        ("JNO", "INV-US-2026-118.xml", "cii", invoice_data(
            number="INV-US-2026-118", seller=JNO_F0012, buyer="JNO", issue_date=_date(10), currency="USD",
            lines=[("International roaming package", "90.00", "20.00")],
        )),
        ("MULTI", "FA-2026-1201.xml", "cii", invoice_data(
            number="FA-2026-1201", seller=MULTI_F0001, buyer="MULTI", issue_date=_date(3), due_date=_date(18, 12),
            lines=[("Déplacement de l'équipe commerciale à Bordeaux", "300.00", "20.00")],
        )),
        ("MULTI", "FA-2026-1202.pdf", "facturx", invoice_data(
            number="FA-2026-1202", seller=MULTI_F0002, buyer="MULTI", issue_date=_date(12),
            due_date=dt.date(2027, 1, 11),
            lines=[("Maintenance du parc informatique", "850.00", "20.00"), ("Ouvrages techniques", "64.50", "5.50")],
        )),
    ]  # fmt: skip


def render(syntax: str, data: dict) -> bytes:
    return {"facturx": facturx_pdf, "ubl": ubl_xml, "cii": cii_xml}[syntax](data)


def main() -> None:
    for code, name, syntax, data in samples():
        folder = HERE / code
        folder.mkdir(exist_ok=True)
        (folder / name).write_bytes(render(syntax, data))
        print(f"{code}/{name}")


if __name__ == "__main__":
    main()
