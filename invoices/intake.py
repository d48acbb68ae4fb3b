"""Intake from the « Répertoire de scan »: new Factur-X / UBL / CII files become invoices.

Each company with a scan directory reads ``settings.SCAN_ROOT / company.scan_directory``. A file there is:
- left alone while it may still be written (modified less than ``SCAN_SETTLE_SECONDS`` ago, or its size or
  date changed between the listing and the claim): the next scan takes it;
- claimed by an atomic rename into ``en-cours/``: of two scans running at once, only one gets it;
- imported (one transaction per file) and moved to ``traités/``, or refused and moved to ``erreurs/``, with a
  ``<name>.txt`` beside it saying why, in French. A bad file never stops the others.
Every file a person dropped is recorded (``IntakeFile``): created, already received, refused, ignored or pending,
with its reason. Hidden files (a name starting with « . »: what operating systems, synchronisation tools and
scanners write for themselves while they work) are recorded as ignored and left where they are; nothing else is
ever left in the folder silently.

The folders are never trusted to be what they were when checked: the company's folder and its work folders are
opened without following a symbolic link (``O_NOFOLLOW``) and every later move, read or write goes through those
descriptors (``dir_fd``), so a folder swapped for a link between the check and the use is not followed out of
``SCAN_ROOT``. A file that is a link is refused (moved to ``erreurs/`` as a link, never read through), and a file
swapped for a link after its claim cannot be opened (``O_NOFOLLOW`` again). A company whose folder is another's, or
inside or above another's, is not read at all (an old setting cannot steal another company's files).

A file is imported once: its sha256 is kept, and a file already imported (or already sitting in ``traités/``) is
« déjà reçue ». What cannot be matched (supplier, account, tax code) leaves the invoice *à compléter* with the
reason; what is wrong with the document itself (unreadable, hostile, amounts that do not add up) refuses the file.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import stat
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import PurePosixPath

from django.conf import settings
from django.db import (
    DatabaseError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connection,
    models,
    transaction,
)
from django.db.models.fields.json import KT
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from companies.models import Account, Company, Supplier, TaxCode
from companies.services import company_scan_directory_conflict, scan_directory_conflict_message
from core.bulk import quote_name
from core.services import audit_record

from .accounting import cents, round_to_total
from .einvoice import (
    FORMAT_LABELS,
    KIND_ALLOWANCE,
    KIND_CHARGE,
    MAX_BYTES,
    EInvoiceError,
    NoEmbeddedInvoice,
    ParsedInvoice,
    french_rate,
    parse_einvoice,
    too_large,
)
from .models import IntakeFile, Invoice, InvoiceLine
from .paper_intake import image_kind, paper_invoice_create, reading_message
from .scan import KIND_PDF
from .services import LineData, invoice_insert

logger = logging.getLogger(__name__)

PROCESSED_DIR = "traités"
ERRORS_DIR = "erreurs"
CLAIMED_DIR = "en-cours"
WORK_DIRS = (PROCESSED_DIR, ERRORS_DIR, CLAIMED_DIR)
# A claim older than this was left by a scan that died: its file goes back to the folder.
STALE_CLAIM_SECONDS = 600
NOTE_SUFFIX = ".txt"
NAME_MAX = 255
_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_NOTE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

Outcome = IntakeFile.Outcome

HIDDEN_REASON = (
    "Fichier caché (nom commençant par « . ») : fichier de travail d'un système, d'une synchronisation ou d'un"
    " scanner, laissé en place et non importé. Renommez-le sans le point s'il s'agit d'une facture."
)
LINK_REASON = (
    "Lien symbolique refusé : SFD ne suit jamais un lien, qui pourrait désigner un fichier hors du répertoire de"
    " scan. Déposez le fichier lui-même."
)
NOT_A_FILE_REASON = "Ce n'est pas un fichier ordinaire (tube, périphérique…) : refusé."


@dataclass
class FileReport:
    name: str
    outcome: str
    reason: str = ""
    invoice_id: int | None = None
    intake_file_id: int | None = None

    @property
    def outcome_label(self) -> str:
        return str(Outcome(self.outcome).label)


@dataclass
class IntakeReport:
    company_code: str
    directory: str
    files: list[FileReport] = field(default_factory=list)
    # Why the folder could not be read at all (no scan directory, outside SCAN_ROOT, shared, a link…).
    error: str = ""

    def count(self, outcome: str) -> int:
        return sum(1 for item in self.files if item.outcome == outcome)

    def summary(self) -> dict:
        return {"company": self.company_code, "error": self.error} | {o.value: self.count(o) for o in Outcome}


class _Refused(Exception):
    """The file is not imported; ``outcome`` is *refusée* or *déjà reçue* (then ``invoice`` is the first one)."""

    def __init__(self, reason: str, *, outcome: str = Outcome.REFUSED, invoice: Invoice | None = None):
        super().__init__(reason)
        self.reason = reason
        self.outcome = outcome
        self.invoice = invoice


class FolderError(Exception):
    """The company's scan folder cannot be read safely; the message (French) says why."""


class IntakeRetryError(Exception):
    """The file cannot be imported again (not refused, gone from ``erreurs/``…); the message is French."""


class Memo:
    """What an intake pass (one folder, one ``ScanFolder``) reads once instead of once per file: the group's
    companies, the suppliers found by SIREN or VAT number, the accounts and the tax codes of each company. A pass
    takes seconds; a referential update that lands during one is seen by the next pass."""

    def __init__(self):
        self._values: dict = {}

    def get(self, key, load: Callable):
        try:
            return self._values[key]
        except KeyError:
            value = self._values[key] = load()
            return value


