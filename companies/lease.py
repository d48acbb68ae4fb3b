"""One sync per company at a time, across processes and machines: a lease on the company row.

Its holder takes it with a conditional UPDATE and renews it from a thread of its own every quarter of
``SYNC_LEASE_SECONDS``, whatever the sync is doing (a slow call to Sage, a large transaction): a live sync keeps the
company however long it takes, and a dead worker's lease runs out one lease after its last renewal, when the reaper
dispatches its work again. The referential pull and the export share it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
from collections.abc import Iterator

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Q
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from .models import Company

logger = logging.getLogger(__name__)


def lease_release_time(until: dt.datetime | None) -> str:
    """The local time at which a company held by a sync frees at the latest if its worker died (its lease's end)."""
    return date_format(timezone.localtime(until), "H:i") if until else ""


class CompanyBusy(Exception):
    """Another sync holds the company (« déjà en cours »), until its lease ends unless its holder renews it."""

    def __init__(self, company: Company, label: str, until: dt.datetime | None = None):
        self.company = company
        self.label = label
        self.until = until
        values = {"company": company.code, "what": label or _("synchronisation"), "time": lease_release_time(until)}
        if until is None:
            message = _("Une synchronisation est déjà en cours pour la société %(company)s (%(what)s).")
        else:
            message = _(
                "Une synchronisation est déjà en cours pour la société %(company)s (%(what)s) ; si elle s'est"
                " interrompue, la société sera libérée au plus tard à %(time)s."
            )
        super().__init__(message % values)

    def waiting(self) -> str:
        """What a task waiting for the company says meanwhile (it tries again shortly)."""
        values = {"what": self.label or _("synchronisation"), "time": lease_release_time(self.until)}
        if self.until is None:
            message = _("En attente : %(what)s en cours pour cette société.")
        else:
            message = _(
                "En attente : %(what)s en cours pour cette société ; si elle s'est interrompue, la société sera"
                " libérée au plus tard à %(time)s."
            )
        return message % values


def _lease_until(now: dt.datetime | None = None) -> dt.datetime:
    return (now or timezone.now()) + dt.timedelta(seconds=settings.SYNC_LEASE_SECONDS)


def company_lease_take(*, company_id: int, token: str, label: str) -> bool:
    """Take the lease on the company for one sync with a conditional UPDATE; True if this token now holds it.

    The same token may take it again (a task redelivered after its worker died takes its own lease back).
    """
    now = timezone.now()
    taken = (
        Company.objects.filter(pk=company_id)
        .filter(Q(sync_lease_until__isnull=True) | Q(sync_lease_until__lt=now) | Q(sync_lease_token=token))
        .update(sync_lease_token=token, sync_lease_label=label, sync_lease_until=_lease_until(now))
    )
    return taken == 1


def company_lease_renew(*, company_id: int, token: str) -> bool:
    """Extend the lease; False if the lease was lost (it expired and someone else took it)."""
    return Company.objects.filter(pk=company_id, sync_lease_token=token).update(sync_lease_until=_lease_until()) == 1


def company_lease_release(*, company_id: int, token: str) -> None:
    Company.objects.filter(pk=company_id, sync_lease_token=token).update(
        sync_lease_token="", sync_lease_label="", sync_lease_until=None
    )


class _LeaseHeartbeat(threading.Thread):
    """Renews one lease every quarter of the lease, on a database connection of its own, until stopped."""

    def __init__(self, company_id: int, token: str):
        super().__init__(name=f"lease-heartbeat-{company_id}", daemon=True)
        self.company_id, self.token = company_id, token
        self.stopped = threading.Event()

    def run(self) -> None:
        interval = settings.SYNC_LEASE_SECONDS / 4
        try:
            while not self.stopped.wait(interval):
                try:
                    if not company_lease_renew(company_id=self.company_id, token=self.token):
                        # Taken over after an expiry: the sync finds out at its next renewal and stops.
                        return
                except DatabaseError as error:
                    # The database may be back at the next beat; the lease covers three missed ones.
                    logger.warning("lease of company %s not renewed: %s", self.company_id, error)
                    connection.close()
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=settings.SYNC_LEASE_SECONDS)


@contextlib.contextmanager
def company_leased(company: Company, *, token: str, label: str) -> Iterator[None]:
    if not company_lease_take(company_id=company.pk, token=token, label=label):
        holder = Company.objects.filter(pk=company.pk).values("sync_lease_label", "sync_lease_until").first() or {}
        raise CompanyBusy(company, holder.get("sync_lease_label") or "", holder.get("sync_lease_until"))
    # A lease taken inside a transaction is seen by no other connection until it commits: another connection could
    # neither renew it nor needs to (the holder's own renewals, and its commit, do).
    heartbeat = None if connection.in_atomic_block else _LeaseHeartbeat(company.pk, token)
    if heartbeat is not None:
        heartbeat.start()
    try:
        yield
    finally:
        if heartbeat is not None:
            heartbeat.stop()
        company_lease_release(company_id=company.pk, token=token)
