"""One sync per company: a claim a live holder keeps renewing, that runs out one lease after its holder died, and the
reaper that then dispatches its work again."""

from __future__ import annotations

import datetime as dt
import time
from html import unescape
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from companies.lease import CompanyBusy, company_lease_take, company_leased
from companies.models import Company
from synchro.beat import orphans_reap
from synchro.models import SyncRun, SyncRunCompany
from synchro.runs import run_start
from tests.support.polling import wait_for

PARIS = ZoneInfo("Europe/Paris")


def _claim_until(company) -> dt.datetime | None:
    return Company.objects.filter(pk=company.pk).values_list("sync_lease_until", flat=True).get()


@pytest.mark.django_db(transaction=True)
def test_a_live_holder_keeps_its_claim_longer_than_its_lease(jno, settings):
    settings.SYNC_LEASE_SECONDS = 1
    with company_leased(jno, token="holder", label="export vers Sage FRP 1000"):
        first = _claim_until(jno)
        # Busy with something else for three leases (a slow call to Sage): the claim is renewed meanwhile. The sleep is
        # the behaviour under test (a holder that does not return for three leases), not a wait for a condition.
        time.sleep(3)
        assert _claim_until(jno) > timezone.now()
        assert _claim_until(jno) > first + dt.timedelta(seconds=1)
        assert not company_lease_take(company_id=jno.pk, token="intruder", label="x")
    assert _claim_until(jno) is None
    assert company_lease_take(company_id=jno.pk, token="next", label="x")


@pytest.mark.django_db(transaction=True)
def test_a_claim_nobody_renews_runs_out_after_one_lease(jno, settings):
    settings.SYNC_LEASE_SECONDS = 1
    # What a worker killed with SIGKILL leaves: a claim, and no thread to renew it. The clock stands still but when
    # the test moves it.
    with time_machine.travel(timezone.now(), tick=False) as clock:
        assert company_lease_take(company_id=jno.pk, token="dead-worker", label="x")
        assert not company_lease_take(company_id=jno.pk, token="other", label="x")
        clock.shift(0.9)
        assert not company_lease_take(company_id=jno.pk, token="other", label="x")
        clock.shift(0.3)
        assert company_lease_take(company_id=jno.pk, token="other", label="x")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_thread_leaves_no_connection_behind(jno, settings):
    settings.SYNC_LEASE_SECONDS = 1

    def connections_to_the_test_database() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
            return cursor.fetchone()[0]

    before = connections_to_the_test_database()
    with company_leased(jno, token="holder", label="x"):
        first = _claim_until(jno)
        wait_for(lambda: _claim_until(jno) > first, timeout=10, message="the heartbeat thread to renew the claim")
    assert connections_to_the_test_database() == before


def test_busy_says_until_when_the_company_is_held_at_the_latest(jno, settings):
    settings.SYNC_LEASE_SECONDS = 60
    with time_machine.travel(dt.datetime(2026, 12, 7, 14, 31, 10, tzinfo=PARIS), tick=False):
        assert company_lease_take(company_id=jno.pk, token="a-worker", label="export vers Sage FRP 1000")
        with pytest.raises(CompanyBusy) as busy, company_leased(jno, token="me", label="x"):
            pass
    assert str(busy.value) == (
        "Une synchronisation est déjà en cours pour la société JNO (export vers Sage FRP 1000) ; si elle s'est"
        " interrompue, la société sera libérée au plus tard à 14:32."
    )


# --- the reaper -------------------------------------------------------------------------------------------


@pytest.fixture
def line(jno):
    run = run_start(trigger=SyncRun.Trigger.EXPORT, user=None, companies=[jno], selection={"kind": "all"})
    return run.companies.get()


def _reap(django_capture_on_commit_callbacks) -> tuple[dict, int]:
    with django_capture_on_commit_callbacks() as dispatched:
        reaped = orphans_reap()
    return reaped, len(dispatched)