def readable_name(name: str) -> str:
    """The name as text that any database and any note can hold: bytes that are not UTF-8 (a name written by a
    Windows scanner in Latin-1…) become replacement characters; the raw bytes are kept apart."""
    return os.fsencode(name).decode("utf-8", "replace")


class ScanFolder:
    """A company's scan folder and its work folders, each opened once without following a link.

    Every operation goes through these descriptors: a folder swapped for a link after it was opened is never
    followed, the descriptor still designates the folder that was checked."""

    def __init__(self, relative: str, descriptors: dict[str, int]):
        self.relative = relative
        self._descriptors = descriptors
        # What one pass over the folder reads once rather than for each file (``Memo``), and the digests of the
        # files of ``traités/`` already hashed, by name, inode, size and date (a file changed is hashed again).
        self.memo = Memo()
        self.processed_digests: dict[tuple[str, int, int, int], str] = {}

    def fd(self, where: str = "") -> int:
        return self._descriptors[where]

    def path(self, where: str, name: str) -> str:
        """Where a file is, relative to ``SCAN_ROOT`` (the text the database keeps)."""
        return PurePosixPath(self.relative, where, name).as_posix()

    def exists(self, where: str, name: str) -> bool:
        try:
            os.stat(name, dir_fd=self.fd(where), follow_symlinks=False)
        except FileNotFoundError:
            return False
        return True

    def close(self) -> None:
        for descriptor in self._descriptors.values():
            os.close(descriptor)
        self._descriptors = {}

    def __enter__(self) -> ScanFolder:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _open_directory(name: str, parent: int, what: str) -> int:
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, 0o775, dir_fd=parent)
    try:
        return os.open(name, _DIRECTORY_FLAGS, dir_fd=parent)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            raise FolderError(
                f"{what} « {readable_name(name)} » n'est pas un dossier (lien symbolique ou fichier) : refusé, SFD"
                " ne suit jamais un lien hors du répertoire de scan."
            ) from None
        raise


def open_scan_folder(company: Company) -> ScanFolder:
    """The company's folder and its work folders (created when missing), or ``FolderError``."""
    parts = PurePosixPath(company.scan_directory.strip()).parts
    if not parts or parts[0] == "/" or any(part in ("..", ".") for part in parts):
        raise FolderError(f"La société {company.code} est inactive ou n'a pas de répertoire de scan utilisable.")
    root = os.fspath(settings.SCAN_ROOT)
    os.makedirs(root, exist_ok=True)
    descriptors: dict[str, int] = {}
    current = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts:
            inner = _open_directory(part, current, "Le répertoire de scan")
            os.close(current)
            current = inner
        descriptors[""] = current
        for name in WORK_DIRS:
            descriptors[name] = _open_directory(name, current, "Le dossier de travail")
    except BaseException:
        for descriptor in {current, *descriptors.values()}:
            os.close(descriptor)
        raise
    return ScanFolder(PurePosixPath(*parts).as_posix(), descriptors)


def intake_companies() -> models.QuerySet[Company]:
    """The companies whose scan directory is read."""
    return Company.objects.filter(active=True).exclude(scan_directory="")


def intake_company(
    *, company: Company, actor=None, progress: Callable[[IntakeReport, int], None] | None = None
) -> IntakeReport:
    """Read the new files of the company's scan folder; the report says what became of each. ``progress`` is told
    the report and the number of entries listed once the folder is listed, then after each file."""
    report = IntakeReport(company_code=company.code, directory=company.scan_directory)
    if not company.active or not company.scan_directory:
        report.error = f"La société {company.code} est inactive ou n'a pas de répertoire de scan utilisable."
        return report
    other = company_scan_directory_conflict(scan_directory=company.scan_directory, exclude_pk=company.pk)
    if other is not None:
        report.error = (
            f"{scan_directory_conflict_message(other, company.scan_directory)} Aucun fichier n'est lu tant que"
            " le répertoire n'est pas corrigé (Administration → Société)."
        )
        return report
    try:
        folder = open_scan_folder(company)
    except FolderError as error:
        report.error = str(error)
        return report
    except OSError as error:
        logger.exception("intake: cannot open the scan folder of %s", company.code)
        report.error = f"Répertoire de scan {company.scan_directory} inaccessible : {error}"
        return report
    with folder:
        try:
            _release_stale_claims(company, folder)
            candidates = _candidates(folder)
        except OSError as error:
            logger.exception("intake: cannot read the scan folder of %s", company.code)
            report.error = f"Répertoire de scan {company.scan_directory} inaccessible : {error}"
            return report
        if progress:
            progress(report, len(candidates))
        for name, listed in candidates:
            try:
                item = _intake_entry(company, folder, name, listed, actor)
            except (OSError, DatabaseError) as error:
                # The file could not even be claimed or put back: it stays where it is for the next scan.
                logger.exception("intake: %s of %s left where it is", readable_name(name), company.code)
                item = FileReport(readable_name(name), Outcome.PENDING, _interrupted(error))
            if item is not None:
                report.files.append(item)
                if progress:
                    progress(report, len(candidates))
    return report


def _interrupted(error: Exception) -> str:
    return f"Import interrompu ({error}) : le fichier sera relu au prochain passage."


def _candidates(folder: ScanFolder) -> list[tuple[str, os.stat_result]]:
    """Everything in the folder but folders (the work folders, a person's own subfolders)."""
    found = []
    with os.scandir(folder.fd()) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                continue
            found.append((entry.name, entry.stat(follow_symlinks=False)))
    return sorted(found, key=lambda item: os.fsencode(item[0]))


