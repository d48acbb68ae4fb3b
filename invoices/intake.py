"""Intake from the « Répertoire de scan »: new Factur-X / UBL / CII files become invoices.

Each company with a scan directory reads ``settings.SCAN_ROOT / company.scan_directory``. A file there is:
- left alone while it may still be written (modified less than ``SCAN_SETTLE_SECONDS`` ago, or its size or
  date changed between the listing and the claim): the next scan takes it;
- claimed by an atomic ``os.rename`` into ``en-cours/``: of two scans running at once, only one gets it;
- imported (one transaction per file) and moved to ``traités/``, or refused and moved to ``erreurs/``, with a
  ``<name>.txt`` beside it saying why, in French. A bad file never stops the others.
A file is imported once: its sha256 is kept on the invoice, and a file already imported (or already sitting
in ``traités/``) is refused as « déjà importé ». What cannot be matched (supplier, account, tax code) leaves
the invoice *à compléter* with the reason; what is wrong with the document itself (unreadable, hostile, not
in EUR, amounts that do not add up, duplicate invoice) refuses the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from companies.models import Account, Company, Supplier, TaxCode

from .einvoice import FORMAT_LABELS, MAX_BYTES, EInvoiceError, ParsedInvoice, french_rate, parse_einvoice, too_large
from .models import Invoice
from .services import LineData, invoice_create

logger = logging.getLogger(__name__)

PROCESSED_DIR = "traités"
ERRORS_DIR = "erreurs"
CLAIMED_DIR = "en-cours"
# A claim older than this was left by a scan that died: its file goes back to the folder.
STALE_CLAIM_SECONDS = 600
ACCEPTED_CURRENCY = "EUR"
NOTE_SUFFIX = ".txt"
NAME_MAX = 255


class Outcome(models.TextChoices):
    IMPORTED = "imported", _("importée")
    TO_COMPLETE = "to_complete", _("à compléter")
    REFUSED = "refused", _("refusée")
    PENDING = "pending", _("ignorée pour l'instant")


@dataclass
class FileReport:
    name: str
    outcome: str
    reason: str = ""
    invoice_id: int | None = None

    @property
    def outcome_label(self) -> str:
        return str(Outcome(self.outcome).label)


@dataclass
class IntakeReport:
    company_code: str
    directory: str
    files: list[FileReport] = field(default_factory=list)
    # Why the folder could not be read at all (no scan directory, outside SCAN_ROOT…).
    error: str = ""

    def count(self, outcome: str) -> int:
        return sum(1 for item in self.files if item.outcome == outcome)

    def summary(self) -> dict:
        return {"company": self.company_code, "error": self.error} | {o.value: self.count(o) for o in Outcome}


class _Refused(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Claim:
    """Where the claimed file is now: it moves, and whatever fails must move it on from there."""

    path: Path


def intake_companies() -> models.QuerySet[Company]:
    """The companies whose scan directory is read."""
    return Company.objects.filter(active=True).exclude(scan_directory="")


def scan_folder(company: Company) -> Path | None:
    """The company's scan folder, or None when it has none or it would lie outside ``SCAN_ROOT``."""
    if not company.scan_directory:
        return None
    root = Path(settings.SCAN_ROOT)
    folder = root / company.scan_directory
    if not folder.resolve().is_relative_to(root.resolve()) or folder.resolve() == root.resolve():
        return None
    return folder


def intake_company(*, company: Company, actor=None) -> IntakeReport:
    """Read the new files of the company's scan folder; the report says what became of each."""
    report = IntakeReport(company_code=company.code, directory=company.scan_directory)
    folder = scan_folder(company) if company.active else None
    if folder is None:
        report.error = f"La société {company.code} est inactive ou n'a pas de répertoire de scan utilisable."
        return report
    try:
        for sub in (PROCESSED_DIR, ERRORS_DIR, CLAIMED_DIR):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        _release_stale_claims(folder)
        candidates = _candidates(folder)
    except OSError as error:
        logger.exception("intake: cannot read the scan folder of %s", company.code)
        report.error = f"Répertoire de scan {company.scan_directory} inaccessible : {error}"
        return report
    for name, listed in candidates:
        try:
            item = _intake_file(company, folder, name, listed, actor)
        except OSError as error:
            # The file could not even be claimed or put back: it stays where it is for the next scan.
            logger.exception("intake: %s of %s left where it is", name, company.code)
            item = FileReport(name, Outcome.PENDING, _interrupted(error))
        if item is not None:
            report.files.append(item)
    return report


