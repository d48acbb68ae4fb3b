"""« Imports »: what the screen writes — a reading of the scan folders asked from it (« Importer ») and its progress,
the refused files someone has now seen, and the file served back as it lies under ``SCAN_ROOT``.

Apart from ``services.py`` because a scan runs the intake (``intake.py``), which itself creates invoices through
``services.py``.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import BinaryIO

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from companies.models import Company

from .intake import STALE_CLAIM_SECONDS, IntakeReport, intake_companies, intake_company
from .models import IntakeFile, IntakeScan

logger = logging.getLogger(__name__)

Outcome = IntakeFile.Outcome

# A scan silent this long (no file done, no listing) died with its worker: the intake's own limit on a claim.
SCAN_STALE_SECONDS = STALE_CLAIM_SECONDS

_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


# --- « Importer » and its progress ------------------------------------------------------------------------


@transaction.atomic
def intake_scan_request(*, companies: Iterable[Company], actor) -> list[IntakeScan]:
    """One scan row per company, sharing one batch, each *en attente* until a worker takes it (the caller enqueues
    ``tasks.intake_scan_task`` on commit)."""
    batch, now = uuid.uuid4(), timezone.now()
    return IntakeScan.objects.bulk_create(
        IntakeScan(batch=batch, company=company, requested_by=actor, requested_at=now) for company in companies
    )


def _counts(report: IntakeReport, carried: dict[str, int]) -> dict[str, int]:
    counts = dict(carried)
    for outcome in Outcome:
        if report.count(outcome):
            counts[outcome.value] = counts.get(outcome.value, 0) + report.count(outcome)
    return counts


def intake_scan_run(*, scan_id: int) -> IntakeScan | None:
    """Read the scan's company folder, writing its progress as it goes. Not one transaction: each step is seen by
    the screen as soon as it is written. A scan delivered again after it finished does nothing; one whose worker
    died carries on with what is still in the folder, adding to what it had counted."""
    scan = IntakeScan.objects.select_related("company", "requested_by").filter(pk=scan_id).first()
    if scan is None or scan.status in (IntakeScan.Status.DONE, IntakeScan.Status.FAILED):
        return scan
    now = timezone.now()
    company = intake_companies().filter(pk=scan.company_id).first()
    if company is None:
        IntakeScan.objects.filter(pk=scan.pk).update(
            status=IntakeScan.Status.FAILED,
            finished_at=now,
            error=_("La société %(code)s est inactive ou n'a pas de répertoire de scan.") % {"code": scan.company.code},
        )
        scan.refresh_from_db()
        return scan
    # What a dead worker had done is in traités/ or erreurs/ now: never listed again, so never counted twice. A file
    # that was still being written is listed again: its « en attente » is not carried.
    carried = (
        {outcome: n for outcome, n in (scan.counts or {}).items() if outcome != Outcome.PENDING}
        if scan.status == IntakeScan.Status.RUNNING
        else {}
    )
    done_before = sum(carried.values())
    IntakeScan.objects.filter(pk=scan.pk).update(
        status=IntakeScan.Status.RUNNING, started_at=scan.started_at or now, heartbeat_at=now
    )

    def progress(report: IntakeReport, listed: int) -> None:
        try:
            IntakeScan.objects.filter(pk=scan.pk).update(
                found=done_before + listed, counts=_counts(report, carried), heartbeat_at=timezone.now()
            )
        except DatabaseError:
            # The progress is only what the screen shows: the import itself goes on.
            logger.exception("intake scan %s: progress not written", scan.pk)

    report = intake_company(company=company, actor=scan.requested_by, progress=progress)
    IntakeScan.objects.filter(pk=scan.pk).update(
        status=IntakeScan.Status.FAILED if report.error else IntakeScan.Status.DONE,
        found=done_before + len(report.files),
        counts=_counts(report, carried),
        error=report.error,
        heartbeat_at=timezone.now(),
        finished_at=timezone.now(),
    )
    scan.refresh_from_db()
    return scan


# --- « vu » -------------------------------------------------------------------------------------------------


def intake_files_mark_seen(*, intake_files: Iterable[IntakeFile]) -> int:
    """The refused files among ``intake_files`` have been shown to someone: the menu's badge no longer counts
    them. The rows keep their ``seen_at`` as it was read (the page still tells which ones were new)."""
    ids = [f.pk for f in intake_files if f.outcome == Outcome.REFUSED and f.seen_at is None]
    if not ids:
        return 0
    return IntakeFile.objects.filter(pk__in=ids, seen_at__isnull=True).update(seen_at=timezone.now())


# --- the file, as it lies under SCAN_ROOT -----------------------------------------------------------------


class IntakeFileUnavailable(Exception):
    """The file cannot be served; the message (French) says why."""


@dataclass
class OpenedFile:
    stream: BinaryIO
    filename: str


def download_name(intake_file: IntakeFile) -> str:
    """The name to offer the browser: the name as dropped, readable, without any character that has no place in a
    header (a control character in a file name is possible on a scanner's share)."""
    name = display_name(intake_file)
    cleaned = "".join("_" if unicodedata.category(char).startswith("C") else char for char in name).strip()
    return cleaned or "fichier"


def display_name(intake_file: IntakeFile) -> str:
    """The name as dropped, readable: a name that is not UTF-8 (an old Windows scanner's Latin-1 or Windows-1252)
    is read as Windows-1252 rather than shown with replacement characters."""
    raw = bytes(intake_file.name_bytes or b"")
    if not raw:
        return intake_file.name
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


def name_is_not_utf8(intake_file: IntakeFile) -> bool:
    raw = bytes(intake_file.name_bytes or b"")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def intake_file_open(*, intake_file: IntakeFile) -> OpenedFile:
    """The file where the intake last put it, opened read-only under ``SCAN_ROOT``: the path is the database's, never
    the request's; each folder of it is opened without following a link, and so is the file, which must be a
    regular file. ``IntakeFileUnavailable`` otherwise, with the reason in French."""
    where = PurePosixPath(intake_file.path)
    parts = where.parts
    if not parts or where.is_absolute() or any(part in ("", ".", "..") for part in parts):
        raise IntakeFileUnavailable(_("Emplacement du fichier invalide : il ne peut pas être téléchargé."))
    gone = IntakeFileUnavailable(
        _("Le fichier « %(name)s » n'est plus dans le répertoire de scan (%(path)s) : il a été déplacé ou supprimé.")
        % {"name": display_name(intake_file), "path": intake_file.path}
    )
    link = IntakeFileUnavailable(
        _(
            "« %(name)s » est un lien symbolique ou n'est pas un fichier ordinaire : SFD ne le suit pas et ne le"
            " sert pas."
        )
        % {"name": display_name(intake_file)}
    )
    try:
        current = os.open(os.fspath(settings.SCAN_ROOT), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        raise gone from None
    try:
        for part in parts[:-1]:
            try:
                inner = os.open(part, _DIRECTORY_FLAGS, dir_fd=current)
            except OSError as error:
                raise (link if error.errno in (errno.ELOOP, errno.ENOTDIR) else gone) from None
            os.close(current)
            current = inner
        descriptor = _open_last(current, parts[-1], intake_file, gone, link)
    finally:
        os.close(current)
    found = os.fstat(descriptor)
    if not stat.S_ISREG(found.st_mode):
        os.close(descriptor)
        raise link
    return OpenedFile(os.fdopen(descriptor, "rb"), download_name(intake_file))


def _open_last(folder: int, name: str, intake_file: IntakeFile, gone: Exception, link: Exception) -> int:
    # A hidden file left in place keeps the name it was dropped with, bytes that may not be UTF-8; every other file
    # was renamed to its readable name when the intake claimed it.
    names: list[str | bytes] = [name]
    raw = bytes(intake_file.name_bytes or b"")
    if raw and os.fsencode(name) != raw and raw.decode("utf-8", "replace") == name:
        names.append(raw)
    for candidate in names:
        try:
            return os.open(candidate, _READ_FLAGS, dir_fd=folder)
        except FileNotFoundError:
            continue
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise link from None
            raise gone from None
    raise gone