def _release_stale_claims(company: Company, folder: ScanFolder) -> None:
    now = time.time()
    with os.scandir(folder.fd(CLAIMED_DIR)) as entries:
        stale = [
            entry.name
            for entry in entries
            if not entry.is_dir(follow_symlinks=False)
            and now - entry.stat(follow_symlinks=False).st_mtime >= STALE_CLAIM_SECONDS
        ]
    for name in stale:
        target = _free_name(folder, "", name)
        try:
            os.rename(name, target, src_dir_fd=folder.fd(CLAIMED_DIR), dst_dir_fd=folder.fd())
        except FileNotFoundError:
            continue  # another scan released it first
        IntakeFile.objects.filter(company=company, path=folder.path(CLAIMED_DIR, name), outcome=Outcome.PENDING).update(
            path=folder.path("", target)
        )
        logger.warning("intake: %s released from %s (a scan died while importing it)", name, CLAIMED_DIR)


def _free_name(folder: ScanFolder, where: str, name: str) -> str:
    """``name``, or a unique variant of it, free in ``where`` together with its ``.txt`` note: a move never
    overwrites a file. Either leaves room for the note within the file system's limit on a name."""
    if (
        len(os.fsencode(name + NOTE_SUFFIX)) <= NAME_MAX
        and not folder.exists(where, name)
        and not folder.exists(where, name + NOTE_SUFFIX)
    ):
        return name
    stem, suffix = os.path.splitext(name)
    unique = f"-{uuid.uuid4().hex[:8]}{suffix}"
    room = NAME_MAX - len(os.fsencode(unique + NOTE_SUFFIX))
    # Cut on a character boundary: the name also goes into the database as text.
    return f"{os.fsencode(stem)[:room].decode('utf-8', 'ignore')}{unique}"


def _write_note(folder: ScanFolder, where: str, name: str, text: str) -> None:
    stamp = timezone.localtime().strftime("%d/%m/%Y %H:%M")
    try:
        # O_EXCL: never through a link planted under the note's name, never over another file.
        descriptor = os.open(name + NOTE_SUFFIX, _NOTE_FLAGS, 0o644, dir_fd=folder.fd(where))
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(f"{readable_name(name)} — {stamp}\n{text}\n")
    except OSError:
        # The invoice (or the refusal) is what counts; a note that cannot be written only loses the explanation.
        logger.exception("intake: cannot write the note of %s", readable_name(name))


def _record(company: Company, folder: ScanFolder, name: str, size: int, **fields) -> IntakeFile:
    """The row of a file seen in the folder: the pending one of an earlier scan, or a new one."""
    path = folder.path("", readable_name(name))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {quote_name(IntakeFile._meta.db_table)}"  # noqa: S608 - the model's table
            " WHERE company_id = %s AND path = %s AND outcome = %s ORDER BY received_at DESC, id DESC LIMIT 1",
            [company.pk, path, Outcome.PENDING],
        )
        pending = cursor.fetchone()
    # The pending row of an earlier scan, read whole only when there is one.
    record = IntakeFile.objects.get(pk=pending[0]) if pending else None
    if record is None:
        record = IntakeFile(
            company=company,
            name=readable_name(name)[:255],
            name_bytes=os.fsencode(name),
            path=path,
            received_at=timezone.now(),
        )
    record.size = size
    for key, value in fields.items():
        setattr(record, key, value)
    record.save()
    return record


def _report(record: IntakeFile) -> FileReport:
    return FileReport(record.name, record.outcome, record.reason, record.invoice_id, record.pk)


def _intake_entry(company: Company, folder: ScanFolder, name: str, listed: os.stat_result, actor) -> FileReport | None:
    """What became of one entry of the folder; None when another scan took it first, or when it is a hidden file
    already recorded."""
    if name.startswith("."):
        return _ignore_hidden(company, folder, name, listed)
    if stat.S_ISLNK(listed.st_mode):
        return _refuse_in_place(company, folder, name, listed, LINK_REASON)
    if not stat.S_ISREG(listed.st_mode):
        return _refuse_in_place(company, folder, name, listed, NOT_A_FILE_REASON)
    return _intake_file(company, folder, name, listed, actor)


def _ignore_hidden(company: Company, folder: ScanFolder, name: str, listed: os.stat_result) -> FileReport | None:
    path = folder.path("", readable_name(name))
    if IntakeFile.objects.filter(company=company, path=path, outcome=Outcome.IGNORED, size=listed.st_size).exists():
        return None
    record = IntakeFile.objects.create(
        company=company,
        name=readable_name(name)[:255],
        name_bytes=os.fsencode(name),
        path=path,
        size=listed.st_size,
        received_at=timezone.now(),
        outcome=Outcome.IGNORED,
        reason=HIDDEN_REASON,
    )
    return _report(record)


def _refuse_in_place(
    company: Company, folder: ScanFolder, name: str, listed: os.stat_result, reason: str
) -> FileReport | None:
    """Move what is not a regular file (a link, a pipe…) to ``erreurs/`` as it is: a rename moves the link itself,
    never what it points to."""
    target = _free_name(folder, ERRORS_DIR, readable_name(name))
    try:
        os.rename(name, target, src_dir_fd=folder.fd(), dst_dir_fd=folder.fd(ERRORS_DIR))
    except FileNotFoundError:
        return None
    record = _record(
        company,
        folder,
        name,
        0,
        outcome=Outcome.REFUSED,
        reason=reason,
        path=folder.path(ERRORS_DIR, target),
        attempts=1,
    )
    _write_note(folder, ERRORS_DIR, target, f"Refusée : {reason}")
    logger.info("intake: %s of %s refused: %s", record.name, company.code, reason)
    return _report(record)


@dataclass
class _Claim:
    """Where the claimed file is now: it moves, and whatever fails must move it on from there."""

    where: str
    name: str