def _interrupted(error: Exception) -> str:
    return f"Import interrompu ({error}) : le fichier sera relu au prochain passage."


def _candidates(folder: Path) -> list[tuple[str, os.stat_result]]:
    found = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith(".") or entry.name.lower().endswith(NOTE_SUFFIX):
                continue
            # Folders (traités, erreurs, en-cours…) and symbolic links are never read.
            if not entry.is_file(follow_symlinks=False):
                continue
            found.append((entry.name, entry.stat(follow_symlinks=False)))
    return sorted(found, key=lambda item: item[0])


def _release_stale_claims(folder: Path) -> None:
    now = time.time()
    with os.scandir(folder / CLAIMED_DIR) as entries:
        stale = [
            Path(entry.path)
            for entry in entries
            if entry.is_file(follow_symlinks=False)
            and now - entry.stat(follow_symlinks=False).st_mtime >= STALE_CLAIM_SECONDS
        ]
    for path in stale:
        try:
            os.rename(path, _free_path(folder, path.name))
        except FileNotFoundError:
            continue  # another scan released it first
        logger.warning("intake: %s released from %s (a scan died while importing it)", path.name, CLAIMED_DIR)


def _free_path(directory: Path, name: str) -> Path:
    """``directory / name``, or a unique variant of it: a move must never overwrite a file. Either leaves room
    for the ``.txt`` note within the file system's limit on a name."""
    target = directory / name
    if not target.exists() and len(os.fsencode(name + NOTE_SUFFIX)) <= NAME_MAX:
        return target
    stem, suffix = os.path.splitext(name)
    unique = f"-{uuid.uuid4().hex[:8]}{suffix}"
    room = NAME_MAX - len(os.fsencode(unique + NOTE_SUFFIX))
    # Cut on a character boundary: the name also goes into the database as text.
    return directory / f"{os.fsencode(stem)[:room].decode('utf-8', 'ignore')}{unique}"


def _intake_file(company: Company, folder: Path, name: str, listed: os.stat_result, actor) -> FileReport | None:
    """What became of one file; None when another scan took it first (its own report tells)."""
    source = folder / name
    try:
        current = source.stat(follow_symlinks=False)
    except FileNotFoundError:
        return None
    settle = getattr(settings, "SCAN_SETTLE_SECONDS", 5)
    changed = (current.st_size, current.st_mtime_ns) != (listed.st_size, listed.st_mtime_ns)
    if changed or time.time() - current.st_mtime < settle:
        return FileReport(name, Outcome.PENDING, "Fichier en cours d'écriture : il sera lu au prochain passage.")
    claimed = folder / CLAIMED_DIR / name
    if claimed.exists():
        if not source.exists():
            return None
        return FileReport(
            name,
            Outcome.PENDING,
            "Un fichier du même nom est en cours d'import : il sera lu au prochain passage.",
        )
    try:
        os.rename(source, claimed)
    except FileNotFoundError:
        return None
    # The claim's date, read by ``_release_stale_claims`` (a rename keeps the file's own date).
    os.utime(claimed)
    claim = _Claim(claimed)
    try:
        return _import(company, folder, name, claim, actor)
    except _Refused as refused:
        reason = refused.reason
    except (OperationalError, InterfaceError, OSError) as error:
        # Nothing says the file is bad: the database or the disk failed (the transaction was rolled back).
        # Refusing it would send every file of an outage to erreurs/; it goes back for the next scan instead.
        logger.exception("intake: %s of %s interrupted", name, company.code)
        with contextlib.suppress(FileNotFoundError):
            os.rename(claim.path, _free_path(folder, name))
        return FileReport(name, Outcome.PENDING, _interrupted(error))
    except Exception as error:
        logger.exception("intake: %s of %s failed", name, company.code)
        reason = f"Erreur inattendue pendant l'import : {error}"
    target = _free_path(folder / ERRORS_DIR, name)
    os.rename(claim.path, target)
    _write_note(target, f"Refusée : {reason}")
    logger.info("intake: %s of %s refused: %s", name, company.code, reason)
    return FileReport(name, Outcome.REFUSED, reason)