def test_a_line_en_cours_whose_claim_ran_out_is_dispatched_at_once(line, jno, django_capture_on_commit_callbacks):
    SyncRunCompany.objects.filter(pk=line.pk).update(status=SyncRunCompany.Status.RUNNING, started_at=timezone.now())
    Company.objects.filter(pk=jno.pk).update(
        sync_lease_token="dead", sync_lease_until=timezone.now() - dt.timedelta(seconds=1)
    )
    assert _reap(django_capture_on_commit_callbacks) == ({"lines": 1, "pulls": 0}, 1)
    line.refresh_from_db()
    assert line.status == SyncRunCompany.Status.QUEUED


def test_a_line_whose_holder_is_alive_is_left_alone(line, jno, django_capture_on_commit_callbacks):
    long_ago = timezone.now() - dt.timedelta(hours=1)
    SyncRunCompany.objects.filter(pk=line.pk).update(status=SyncRunCompany.Status.RUNNING, started_at=long_ago)
    company_lease_take(company_id=jno.pk, token="alive", label="simulation d'export")
    assert _reap(django_capture_on_commit_callbacks) == ({"lines": 0, "pulls": 0}, 0)


def test_a_line_en_attente_is_given_time_for_its_message(line, django_capture_on_commit_callbacks, settings):
    assert _reap(django_capture_on_commit_callbacks) == ({"lines": 0, "pulls": 0}, 0)
    SyncRunCompany.objects.filter(pk=line.pk).update(
        queued_at=timezone.now() - dt.timedelta(seconds=settings.SYNC_REAP_SECONDS + 1)
    )
    assert _reap(django_capture_on_commit_callbacks) == ({"lines": 1, "pulls": 0}, 1)


def test_a_pull_en_cours_whose_claim_ran_out_is_dispatched_again(jno, django_capture_on_commit_callbacks):
    Company.objects.filter(pk=jno.pk).update(
        pull_status=Company.PullStatus.RUNNING,
        pull_requested_at=timezone.now(),
        sync_lease_token="dead",
        sync_lease_until=timezone.now() - dt.timedelta(seconds=1),
    )
    assert _reap(django_capture_on_commit_callbacks) == ({"lines": 0, "pulls": 1}, 1)
    jno.refresh_from_db()
    assert jno.pull_status == Company.PullStatus.QUEUED


def test_a_pull_inside_an_automatic_run_comes_back_with_its_line(line, jno, django_capture_on_commit_callbacks):
    SyncRunCompany.objects.filter(pk=line.pk).update(status=SyncRunCompany.Status.RUNNING, started_at=timezone.now())
    Company.objects.filter(pk=jno.pk).update(pull_status=Company.PullStatus.RUNNING, sync_lease_until=None)
    assert _reap(django_capture_on_commit_callbacks) == ({"lines": 1, "pulls": 0}, 1)


def test_a_pull_message_for_a_request_already_served_does_nothing(jno, sage):
    from companies.tasks import company_pull

    Company.objects.filter(pk=jno.pk).update(pull_status=Company.PullStatus.SUCCEEDED)
    assert company_pull.apply(args=[jno.pk]).get() == "served"
    assert sage.stats().get("GET companies", 0) == 0


def test_an_export_waiting_for_the_company_says_until_when_at_the_latest(
    client, bob, line, jno, settings, django_capture_on_commit_callbacks
):
    from synchro.tasks import run_company_task
    from tests.conftest import give_companies, grant

    settings.SYNC_LEASE_SECONDS = 60
    with time_machine.travel(dt.datetime(2026, 12, 7, 14, 31, 10, tzinfo=PARIS), tick=False):
        assert company_lease_take(company_id=jno.pk, token="a-worker", label="mise à jour du référentiel")
        busy = CompanyBusy(jno, "mise à jour du référentiel", _claim_until(jno))
        assert busy.waiting() == (
            "En attente : mise à jour du référentiel en cours pour cette société ; si elle s'est interrompue, la"
            " société sera libérée au plus tard à 14:32."
        )
        # Every retry finds the company held: the line ends « déjà en cours », with the same time.
        assert run_company_task.apply(args=[line.pk]).get() == "busy"
        grant(bob, "synchro.view_synchronisations")
        give_companies(bob, jno)
        client.force_login(bob)
        html = client.get(reverse("synchro:run_progress", args=[line.run_id])).content.decode()
    assert "la société sera libérée au plus tard à 14:32." in unescape(html)