def _intake_file(company: Company, folder: ScanFolder, name: str, listed: os.stat_result, actor) -> FileReport | None:
    try:
        current = os.stat(name, dir_fd=folder.fd(), follow_symlinks=False)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(current.st_mode):  # swapped for a link since the listing
        return _refuse_in_place(company, folder, name, current, LINK_REASON)
    settle = getattr(settings, "SCAN_SETTLE_SECONDS", 5)
    changed = (current.st_size, current.st_mtime_ns) != (listed.st_size, listed.st_mtime_ns)
    # A file dated well in the future (a writer whose clock is ahead) has no age to read: the listing decides.
    if changed or -settle <= time.time() - current.st_mtime < settle:
        return FileReport(
            readable_name(name), Outcome.PENDING, "Fichier en cours d'écriture : il sera lu au prochain passage."
        )
    display = readable_name(name)
    if folder.exists(CLAIMED_DIR, display):
        if not folder.exists("", name):
            return None
        return FileReport(
            display, Outcome.PENDING, "Un fichier du même nom est en cours d'import : il sera lu au prochain passage."
        )
    try:
        os.rename(name, display, src_dir_fd=folder.fd(), dst_dir_fd=folder.fd(CLAIMED_DIR))
    except FileNotFoundError:
        return None
    # The claim's date, read by ``_release_stale_claims`` (a rename keeps the file's own date), on the clock that
    # function reads: the kernel's own « now » may differ from this process's.
    now = time.time()
    os.utime(display, (now, now), dir_fd=folder.fd(CLAIMED_DIR), follow_symlinks=False)
    claim = _Claim(CLAIMED_DIR, display)
    try:
        record = _record(company, folder, name, current.st_size, path=folder.path(CLAIMED_DIR, display))
    except DatabaseError:
        os.rename(display, _free_name(folder, "", display), src_dir_fd=folder.fd(CLAIMED_DIR), dst_dir_fd=folder.fd())
        raise
    return _process(company, folder, claim, record, actor)


def _process(company: Company, folder: ScanFolder, claim: _Claim, record: IntakeFile, actor) -> FileReport:
    """Import the claimed file, or refuse it; either way its row and its note say what became of it."""
    record.attempts += 1
    invoice = None
    try:
        return _import(company, folder, claim, record, actor)
    except _Refused as refused:
        reason, outcome, invoice = refused.reason, refused.outcome, refused.invoice
    except (OperationalError, InterfaceError, OSError) as error:
        # Nothing says the file is bad: the database or the disk failed (the transaction was rolled back).
        # Refusing it would send every file of an outage to erreurs/; it goes back for the next scan instead.
        logger.exception("intake: %s of %s interrupted", record.name, company.code)
        target = _free_name(folder, "", claim.name)
        with contextlib.suppress(FileNotFoundError):
            os.rename(claim.name, target, src_dir_fd=folder.fd(claim.where), dst_dir_fd=folder.fd())
        with contextlib.suppress(DatabaseError):
            IntakeFile.objects.filter(pk=record.pk).update(
                outcome=Outcome.PENDING, reason=_interrupted(error), path=folder.path("", target)
            )
        return FileReport(record.name, Outcome.PENDING, _interrupted(error), None, record.pk)
    except Exception as error:
        logger.exception("intake: %s of %s failed", record.name, company.code)
        reason, outcome = f"Erreur inattendue pendant l'import : {error}", Outcome.REFUSED
    target = _free_name(folder, ERRORS_DIR, claim.name)
    os.rename(claim.name, target, src_dir_fd=folder.fd(claim.where), dst_dir_fd=folder.fd(ERRORS_DIR))
    record.outcome, record.reason, record.invoice = outcome, reason, invoice
    record.path = folder.path(ERRORS_DIR, target)
    record.save()
    _write_note(folder, ERRORS_DIR, target, reason if outcome == Outcome.DUPLICATE else f"Refusée : {reason}")
    logger.info("intake: %s of %s %s: %s", record.name, company.code, outcome, reason)
    return _report(record)


def _read_claimed(folder: ScanFolder, claim: _Claim) -> bytes:
    """The claimed file's bytes, read through a descriptor that no link can redirect."""
    try:
        descriptor = os.open(claim.name, _READ_FLAGS, dir_fd=folder.fd(claim.where))
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise _Refused(LINK_REASON) from None
        raise
    with os.fdopen(descriptor, "rb") as stream:
        found = os.fstat(descriptor)
        if not stat.S_ISREG(found.st_mode):
            raise _Refused(NOT_A_FILE_REASON)
        if found.st_size > MAX_BYTES:
            raise _Refused(str(too_large(found.st_size)))
        data = stream.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise _Refused(str(too_large(len(data))))
    return data


def _invoice_link(invoice: Invoice) -> str:
    return reverse("invoices:detail", args=[invoice.pk])


def already_received(invoice: Invoice, why: str) -> str:
    """The reason of a duplicate: « Déjà reçue : facture N° FA-12 (/factures/42/) — même fichier. »"""
    return f"Déjà reçue : facture N° {invoice.number} ({_invoice_link(invoice)}) — {why}."