def _write_note(path: Path, text: str) -> None:
    note = path.with_name(path.name + NOTE_SUFFIX)
    stamp = timezone.localtime().strftime("%d/%m/%Y %H:%M")
    try:
        note.write_text(f"{path.name} — {stamp}\n{text}\n", encoding="utf-8")
    except OSError:
        # The invoice (or the refusal) is what counts; a note that cannot be written only loses the explanation.
        logger.exception("intake: cannot write %s", note)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _already_in_processed(folder: Path, size: int, digest: str) -> str | None:
    with os.scandir(folder / PROCESSED_DIR) as entries:
        for entry in entries:
            if entry.name.lower().endswith(NOTE_SUFFIX) or not entry.is_file(follow_symlinks=False):
                continue
            # Only a file of the same size can be the same file: most are never read.
            if entry.stat(follow_symlinks=False).st_size == size and _sha256(Path(entry.path)) == digest:
                return entry.name
    return None


def _refuse_if_imported(company: Company, digest: str) -> None:
    previous = Invoice.objects.filter(company=company, source_hash=digest).first()
    if previous:
        raise _Refused(f"Fichier déjà importé : facture n° {previous.number} (id {previous.pk}).")


def _import(company: Company, folder: Path, name: str, claim: _Claim, actor) -> FileReport:
    size = claim.path.stat().st_size
    if size > MAX_BYTES:
        raise _Refused(str(too_large(size)))
    data = claim.path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    _refuse_if_imported(company, digest)
    twin = _already_in_processed(folder, len(data), digest)
    if twin:
        raise _Refused(f"Fichier déjà importé : le même fichier est déjà dans {PROCESSED_DIR}/ ({twin}).")
    try:
        parsed = parse_einvoice(data, name)
    except EInvoiceError as error:
        raise _Refused(str(error)) from None
    if parsed.currency != ACCEPTED_CURRENCY:
        raise _Refused(f"Devise {parsed.currency} refusée : seules les factures en {ACCEPTED_CURRENCY} sont acceptées.")
    try:
        with transaction.atomic():
            invoice = _create(company, folder, claim, parsed, digest, actor)
    except IntegrityError:
        # The (company, supplier, number) constraint: the same invoice came in through another file meanwhile.
        raise _Refused(
            f"Facture en double : la facture n° {parsed.number} de ce fournisseur est déjà dans SFD."
        ) from None
    label = invoice.get_status_display()
    if invoice.status == Invoice.Status.TO_COMPLETE:
        outcome, reason = Outcome.TO_COMPLETE, invoice.incomplete_reason
        note = f"Importée, à compléter : facture n° {invoice.number} (id {invoice.pk}).\n{reason}"
    else:
        outcome, reason = Outcome.IMPORTED, ""
        note = f"Importée : facture n° {invoice.number} (id {invoice.pk}), statut « {label} »."
    _write_note(claim.path, note)
    logger.info("intake: %s of %s imported as invoice %s (%s)", name, company.code, invoice.pk, invoice.status)
    return FileReport(name, outcome, reason, invoice.pk)


