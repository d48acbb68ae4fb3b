"""Reading an electronic invoice: Factur-X PDF (CII embedded), UBL 2.1 XML or CII XML.

The ``factur-x`` library does the work: it extracts the XML from the PDF, detects the flavour and the profile,
checks the official XSD and maps the document onto the EN 16931 business terms (BT-1 number, BT-131 line net
amount…), the same for CII and UBL. This module only adds what the library leaves to its caller:
- safety: every XML is parsed by a parser that resolves no entity, loads no DTD and reaches no network, and a
  document that declares a DOCTYPE is refused outright (billion laughs, external entities). The library parses
  with lxml's default parser, so ours is installed as the thread's default while the library runs;
- a size bound, and French reasons for everything it refuses;
- the invoice's own arithmetic: lines, totals and VAT must agree to the cent, or it is refused.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import facturx
from lxml import etree

from .accounting import CENT, ZERO, cents

MAX_BYTES = 20 * 1024 * 1024
NUMBER_MAX = 60
LABEL_MAX = 200

FORMAT_FACTURX = "facturx"
FORMAT_UBL = "ubl"
FORMAT_CII = "cii"
FORMAT_LABELS = {FORMAT_FACTURX: "Factur-X", FORMAT_UBL: "UBL", FORMAT_CII: "CII"}

_INVOICE_FLAVORS = ("factur-x", "ubl-2.1-invoice", "ubl-2.1-creditnote")
_SPACES = re.compile(rb"[ \t\r\n]*")
_PROLOG_ITEMS = ((b"<?", b"?>"), (b"<!--", b"-->"))


class EInvoiceError(Exception):
    """The file is not an invoice SFD can import; the message (French) says why."""


@dataclass(frozen=True)
class ParsedLine:
    label: str
    amount_ht: Decimal
    vat_rate: Decimal | None


@dataclass(frozen=True)
class ParsedInvoice:
    source_format: str
    number: str
    credit_note: bool
    issue_date: dt.date
    due_date: dt.date | None
    currency: str
    seller_name: str
    seller_siren: str
    seller_vat: str
    total_ht: Decimal
    total_tva: Decimal
    total_ttc: Decimal
    lines: tuple[ParsedLine, ...]

    @property
    def seller_label(self) -> str:
        """How the seller is named in a French reason: « SIREN 123456789 (Transports Martin SARL) »."""
        if self.seller_siren:
            ident = f"SIREN {self.seller_siren}"
        elif self.seller_vat:
            ident = f"TVA {self.seller_vat}"
        else:
            ident = "sans SIREN ni n° de TVA"
        return f"{ident} ({self.seller_name})" if self.seller_name else ident


def safe_parser() -> etree.XMLParser:
    # A new parser each time: lxml parsers must not be shared between threads.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


@contextlib.contextmanager
def _safe_default_parser() -> Iterator[None]:
    previous = etree.get_default_parser()
    etree.set_default_parser(safe_parser())
    try:
        yield
    finally:
        etree.set_default_parser(previous)


def _refuse_doctype() -> EInvoiceError:
    return EInvoiceError(
        "XML refusé : il déclare un DOCTYPE (entités ou DTD), interdit dans une facture électronique pour des "
        "raisons de sécurité."
    )


def _declares_doctype(data: bytes) -> bool:
    """Whether the prolog (what precedes the root element) holds a DOCTYPE. One pass over the bytes whatever
    they are: a regular expression over a file full of comments would backtrack for minutes."""
    position = _SPACES.match(data, len(b"\xef\xbb\xbf") if data.startswith(b"\xef\xbb\xbf") else 0).end()
    while True:
        for start, end in _PROLOG_ITEMS:
            if data.startswith(start, position):
                closing = data.find(end, position + len(start))
                if closing < 0:
                    return False
                position = _SPACES.match(data, closing + len(end)).end()
                break
        else:
            return data[position : position + len(b"<!DOCTYPE")].upper() == b"<!DOCTYPE"


def parse_xml(data: bytes) -> etree._Element:
    """The root of a trusted-shape XML document, or ``EInvoiceError``."""
    if _declares_doctype(data):
        raise _refuse_doctype()
    try:
        root = etree.fromstring(data, safe_parser())
    except etree.XMLSyntaxError as error:
        raise EInvoiceError(f"XML illisible (tronqué ou mal formé) : {error}") from None
    # Encodings the prolog check cannot read (UTF-16…) are caught here, after a parse that expanded nothing.
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise _refuse_doctype()
    return root


def _xml_from_pdf(data: bytes) -> bytes:
    try:
        with _safe_default_parser():
            _filename, xml = facturx.get_xml_from_pdf(data, check_xsd=False)
    except Exception as error:  # pypdf raises many kinds of errors on a damaged or hostile PDF
        raise EInvoiceError(f"PDF illisible ou endommagé : {error}") from None
    if not xml:
        raise EInvoiceError(
            "PDF sans facture électronique : il ne contient aucun XML Factur-X. Seules les factures Factur-X,"
            " UBL ou CII sont importées."
        )
    return xml


def _document_root(data: bytes, filename: str) -> tuple[str, etree._Element]:
    if len(data) > MAX_BYTES:
        raise too_large(len(data))
    if b"%PDF-" in data[:1024]:
        return FORMAT_FACTURX, parse_xml(_xml_from_pdf(data))
    if data.lstrip(b"\xef\xbb\xbf\xff\xfe \t\r\n").startswith((b"<", b"\x00<", b"<\x00")):
        return "", parse_xml(data)
    raise EInvoiceError(f"Format non reconnu pour « {filename} » : ni PDF Factur-X, ni XML UBL ou CII.")


def too_large(size: int) -> EInvoiceError:
    megabytes = f"{size / 1024 / 1024:.1f}".replace(".", ",")
    return EInvoiceError(f"Fichier trop volumineux ({megabytes} Mo) : la limite est de {MAX_BYTES // 1024 // 1024} Mo.")


def _flavor_and_level(root: etree._Element) -> tuple[str, str]:
    try:
        flavor = facturx.get_flavor(root)
    except Exception:  # the library raises a bare Exception for an unknown root element
        raise EInvoiceError(
            f"XML non reconnu : l'élément racine « {etree.QName(root).localname} » n'est ni une facture CII"
            " (Factur-X) ni une facture UBL."
        ) from None
    if flavor not in _INVOICE_FLAVORS:
        raise EInvoiceError(f"Document {flavor} non pris en charge : seules les factures CII et UBL sont importées.")
    try:
        level = facturx.get_level(root, flavor)
    except ValueError:
        raise EInvoiceError(
            "Profil de facture électronique absent ou inconnu (identifiant de spécification BT-24)."
        ) from None
    try:
        facturx.xml_check_xsd(root, flavor=flavor, level=level)
    except Exception as error:  # the library wraps lxml's DocumentInvalid in a bare Exception
        detail = error.__cause__ or error
        raise EInvoiceError(f"XML non conforme au schéma officiel (XSD) : {detail}") from None
    return flavor, level


def _amount(value, what: str) -> Decimal:
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise EInvoiceError(f"Montant illisible pour {what} : « {value} ».") from None
    if not amount.is_finite():
        raise EInvoiceError(f"Montant illisible pour {what} : « {value} ».")
    return cents(amount)


def _optional_amount(value, what: str) -> Decimal | None:
    return None if value in (None, "") else _amount(value, what)


def _digits(value) -> str:
    return re.sub(r"\D", "", str(value or ""))


def _seller_ids(seller: dict) -> tuple[str, str]:
    """SIREN (from the legal registration BT-30, or a SIRET) and VAT number (BT-31) of the seller."""
    candidates = [seller.get("legal_identifier")]
    identifiers = seller.get("identifiers") or {}
    candidates += [identifiers.get("0002"), identifiers.get("0009")]
    siren = ""
    for candidate in candidates:
        digits = _digits(candidate)
        if len(digits) in (9, 14):  # SIREN, or SIRET whose first nine digits are the SIREN
            siren = digits[:9]
            break
    vat = re.sub(r"\s", "", str(seller.get("vat_identifier") or "")).upper()
    return siren, vat


def _lines(data: dict) -> list[ParsedLine]:
    lines = [
        ParsedLine(
            label=str(line.get("BT-153") or line.get("BT-154") or f"Ligne {line.get('BT-126', index)}")[:LABEL_MAX],
            amount_ht=_amount(line.get("BT-131"), f"la ligne {index}"),
            vat_rate=_optional_amount(line.get("BT-152"), f"le taux de TVA de la ligne {index}"),
        )
        for index, line in enumerate(data.get("BG-25") or [], start=1)
    ]
    if not lines:
        # Profiles without lines (BASIC WL) still break the base down per VAT rate: one line per rate.
        lines = [
            ParsedLine(
                label=f"Base TVA {french_rate(rate)} %" if rate is not None else "Base hors TVA",
                amount_ht=_amount(vat.get("BT-116"), "la base de TVA"),
                vat_rate=rate,
            )
            for vat in data.get("BG-23") or []
            for rate in [_optional_amount(vat.get("BT-119"), "le taux de TVA")]
        ]
    # Document-level charges and allowances are part of the base: they become lines of their own.
    for key, sign, word in (("BG-21", 1, "Frais"), ("BG-20", -1, "Remise")):
        for item in data.get(key) or []:
            reason = item.get("reason") or item.get("reason_code") or ""
            lines.append(
                ParsedLine(
                    label=f"{word} {reason}".strip()[:LABEL_MAX],
                    amount_ht=sign * _amount(item.get("amount"), word.lower()),
                    vat_rate=_optional_amount(item.get("vat_rate"), f"le taux de TVA ({word.lower()})"),
                )
            )
    return lines


def french_rate(rate: Decimal) -> str:
    return f"{rate.normalize():f}".replace(".", ",")


def _check_amounts(lines: list[ParsedLine], total_ht: Decimal, total_tva: Decimal, total_ttc: Decimal) -> None:
    """The invoice must agree with itself, under the rounding rule of ``invoices.accounting``."""
    lines_ht = sum((line.amount_ht for line in lines), ZERO)
    if lines_ht != total_ht:
        raise EInvoiceError(
            f"Montants incohérents : la somme des lignes ({lines_ht} €) ne correspond pas au total HT ({total_ht} €)."
        )
    if total_ht + total_tva != total_ttc:
        raise EInvoiceError(
            f"Montants incohérents : total HT {total_ht} € + TVA {total_tva} € ≠ total TTC {total_ttc} €."
        )
    bases: dict[Decimal, Decimal] = {}
    for line in lines:
        if line.vat_rate is not None:
            bases[line.vat_rate] = bases.get(line.vat_rate, ZERO) + line.amount_ht
    computed = sum((cents(base * rate / Decimal(100)) for rate, base in bases.items()), ZERO)
    if abs(total_tva - computed) > CENT * max(len(bases), 1):
        raise EInvoiceError(
            f"Montants incohérents : la TVA de la facture ({total_tva} €) ne correspond pas à la TVA des lignes"
            f" ({computed} €)."
        )


def _invoice(source_format: str, data: dict) -> ParsedInvoice:
    number = str(data.get("BT-1") or "").strip()
    if not number:
        raise EInvoiceError("Numéro de facture absent (BT-1).")
    if len(number) > NUMBER_MAX:
        raise EInvoiceError(f"Numéro de facture trop long ({len(number)} caractères, {NUMBER_MAX} au plus).")
    issue_date = data.get("BT-2")
    if not isinstance(issue_date, dt.date):
        raise EInvoiceError("Date de facture absente (BT-2).")
    due_date = data.get("BT-9")
    seller = data.get("BG-4") or {}
    siren, vat = _seller_ids(seller)
    total_ht = _amount(data.get("BT-109"), "le total HT")
    stated_vat = _optional_amount(data.get("BT-110"), "le total TVA")
    if stated_vat is None:
        stated_vat = sum((_amount(v.get("BT-117"), "la TVA") for v in data.get("BG-23") or []), ZERO)
    total_ttc = _amount(data.get("BT-112"), "le total TTC")
    lines = _lines(data)
    if not lines:
        raise EInvoiceError("La facture ne détaille ni ses lignes ni sa TVA par taux : elle ne peut être importée.")
    _check_amounts(lines, total_ht, stated_vat, total_ttc)
    return ParsedInvoice(
        source_format=source_format,
        number=number,
        credit_note=facturx.is_credit_note(data),
        issue_date=issue_date,
        due_date=due_date if isinstance(due_date, dt.date) else None,
        currency=str(data.get("BT-5") or "").strip().upper(),
        seller_name=str(seller.get("name") or seller.get("biz_name") or "").strip(),
        seller_siren=siren,
        seller_vat=vat,
        total_ht=total_ht,
        total_tva=stated_vat,
        total_ttc=total_ttc,
        lines=tuple(lines),
    )


def parse_einvoice(data: bytes, filename: str = "") -> ParsedInvoice:
    """The invoice in ``data`` (a Factur-X PDF, a UBL or a CII XML), or ``EInvoiceError`` with a French reason.

    Nothing here judges the invoice against SFD (currency policy, supplier, duplicates): only the document.
    """
    source_format, root = _document_root(data, filename)
    with _safe_default_parser():
        flavor, level = _flavor_and_level(root)
        if not source_format:
            source_format = FORMAT_CII if flavor == "factur-x" else FORMAT_UBL
        try:
            content = facturx.parse_ubl_cii_xml(root, flavor=flavor, level=level, check_xsd=False)
        except Exception as error:  # dates and codes the XSD lets through, reported by the library as it can
            raise EInvoiceError(f"Contenu de la facture illisible : {error}") from None
    return _invoice(source_format, content)