def _already_in_processed(folder: ScanFolder, size: int, digest: str) -> str | None:
    """The name of a file of ``traités/`` with these bytes, or None. Each file there is hashed once per pass (its
    digest kept by name, inode, size and date: a file replaced or changed meanwhile is hashed again)."""
    with os.scandir(folder.fd(PROCESSED_DIR)) as entries:
        same_size = []
        for entry in entries:
            if entry.name.lower().endswith(NOTE_SUFFIX) or not entry.is_file(follow_symlinks=False):
                continue
            found = entry.stat(follow_symlinks=False)
            if found.st_size == size:  # only a file of that size can be the same
                same_size.append((entry.name, (entry.name, found.st_ino, found.st_size, found.st_mtime_ns)))
    for name, key in same_size:
        known = folder.processed_digests.get(key)
        if known is None:
            with contextlib.suppress(OSError):
                descriptor = os.open(name, _READ_FLAGS, dir_fd=folder.fd(PROCESSED_DIR))
                with os.fdopen(descriptor, "rb") as stream:
                    known = folder.processed_digests[key] = hashlib.file_digest(stream, "sha256").hexdigest()
        if known == digest:
            return name
    return None


# Why a file is « déjà reçue », in the order the checks are made: the first that finds an invoice says it.
_SAME_FILE, _SAME_INVOICE, _SAME_NUMBER = 0, 1, 2


def _duplicate(
    company: Company, digest: str, twin_key: str = "", supplier: Supplier | None = None, number: str = ""
) -> tuple[int, Invoice] | None:
    """The invoice that makes this file a duplicate, and why: the same file (``digest``) in any
    company of the group; the same invoice (``twin_key``: seller, number, date, amount) in any company of the group;
    the same supplier and number in ``company``. One statement whatever is asked, read through the indexes of each
    (``invoice_source_hash``, ``invoice_twin_key``, the supplier and number's unique constraint); the whole invoice
    is read only when there is one."""
    invoice, company_table = quote_name(Invoice._meta.db_table), quote_name(Company._meta.db_table)
    # The model's tables and columns; every value is a parameter. Each check keeps the order its own query had: the
    # latest invoice of that file (the model's ordering), the first twin of the group, the one of that number.
    # Each member is a subquery of its own (SQLite allows ORDER BY … LIMIT only there; PostgreSQL wants its alias).
    in_group = f"SELECT %s AS why, i.id FROM {invoice} i JOIN {company_table} c ON c.id = i.company_id"  # noqa: S608
    in_group += " WHERE c.connector_id = %s AND i.{column} = %s ORDER BY {order} LIMIT 1"
    latest = "i.invoice_date DESC, i.id DESC"
    parts = [in_group.format(column="source_hash", order=latest)]
    params: list = [_SAME_FILE, company.connector_id, digest]
    if twin_key:
        parts.append(in_group.format(column="twin_key", order="i.id"))
        params += [_SAME_INVOICE, company.connector_id, twin_key]
    if supplier is not None:
        parts.append(
            f"SELECT %s AS why, i.id FROM {invoice} i"  # noqa: S608
            f" WHERE i.company_id = %s AND i.supplier_id = %s AND i.number = %s ORDER BY {latest} LIMIT 1"
        )
        params += [_SAME_NUMBER, company.pk, supplier.pk, number]
    with connection.cursor() as cursor:
        members = [f"SELECT why, id FROM ({part}) AS check{n}" for n, part in enumerate(parts)]  # noqa: S608
        statement = parts[0] if len(parts) == 1 else f"{' UNION ALL '.join(members)} ORDER BY 1 LIMIT 1"
        cursor.execute(statement, params)
        found = cursor.fetchone()
    return None if found is None else (found[0], Invoice.objects.get(pk=found[1]))


def _refuse_if_imported(company: Company, digest: str) -> None:
    """The same file already made an invoice in the group (whichever company it was addressed to)."""
    found = _duplicate(company, digest)
    if found:
        raise _Refused(already_received(found[1], "même fichier"), outcome=Outcome.DUPLICATE, invoice=found[1])


def _addressee(company: Company, parsed: ParsedInvoice, memo: Memo | None = None) -> tuple[Company, str]:
    """The company of the group the invoice is addressed to (its buyer, BT-44…BT-48), and what to say of it.

    SFD knows its companies by SIREN and VAT number: a buyer with either is found among the active companies of
    the connector's group, or the file is refused naming that buyer. A buyer with neither (no identifier, or only
    ones SFD cannot compare: a GLN, a foreign registration number) leaves the invoice in the company whose folder
    received it — the folder is then the only sign of its addressee."""
    buyer = parsed.buyer
    if not buyer.identified:
        return company, ""
    candidates = []
    memo = memo or Memo()
    group = memo.get(
        ("group", company.connector_id),
        lambda: list(Company.objects.filter(connector_id=company.connector_id, active=True).order_by("code", "pk")),
    )
    for other in group:
        vats = {other.vat_number.upper()} | ({french_vat_number(other.siren)} if other.siren else set())
        if (buyer.siren and other.siren == buyer.siren) or (buyer.vat and buyer.vat in vats):
            candidates.append(other)
    if any(other.pk == company.pk for other in candidates):
        return company, ""
    if len(candidates) == 1:
        target = candidates[0]
        return (
            target,
            f"Adressée à la société {target.code} ({target.name}, {buyer.label}) : facture créée dans {target.code}.",
        )
    if candidates:
        codes = ", ".join(other.code for other in candidates)
        raise _Refused(
            f"Adressée à {buyer.label}, qui est l'identifiant de plusieurs sociétés ({codes}) : déposez-la dans le"
            " répertoire de scan de la bonne société."
        )
    raise _Refused(
        f"Adressée à {buyer.label}, qui n'est aucune société du groupe : refusée. Vérifiez le SIREN des sociétés"
        " (Administration → Société, « Mettre à jour les sociétés ») ou renvoyez la facture à son destinataire."
    )


def french_vat_number(siren: str) -> str:
    """The French VAT number of a SIREN: FR, its key (12 + 3 × (SIREN mod 97)) mod 97, the SIREN."""
    key = (12 + 3 * (int(siren) % 97)) % 97 if siren.isascii() and siren.isdigit() else 0
    return f"FR{key:02d}{siren}"