def _create(company: Company, folder: Path, claim: _Claim, parsed: ParsedInvoice, digest: str, actor) -> Invoice:
    # Imports of one company are serialised from here to the commit: the checks below hold against another scan
    # importing the same file or the same invoice under another name at the same moment.
    Company.objects.select_for_update().only("pk").get(pk=company.pk)
    _refuse_if_imported(company, digest)
    supplier, reasons = _supplier(company, parsed)
    if supplier is not None:
        twin = Invoice.objects.filter(company=company, supplier=supplier, number=parsed.number).first()
        if twin:
            raise _Refused(
                f"Facture en double : {supplier.code} {supplier.label} a déjà une facture n° {parsed.number}"
                f" dans SFD (id {twin.pk})."
            )
    lines, line_reasons = _lines(company, supplier, parsed)
    reasons += line_reasons
    target = _free_path(folder / PROCESSED_DIR, claim.path.name)
    os.rename(claim.path, target)
    claim.path = target
    source_file = Path(company.scan_directory, PROCESSED_DIR, target.name).as_posix()
    invoice = invoice_create(
        company=company,
        supplier=supplier,
        number=parsed.number,
        lines=lines,
        actor=actor,
        event_message=(
            f"Facture importée du répertoire de scan ({FORMAT_LABELS[parsed.source_format]}) : {source_file}."
        ),
        kind=Invoice.Kind.CREDIT_NOTE if parsed.credit_note else Invoice.Kind.INVOICE,
        invoice_date=parsed.issue_date,
        due_date=parsed.due_date,
        currency=parsed.currency,
        total_ht=parsed.total_ht,
        total_tva=parsed.total_tva,
        total_ttc=parsed.total_ttc,
        source_file=source_file,
        source_hash=digest,
        source_format=parsed.source_format,
    )
    if reasons:
        # Ours first: they say why the validation's « fournisseur manquant »… happened.
        invoice.status = Invoice.Status.TO_COMPLETE
        invoice.incomplete_reason = "\n".join([*reasons, invoice.incomplete_reason]).strip()
        invoice.save(update_fields=["status", "incomplete_reason"])
    return invoice


def _supplier(company: Company, parsed: ParsedInvoice) -> tuple[Supplier | None, list[str]]:
    for field_name, value in (("siren", parsed.seller_siren), ("vat_number", parsed.seller_vat)):
        if not value:
            continue
        candidates = list(Supplier.objects.filter(company=company, **{field_name: value}).order_by("code"))
        if candidates:
            supplier = min(candidates, key=lambda s: not s.usable)
            if supplier.usable:
                return supplier, []
            state = "bloqué" if supplier.blocked else "inactif"
            return supplier, [f"Fournisseur {supplier.code} {supplier.label} {state} dans Sage FRP 1000."]
    return None, [
        f"Fournisseur inconnu : {parsed.seller_label}. Créez-le dans Sage FRP 1000 et mettez à jour la société,"
        " ou choisissez-le sur la facture."
    ]


def _expense_account(company: Company, supplier: Supplier | None) -> tuple[Account | None, list[str]]:
    if supplier is None:
        return None, []
    code = supplier.expense_account_code
    if not code:
        return None, [f"Aucun compte de charge pour le fournisseur {supplier.code} : choisissez celui de chaque ligne."]
    account = Account.objects.filter(company=company, code=code).first()
    if account is None:
        return None, [
            f"Compte de charge {code} du fournisseur {supplier.code} absent du référentiel : choisissez celui de"
            " chaque ligne."
        ]
    if not account.usable:
        return None, [f"Compte de charge {code} du fournisseur {supplier.code} inactif : choisissez un autre compte."]
    return account, []


def _lines(company: Company, supplier: Supplier | None, parsed: ParsedInvoice) -> tuple[list[LineData], list[str]]:
    account, reasons = _expense_account(company, supplier)
    tax_codes: dict = {}
    for tax_code in TaxCode.objects.filter(company=company, active=True, gone_upstream_at__isnull=True).order_by(
        "code"
    ):
        tax_codes.setdefault(tax_code.rate, tax_code)
    unmatched: dict = {}
    lines = []
    for index, line in enumerate(parsed.lines, start=1):
        tax_code = tax_codes.get(line.vat_rate) if line.vat_rate is not None else None
        if tax_code is None:
            unmatched.setdefault(line.vat_rate, []).append(str(index))
        lines.append(
            LineData(
                label=line.label,
                amount_ht=line.amount_ht,
                account_id=account.pk if account else None,
                tax_code_id=tax_code.pk if tax_code else None,
            )
        )
    for rate, indexes in unmatched.items():
        where = f"ligne {indexes[0]}" if len(indexes) == 1 else f"lignes {', '.join(indexes)}"
        if rate is None:
            reasons.append(f"Taux de TVA absent de la facture ({where}) : choisissez le code TVA.")
        else:
            reasons.append(f"Aucun code TVA actif au taux de {french_rate(rate)} % ({where}) : choisissez le code TVA.")
    return lines, reasons
