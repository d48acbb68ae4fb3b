"""Writes of the companies app: the referential pull, company settings (the per-company lease is ``lease``)."""

from __future__ import annotations

import datetime as dt
import logging
import time
import unicodedata
import uuid
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from django.conf import settings
from django.contrib.humanize.templatetags.humanize import intcomma
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from connectors.models import Connector
from connectors.sage_frp1000.client import SageError
from connectors.sage_frp1000.schemas import KINDS, parse_timestamp
from core.services import audit_record

from .bulk import UpsertCounts, referential_codes_held, referential_upsert
from .lease import company_lease_renew, company_leased
from .models import KIND_LABELS, REFERENTIAL_KINDS, Company
from .pull_checks import incremental_read_missed, too_many_gone

logger = logging.getLogger(__name__)

PULL_LABEL = "mise à jour du référentiel"
MAX_PROBLEMS_KEPT = 50


# --- the referential pull ----------------------------------------------------------------------------


@dataclass
class PullOutcome:
    status: str
    counts: dict[str, dict] = field(default_factory=dict)
    problems: list[dict] = field(default_factory=list)
    # What the pull decided and says in French (a mass deactivation applied after a full read, or refused).
    notices: list[str] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0


class _Progress:
    """Writes the progress line of the Société screen, at most once per interval (one small UPDATE)."""

    def __init__(self, company: Company, token: str):
        self.company = company
        self.token = token
        self.interval = settings.PULL_PROGRESS_INTERVAL
        self.last = 0.0

    def __call__(self, text: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.interval:
            return
        self.last = now
        Company.objects.filter(pk=self.company.pk).update(pull_progress=text[:200])
        company_lease_renew(company_id=self.company.pk, token=self.token)


def company_pull_request(*, companies: list[Company], actor, full: bool = False) -> tuple[list[Company], list[Company]]:
    """Mark companies as waiting for a pull; returns (queued, already running). The caller enqueues.

    ``full`` (« Mise à jour complète »): the watermarks are forgotten as well, so that whichever message runs the
    pull (this one, or the reaper's if this one is lost) reads every kind in full.
    """
    queued, busy = [], []
    now = timezone.now()
    stale = now - dt.timedelta(seconds=settings.SYNC_LEASE_SECONDS)
    for company in companies:
        free = Q(sync_lease_until__isnull=True) | Q(sync_lease_until__lt=now)
        updated = (
            Company.objects.filter(pk=company.pk)
            .filter(
                ~Q(pull_status__in=[Company.PullStatus.QUEUED, Company.PullStatus.RUNNING])
                # « En attente » for longer than a lease with the company free: its message was lost.
                | Q(free, pull_status=Company.PullStatus.QUEUED, pull_requested_at__lt=stale)
                # « En cours » with the company free: its worker died (a live pull renews its lease).
                | Q(free, pull_status=Company.PullStatus.RUNNING)
            )
            .update(
                pull_status=Company.PullStatus.QUEUED,
                pull_requested_at=now,
                pull_progress=_("En attente d'un worker…"),
                pull_error="",
                **({"pull_watermarks": {}} if full else {}),
            )
        )
        if not updated:
            # What the screen says of it: who holds the company, and until when at the latest.
            company.refresh_from_db(fields=["pull_requested_at", "sync_lease_label", "sync_lease_until"])
        (queued if updated else busy).append(company)
    if queued:
        summary = _("Mise à jour complète demandée : %(codes)s") if full else _("Mise à jour demandée : %(codes)s")
        audit_record(
            actor=actor,
            action="referential.pull_requested",
            summary=summary % {"codes": ", ".join(c.code for c in queued)},
            details={"companies": [c.code for c in queued], "full": full},
        )
    return queued, busy


def _company_info(client, company: Company) -> dict | None:
    items, _problems = client.companies()
    return next((item for item in items if item["code"] == company.code), None)


def company_referential_pull(
    *, company: Company, token: str | None = None, full: bool = False, actor=None
) -> PullOutcome:
    """Pull the six referential kinds of one company from its Sage FRP 1000 server.

    Everything is fetched (and validated item by item) before anything is written, then written in one
    transaction: a server that fails half-way leaves nothing half-written. After the first pull, only what
    changed since the newest ``modified_at`` seen is fetched, plus the list of codes to find what was deleted.
    Raises ``CompanyBusy`` if another sync holds the company.
    """
    token = token or uuid.uuid4().hex
    with company_leased(company, token=token, label=PULL_LABEL):
        return company_referential_pull_leased(company=company, token=token, full=full, actor=actor)


def company_referential_pull_leased(*, company: Company, token: str, full: bool = False, actor=None) -> PullOutcome:
    """The pull, for a caller that already holds the company's lease under ``token`` (an automatic run)."""
    started = time.monotonic()
    now = timezone.now()
    Company.objects.filter(pk=company.pk).update(
        pull_status=Company.PullStatus.RUNNING,
        pull_started_at=now,
        pull_progress=_("Connexion à Sage FRP 1000…"),
        pull_error="",
    )
    company.refresh_from_db()
    progress = _Progress(company, token)
    try:
        outcome = _pull(company, full=full, progress=progress, started=started, actor=actor)
    except SageError as error:
        outcome = PullOutcome(status=Company.PullStatus.FAILED, error=error.message)
        logger.warning("pull of %s failed: %s %s", company.code, error.message, error.detail)
    except Exception:
        logger.exception("pull of %s failed", company.code)
        outcome = PullOutcome(
            status=Company.PullStatus.FAILED,
            error=_("Erreur interne pendant la mise à jour : voir les journaux."),
        )
    outcome.seconds = round(time.monotonic() - started, 2)
    if outcome.status == Company.PullStatus.FAILED:
        Company.objects.filter(pk=company.pk).update(
            pull_status=outcome.status,
            pull_finished_at=timezone.now(),
            pull_progress="",
            pull_error=outcome.error,
            pull_result={"seconds": outcome.seconds},
        )
        audit_record(
            actor=actor,
            action="referential.pull_failed",
            summary=_("Échec de la mise à jour de %(code)s : %(error)s")
            % {"code": company.code, "error": outcome.error},
            company_code=company.code,
        )
    return outcome


@dataclass
class _Read:
    """One read of one kind: its items, every code Sage lists (malformed items included), what could not be read."""

    items: list[dict]
    present: set[str]
    problems: list[dict]


def _read(client, company: Company, kind: str, *, since, progress: _Progress) -> _Read:
    """What changed since ``since`` plus the list of every code, or (``since`` None) the whole kind."""
    items: list[dict] = []
    present: set[str] = set()
    problems: list[dict] = []
    for page in client.iter_referential(
        company.code, kind, modified_since=since, page_size=settings.REFERENTIAL_PAGE_SIZE
    ):
        items.extend(page.items)
        for problem in page.problems:
            problems.append({"kind": kind} | problem.as_dict())
            if problem.code:
                present.add(problem.code)
        progress(
            ngettext("%(kind)s : %(count)s élément reçu", "%(kind)s : %(count)s éléments reçus", len(items))
            % {"kind": KIND_LABELS[kind], "count": len(items)}
        )
    if since is None:
        present.update(item["code"] for item in items)
    else:
        present = client.referential_codes(company.code, kind)
    return _Read(items, present, problems)


# What a pull says when it applied a mass deactivation, per kind (the nouns and their agreement); one literal
# ngettext per kind, so that makemessages puts each in the catalogue.
_GONE_CONFIRMED = {
    "accounts": lambda count: ngettext(
        "%(count)s compte absent de Sage FRP 1000 désactivé après vérification complète",
        "%(count)s comptes absents de Sage FRP 1000 désactivés après vérification complète",
        count,
    ),
    "suppliers": lambda count: ngettext(
        "%(count)s fournisseur absent de Sage FRP 1000 désactivé après vérification complète",
        "%(count)s fournisseurs absents de Sage FRP 1000 désactivés après vérification complète",
        count,
    ),
    "journals": lambda count: ngettext(
        "%(count)s journal absent de Sage FRP 1000 désactivé après vérification complète",
        "%(count)s journaux absents de Sage FRP 1000 désactivés après vérification complète",
        count,
    ),
    "tax-codes": lambda count: ngettext(
        "%(count)s code TVA absent de Sage FRP 1000 désactivé après vérification complète",
        "%(count)s codes TVA absents de Sage FRP 1000 désactivés après vérification complète",
        count,
    ),
    "analytic-sections": lambda count: ngettext(
        "%(count)s section analytique absente de Sage FRP 1000 désactivée après vérification complète",
        "%(count)s sections analytiques absentes de Sage FRP 1000 désactivées après vérification complète",
        count,
    ),
    "payment-modes": lambda count: ngettext(
        "%(count)s mode de règlement absent de Sage FRP 1000 désactivé après vérification complète",
        "%(count)s modes de règlement absents de Sage FRP 1000 désactivés après vérification complète",
        count,
    ),
}


def _gone_confirmed(kind: str, count: int) -> str:
    return _GONE_CONFIRMED[kind](count) % {"count": intcomma(count)}


def _gone_refused(kind: str, count: int) -> str:
    return ngettext(
        "%(kind)s : %(count)s élément manquait dans la réponse de Sage FRP 1000, mais sa liste complète le contient"
        " encore : réponse jugée incomplète, rien n'a été modifié pour cette nature.",
        "%(kind)s : %(count)s éléments manquaient dans la réponse de Sage FRP 1000, mais sa liste complète les"
        " contient encore : réponse jugée incomplète, rien n'a été modifié pour cette nature.",
        count,
    ) % {"kind": KIND_LABELS[kind], "count": intcomma(count)}


def _pull(company: Company, *, full: bool, progress: _Progress, started: float, actor) -> PullOutcome:
    client = company.connector.client()
    with client:
        info = _company_info(client, company)
        if info is None:
            raise SageError(_("La société %(code)s n'existe pas dans Sage FRP 1000.") % {"code": company.code})
        fetched: dict[str, tuple[list[dict], set[str], set[str], set[str]]] = {}
        problems: list[dict] = []
        notices: list[str] = []
        watermarks = dict(company.pull_watermarks or {})
        for kind in KINDS:
            since = None if full or kind not in watermarks else parse_timestamp(watermarks[kind])
            read = _read(client, company, kind, since=since, progress=progress)
            held, marked_gone = referential_codes_held(REFERENTIAL_KINDS[kind], company.pk)
            if since is not None and incremental_read_missed(read, held, marked_gone):
                # Codes Sage lists whose items did not come, their ``modified_at`` older than what was asked: only a
                # full read brings them as Sage has them.
                read = _read(client, company, kind, since=None, progress=progress)
            if too_many_gone(read, held):
                missing = len(held - read.present)
                check = _read(client, company, kind, since=None, progress=progress)
                if not too_many_gone(check, held):
                    # Two answers that disagree: neither is applied, and the next pull asks again.
                    notices.append(_gone_refused(kind, missing))
                    logger.warning("pull of %s: %s %s missing from one answer only, kind left as is",
                                   company.code, missing, kind)  # fmt: skip
                    continue
                read = check
                notices.append(_gone_confirmed(kind, len(held - read.present)))
            problems.extend(read.problems)
            # Listed by Sage but unreadable (reported among the problems): no longer gone, kept as SFD last read them,
            # and no full read again at every pull for them.
            unreadable = (marked_gone & read.present) - {item["code"] for item in read.items}
            fetched[kind] = (read.items, read.present, unreadable, held)
            if read.items:
                newest = max(item["modified_at"] for item in read.items)
                if kind not in watermarks or newest > parse_timestamp(watermarks[kind]):
                    watermarks[kind] = newest.isoformat()

    progress(_("Enregistrement du référentiel…"), force=True)
    counts: dict[str, dict] = {}
    now = timezone.now()
    with transaction.atomic():
        for kind, (items, present, unreadable, held) in fetched.items():
            model = REFERENTIAL_KINDS[kind]
            result: UpsertCounts = referential_upsert(
                model, company_id=company.pk, items=items, present_codes=present, now=now, held_codes=held
            )
            if unreadable:
                model.objects.filter(company=company, code__in=unreadable).update(gone_upstream_at=None)
            counts[kind] = result.as_dict()
        refused = len(fetched) < len(KINDS)
        status = Company.PullStatus.PARTIAL if problems or refused else Company.PullStatus.SUCCEEDED
        Company.objects.filter(pk=company.pk).update(
            name=info["name"] or company.name,
            siren=info["siren"],
            vat_number=info["vat_number"],
            currency=info["currency"],
            closed_until=info["closed_until"],
            analytic_required=info["analytic_required"],
            exists_in_sage=True,
            pull_status=status,
            pull_finished_at=now,
            pull_progress="",
            pull_error="",
            pull_watermarks=watermarks,
            pull_result={
                "counts": counts,
                "problems": problems[:MAX_PROBLEMS_KEPT],
                "problem_count": len(problems),
                "notices": notices,
                "seconds": round(time.monotonic() - started, 2),
            },
        )
        audit_record(
            actor=actor,
            action="referential.pulled",
            summary=_("Référentiel de %(code)s mis à jour") % {"code": company.code},
            company_code=company.code,
            details={"counts": counts, "problem_count": len(problems), "notices": notices},
        )
    return PullOutcome(status=status, counts=counts, problems=problems, notices=notices)


def companies_discover(*, connector: Connector, actor) -> list[Company]:
    """Create the companies that exist in Sage FRP 1000 but not yet in SFD (without a scan directory).

    Safe when two administrators search at once: each company is created by one of them (the unique code per
    connector decides, the other finds it there), and each audit line lists what its own search created, written in
    the same transaction as the companies.
    """
    with connector.client(interactive=True) as client:
        items, _problems = client.companies()
    known = set(Company.objects.filter(connector=connector).values_list("code", flat=True))
    created = []
    with transaction.atomic():
        for item in items:
            if item["code"] in known:
                continue
            company, new = Company.objects.get_or_create(
                connector=connector,
                code=item["code"],
                defaults={
                    "name": item["name"],
                    "siren": item["siren"],
                    "vat_number": item["vat_number"],
                    "currency": item["currency"],
                    "closed_until": item["closed_until"],
                    "analytic_required": item["analytic_required"],
                },
            )
            if new:
                created.append(company)
        if created:
            audit_record(
                actor=actor,
                action="companies.discovered",
                summary=_("Sociétés ajoutées depuis Sage FRP 1000 : %(codes)s")
                % {"codes": ", ".join(c.code for c in created)},
                details={"companies": [c.code for c in created]},
            )
    return created


class ScanDirectoryConflict(ValueError):
    """The scan directory is another company's, or inside or above it; the message (French) names that company."""


def scan_directory_key(directory: str) -> tuple[str, ...]:
    """The folder as the file system may see it: its parts, compared without case (SMB and macOS shares ignore it)
    and in one Unicode form (« é » typed two ways is one folder)."""
    return tuple(
        unicodedata.normalize("NFC", part).casefold() for part in PurePosixPath(directory.strip()).parts if part
    )


def company_scan_directory_conflict(*, scan_directory: str, exclude_pk: int | None = None) -> Company | None:
    """The company whose scan directory is ``scan_directory``, or inside or above it: each folder is one company's,
    so that no company reads another's files (issue 13 §2)."""
    key = scan_directory_key(scan_directory)
    if not key:
        return None
    others = Company.objects.exclude(scan_directory="").exclude(pk=exclude_pk).order_by("code", "pk")
    for other in others.only("pk", "code", "name", "scan_directory"):
        other_key = scan_directory_key(other.scan_directory)
        if other_key and (key[: len(other_key)] == other_key or other_key[: len(key)] == key):
            return other
    return None


def scan_directory_conflict_message(other: Company, scan_directory: str) -> str:
    return _(
        "Le répertoire de scan « %(directory)s » est déjà celui de la société %(code)s (%(other)s), ou l'un est"
        " dans l'autre : chaque société a son propre dossier."
    ) % {"directory": scan_directory, "code": other.code, "other": other.scan_directory}


@transaction.atomic
def company_settings_update(*, company: Company, scan_directory: str, purchase_journal_code: str, actor) -> Company:
    if scan_directory:
        # Two administrators saving the same folder at the same moment: the rows are locked, the second one sees it.
        list(Company.objects.select_for_update().exclude(scan_directory="").values_list("pk", flat=True))
        other = company_scan_directory_conflict(scan_directory=scan_directory, exclude_pk=company.pk)
        if other is not None:
            raise ScanDirectoryConflict(scan_directory_conflict_message(other, scan_directory))
    # As stored: the form that validated the input has already written it onto ``company``.
    before = Company.objects.filter(pk=company.pk).values("scan_directory", "purchase_journal_code").get()
    company.scan_directory = scan_directory
    company.purchase_journal_code = purchase_journal_code
    company.save(update_fields=["scan_directory", "purchase_journal_code"])
    audit_record(
        actor=actor,
        action="company.settings_changed",
        summary=_("Paramètres de la société %(code)s modifiés") % {"code": company.code},
        company_code=company.code,
        details={
            "before": before,
            "after": {"scan_directory": scan_directory, "purchase_journal_code": purchase_journal_code},
        },
    )
    return company