def _twin_key(parsed: ParsedInvoice) -> str:
    return hashlib.sha256(parsed.twin_key.encode()).hexdigest()


def _import(company: Company, folder: ScanFolder, claim: _Claim, record: IntakeFile, actor) -> FileReport:
    data = _read_claimed(folder, claim)
    digest = hashlib.sha256(data).hexdigest()
    record.size, record.sha256 = len(data), digest
    _refuse_if_imported(company, digest)
    twin = _already_in_processed(folder, len(data), digest)
    if twin:
        raise _Refused(
            f"Déjà reçue : le même fichier est déjà dans {PROCESSED_DIR}/ ({readable_name(twin)}).",
            outcome=Outcome.DUPLICATE,
        )
    kind = image_kind(data)
    if kind:
        return _import_paper(company, folder, claim, record, digest, actor, kind)
    try:
        parsed = parse_einvoice(data, record.name)
    except NoEmbeddedInvoice:
        return _import_paper(company, folder, claim, record, digest, actor, KIND_PDF)
    except EInvoiceError as error:
        raise _Refused(str(error)) from None
    target, routing = _addressee(company, parsed, folder.memo)
    record.routed_to = target if target.pk != company.pk else None
    try:
        with transaction.atomic():
            invoice, reasons = _create(target, folder, claim, parsed, digest, actor, routing)
            record.outcome, record.invoice = Outcome.CREATED, invoice
            record.reason = "\n".join(reasons)
            record.path = folder.path(claim.where, claim.name)
            record.save()
    except IntegrityError:
        # A unique constraint (the twin key, or supplier and number): the same invoice came in through another file
        # meanwhile.
        previous = Invoice.objects.filter(company=target, twin_key=_twin_key(parsed)).first()
        if previous:
            raise _Refused(
                already_received(previous, "même facture arrivée par un autre fichier"),
                outcome=Outcome.DUPLICATE,
                invoice=previous,
            ) from None
        raise _Refused(
            f"Déjà reçue : la facture N° {parsed.number} de ce fournisseur est arrivée par un autre fichier.",
            outcome=Outcome.DUPLICATE,
        ) from None
    label = invoice.get_status_display()
    if invoice.status == Invoice.Status.TO_COMPLETE:
        note = f"Importée, à compléter : facture n° {invoice.number} (id {invoice.pk}).\n{record.reason}"
    else:
        note = f"Importée : facture n° {invoice.number} (id {invoice.pk}), statut « {label} ».\n{record.reason}"
    _write_note(folder, claim.where, claim.name, note.strip())
    logger.info("intake: %s of %s imported as invoice %s (%s)", record.name, company.code, invoice.pk, invoice.status)
    return _report(record)


def _import_paper(
    company: Company, folder: ScanFolder, claim: _Claim, record: IntakeFile, digest: str, actor, kind: str
) -> FileReport:
    """A scan (a PDF without an e-invoice, a TIFF, a JPEG, a PNG): its invoice *à compléter* at once, read later
    by a worker (``invoices.paper``); the document kept unchanged in ``traités/``."""
    with transaction.atomic():
        _lock_imports(company)
        _refuse_if_imported(company, digest)
        target = _free_name(folder, PROCESSED_DIR, claim.name)
        os.rename(claim.name, target, src_dir_fd=folder.fd(claim.where), dst_dir_fd=folder.fd(PROCESSED_DIR))
        claim.where, claim.name = PROCESSED_DIR, target
        invoice = paper_invoice_create(
            company=company, source_file=folder.path(PROCESSED_DIR, target), digest=digest, kind=kind, actor=actor
        )
        record.outcome, record.invoice, record.reason = Outcome.CREATED, invoice, reading_message()
        record.path = folder.path(PROCESSED_DIR, target)
        record.save()
    _write_note(folder, PROCESSED_DIR, target, f"Facture papier importée, à compléter (id {invoice.pk}) : lecture OCR.")
    logger.info("intake: %s of %s imported as paper invoice %s", record.name, company.code, invoice.pk)
    return _report(record)


def _refuse_duplicates(company: Company, digest: str, parsed: ParsedInvoice, supplier: Supplier | None) -> None:
    """Under the company's lock: the same file already made an invoice in the group; or the same invoice came in
    through another file. A seller numbers its invoices once for all its customers: the same invoice in any company
    of the group is this one (a twin that names its buyer differently, or not at all, may have been routed
    elsewhere)."""
    found = _duplicate(company, digest, _twin_key(parsed), supplier, parsed.number)
    if found is None:
        return
    why, twin = found
    if why == _SAME_FILE:
        reason = "même fichier"
    elif why == _SAME_INVOICE:
        reason = "même facture (fournisseur, numéro, date et montant)"
    else:
        reason = f"{supplier.code} {supplier.label} a déjà une facture de ce numéro"
    raise _Refused(already_received(twin, reason), outcome=Outcome.DUPLICATE, invoice=twin)


def _lock_imports(company: Company) -> None:
    """Imports of one company are serialised from here to the commit (the company's row locked)."""
    with connection.cursor() as cursor:
        table = quote_name(Company._meta.db_table)
        # SQLite has no row locks (and no FOR UPDATE): its one writer at a time serialises the imports there.
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        cursor.execute(f"SELECT 1 FROM {table} WHERE id = %s{lock}", [company.pk])  # noqa: S608 - the model's table
        if cursor.fetchone() is None:
            raise Company.DoesNotExist(f"Company {company.pk} does not exist.")


def _corrected_invoice(company: Company, parsed: ParsedInvoice, supplier: Supplier | None) -> Invoice | None:
    """The invoice a credit note or a corrective invoice corrects (BT-25), when SFD has it: same company, same
    supplier (or, while the supplier is unknown, the same seller in the document)."""
    if not parsed.preceding:
        return None
    # What the choice reads (the key, the supplier, the seller's key the document gave), not the whole rows: the
    # invoice found is read once chosen.
    candidates = (
        Invoice.objects.filter(
            company=company, kind=Invoice.Kind.INVOICE, number__in=[number for number, _date in parsed.preceding]
        )
        .order_by("-invoice_date", "-pk")
        .values_list("pk", "supplier_id", KT("einvoice__seller__key"))
    )
    for pk, supplier_id, seller_key in candidates:
        if (supplier is not None and supplier_id == supplier.pk) or seller_key == parsed.seller.key:
            return Invoice.objects.get(pk=pk)
    return None


def _create(
    company: Company,
    folder: ScanFolder,
    claim: _Claim,
    parsed: ParsedInvoice,
    digest: str,
    actor,
    routing: str,
) -> tuple[Invoice, list[str]]:
    """The invoice, in ``company`` (the addressee); what the file's record says of it."""
    # Imports of one company are serialised from here to the commit: the checks below hold against another scan
    # importing the same file or the same invoice under another name at the same moment.
    _lock_imports(company)
    supplier, reasons = _supplier(company, parsed, folder.memo)
    _refuse_duplicates(company, digest, parsed, supplier)
    lines, line_reasons, known = _lines(company, supplier, parsed, folder.memo)
    reasons += line_reasons + list(parsed.warnings)
    target = _free_name(folder, PROCESSED_DIR, claim.name)
    os.rename(claim.name, target, src_dir_fd=folder.fd(claim.where), dst_dir_fd=folder.fd(PROCESSED_DIR))
    claim.where, claim.name = PROCESSED_DIR, target
    source_file = folder.path(PROCESSED_DIR, target)
    corrected = _corrected_invoice(company, parsed, supplier)
    facts = parsed.facts()
    facts["seller"]["key"] = parsed.seller.key
    message = f"Facture importée du répertoire de scan ({FORMAT_LABELS[parsed.source_format]}) : {source_file}."
    invoice = invoice_insert(
        company=company,
        supplier=supplier,
        number=parsed.number,
        lines=lines,
        actor=actor,
        event_message=f"{message} {routing}".strip(),
        kind=Invoice.Kind.CREDIT_NOTE if parsed.credit_note else Invoice.Kind.INVOICE,
        invoice_date=parsed.issue_date,
        due_date=parsed.due_date,
        currency=parsed.currency,
        exchange_rate=parsed.exchange_rate,
        total_ht=parsed.total_ht,
        total_tva=parsed.total_tva,
        total_ttc=parsed.total_ttc,
        corrects=corrected,
        corrected_number=parsed.preceding[0][0][:60] if parsed.preceding else "",
        source_file=source_file,
        source_hash=digest,
        source_format=parsed.source_format,
        twin_key=_twin_key(parsed),
        einvoice=facts,
        # Ours first: they say why the validation's « fournisseur manquant »… happened.
        reasons=reasons,
        known=known,
    )
    said = [routing, *parsed.notes]
    if invoice.status == Invoice.Status.TO_COMPLETE:
        said.append(invoice.incomplete_reason)
    return invoice, [text for text in said if text]


def _supplier(company: Company, parsed: ParsedInvoice, memo: Memo | None = None) -> tuple[Supplier | None, list[str]]:
    memo = memo or Memo()
    for field_name, value in (("siren", parsed.seller_siren), ("vat_number", parsed.seller_vat)):
        if not value:
            continue
        candidates = memo.get(
            ("suppliers", company.pk, field_name, value),
            lambda field_name=field_name, value=value: list(
                Supplier.objects.filter(company=company, **{field_name: value}).order_by("code")
            ),
        )
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


def _expense_account(company: Company, supplier: Supplier | None, memo: Memo) -> tuple[Account | None, list[str]]:
    if supplier is None:
        return None, []
    code = supplier.expense_account_code
    if not code:
        return None, [f"Aucun compte de charge pour le fournisseur {supplier.code} : choisissez celui de chaque ligne."]
    account = memo.get(
        ("account", company.pk, code), lambda: Account.objects.filter(company=company, code=code).first()
    )
    if account is None:
        return None, [
            f"Compte de charge {code} du fournisseur {supplier.code} absent du référentiel : choisissez celui de"
            " chaque ligne."
        ]
    if not account.usable:
        return None, [f"Compte de charge {code} du fournisseur {supplier.code} inactif : choisissez un autre compte."]
    return account, []


# The EN 16931 categories whose lines carry no VAT on the invoice, and those whose VAT the buyer self-assesses.
ZERO_RATE_CATEGORIES = ("Z", "E", "G", "O")
SELF_ASSESSED_CATEGORIES = ("AE", "K")
CATEGORY_LABELS = {
    "S": "taux normal", "Z": "taux zéro", "E": "exonérée", "AE": "autoliquidation", "K": "intracommunautaire",
    "G": "exportation", "O": "hors champ de la TVA", "L": "Canaries (IGIC)", "M": "Ceuta et Melilla (IPSI)",
}  # fmt: skip


def tax_code_for(category: str, rate: Decimal | None, tax_codes: list[TaxCode]) -> TaxCode | None:
    """The referential's code for a line of this VAT category and rate: the same category (and rate, for the
    categories that carry VAT); a self-assessed code for AE and K, whatever its rate (the invoice says 0, the
    code says what the buyer owes); for a category without VAT and without a code of its own, any code at 0 %
    that is not self-assessed (exempt first)."""
    category = category or ("S" if rate else "")
    if not category:
        return None
    same = [code for code in tax_codes if code.category == category]
    if category in SELF_ASSESSED_CATEGORIES:
        return next((code for code in same if code.collected_account), None)
    plain = [code for code in tax_codes if not code.collected_account]
    if category in ZERO_RATE_CATEGORIES or not rate:
        found = [code for code in same if not code.collected_account and code.rate == 0]
        found += sorted(
            (code for code in plain if code.rate == 0 and code.category in ZERO_RATE_CATEGORIES),
            key=lambda code: code.category != "E",
        )
        return found[0] if found else None
    return next((code for code in plain if code.category == category and code.rate == rate), None)


def _lines(
    company: Company, supplier: Supplier | None, parsed: ParsedInvoice, memo: Memo | None = None
) -> tuple[list[LineData], list[str], list]:
    """The lines to create, the reasons to leave the invoice *à compléter*, and the account and tax codes they
    name (what the invoice's status is computed from, without reading them again)."""
    memo = memo or Memo()
    account, reasons = _expense_account(company, supplier, memo)
    tax_codes = memo.get(
        ("tax_codes", company.pk),
        lambda: list(
            TaxCode.objects.filter(company=company, active=True, gone_upstream_at__isnull=True).order_by("code")
        ),
    )
    signed = [-line.amount_ht if line.kind == KIND_ALLOWANCE else line.amount_ht for line in parsed.lines]
    rounded = round_to_total(signed, parsed.total_ht)
    unmatched: dict = {}
    lines = []
    for index, (line, amount) in enumerate(zip(parsed.lines, rounded, strict=True), start=1):
        tax_code = tax_code_for(line.vat_category, line.vat_rate, tax_codes)
        if tax_code is None:
            unmatched.setdefault((line.vat_category, line.vat_rate), []).append(str(index))
        kind = InvoiceLine.Kind.CHARGE if line.kind == KIND_CHARGE else InvoiceLine.Kind.LINE
        if amount < 0 or (amount == 0 and line.kind == KIND_ALLOWANCE):
            kind = InvoiceLine.Kind.ALLOWANCE
        lines.append(
            LineData(
                label=line.label,
                amount_ht=abs(amount),
                account_id=account.pk if account else None,
                tax_code_id=tax_code.pk if tax_code else None,
                kind=kind,
                vat_category=line.vat_category,
                source_amount=line.amount_ht if line.amount_ht != cents(line.amount_ht) else None,
            )
        )
    for (category, rate), indexes in unmatched.items():
        where = f"ligne {indexes[0]}" if len(indexes) == 1 else f"lignes {', '.join(indexes)}"
        if category in SELF_ASSESSED_CATEGORIES:
            reasons.append(
                f"Aucun code TVA d'autoliquidation actif pour la catégorie {category} ({CATEGORY_LABELS[category]},"
                f" {where}) : choisissez le code TVA."
            )
        elif rate is None and not category:
            reasons.append(f"Taux de TVA absent de la facture ({where}) : choisissez le code TVA.")
        elif category in ("", "S") and rate:
            reasons.append(f"Aucun code TVA actif au taux de {french_rate(rate)} % ({where}) : choisissez le code TVA.")
        else:
            label = CATEGORY_LABELS.get(category, category)
            rate_text = f" au taux de {french_rate(rate)} %" if rate else ""
            reasons.append(
                f"Aucun code TVA actif pour la catégorie {category} ({label}){rate_text} ({where}) : choisissez le"
                " code TVA."
            )
    return lines, reasons, [*tax_codes, *([account] if account else [])]


# --- « Réessayer » -----------------------------------------------------------------------------------------


def intake_file_retry(*, intake_file: IntakeFile, actor) -> FileReport:
    """Import again a file that was refused or found already received (after a referential update brought its
    supplier, an invoice was deleted…): it goes from ``erreurs/`` through the intake as if just dropped."""
    if intake_file.outcome not in (Outcome.REFUSED, Outcome.DUPLICATE):
        raise IntakeRetryError(_("Seul un fichier refusé ou déjà reçu peut être réessayé."))
    company = intake_file.company
    try:
        folder = open_scan_folder(company)
    except (FolderError, OSError) as error:
        raise IntakeRetryError(str(error)) from None
    with folder:
        where = PurePosixPath(intake_file.path)
        if where.parent != PurePosixPath(folder.relative, ERRORS_DIR) or not folder.exists(ERRORS_DIR, where.name):
            raise IntakeRetryError(
                _("Le fichier n'est plus dans %(folder)s/ : il ne peut pas être réessayé.") % {"folder": ERRORS_DIR}
            )
        claimed = _free_name(folder, CLAIMED_DIR, where.name)
        os.rename(where.name, claimed, src_dir_fd=folder.fd(ERRORS_DIR), dst_dir_fd=folder.fd(CLAIMED_DIR))
        # The note said why it was refused; a new one will say what happens now.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(where.name + NOTE_SUFFIX, dir_fd=folder.fd(ERRORS_DIR))
        intake_file.path = folder.path(CLAIMED_DIR, claimed)
        intake_file.outcome, intake_file.reason, intake_file.invoice = Outcome.PENDING, "", None
        intake_file.save()
        audit_record(
            actor=actor,
            action="intake.retry",
            summary=_("Nouvel import du fichier %(name)s") % {"name": intake_file.name},
            company_code=company.code,
            details={"intake_file": intake_file.pk, "path": intake_file.path},
        )
        return _process(company, folder, _Claim(CLAIMED_DIR, claimed), intake_file, actor)
