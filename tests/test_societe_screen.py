"""« Administration → Société »: the table of the manual, « Mettre à jour les sociétés », rights and scope."""

from __future__ import annotations

import datetime as dt
from html import unescape
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from companies.lease import company_lease_take
from companies.models import Company, Supplier
from core.models import AuditEvent
from tests.conftest import give_companies, grant

LIST = reverse("companies:list")
PULL = reverse("companies:pull")
PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
def eager(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from config.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture
def accountant(bob, demo_companies):
    grant(bob, "companies.update_companies")
    give_companies(bob, all_companies=True)
    return bob


def test_it_redirects_anonymous_users_to_login(client, db):
    response = client.get(LIST)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_it_requires_the_right(client, charlie, demo_companies):
    client.force_login(charlie)
    assert client.get(LIST).status_code == 403


def test_it_shows_the_table_of_the_manual(client, accountant):
    client.force_login(accountant)
    response = client.get(LIST)
    html = response.content.decode()
    headers = ["Société", "Code de la société", "Répertoire de scan", "Actions"]
    positions = [html.index(f">{header}</th>") for header in headers]
    assert positions == sorted(positions)
    assert "data-select-all" in html
    for name, code, scan in [
        ("Société JNO", "SJNO", "C0071000325_data_27"),
        ("MULTI", "MULTI", "C0071000325_data_8"),
    ]:
        assert name in html and f"<code>{code}</code>" in html and scan in html
    assert "Mettre à jour les sociétés" in html
    assert html.count('name="companies"') == 10


def test_it_shows_only_the_companies_given_to_the_user(client, bob, demo_companies):
    grant(bob, "companies.update_companies")
    jno = next(c for c in demo_companies if c.code == "JNO")
    give_companies(bob, jno)
    client.force_login(bob)
    html = client.get(LIST).content.decode()
    assert html.count('name="companies"') == 1 and "<code>JNO</code>" in html


def test_it_pulls_the_ticked_companies(client, accountant, demo_companies, eager, django_capture_on_commit_callbacks):
    client.force_login(accountant)
    jno, multi = (next(c for c in demo_companies if c.code == code) for code in ("JNO", "MULTI"))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(PULL, {"companies": [jno.pk, multi.pk]}, follow=True)
    assert "Mise à jour lancée pour 2 sociétés" in response.content.decode()
    for company in (jno, multi):
        company.refresh_from_db()
        assert company.pull_status == Company.PullStatus.SUCCEEDED
        assert Supplier.objects.filter(company=company).exists()
    others = Company.objects.exclude(pk__in=[jno.pk, multi.pk])
    assert set(others.values_list("pull_status", flat=True)) == {Company.PullStatus.IDLE}


def test_htmx_gets_the_table_back_with_polling_rows(client, accountant, demo_companies):
    client.force_login(accountant)
    jno = next(c for c in demo_companies if c.code == "JNO")
    response = client.post(PULL, {"companies": [jno.pk]}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="company-table"' in html and 'hx-swap-oob="true"' in html
    assert f'hx-get="{reverse("companies:status", args=[jno.pk])}"' in html
    jno.refresh_from_db()
    assert jno.pull_status == Company.PullStatus.QUEUED


def test_the_status_cell_reports_the_result(
    client, accountant, demo_companies, eager, django_capture_on_commit_callbacks
):
    client.force_login(accountant)
    jno = next(c for c in demo_companies if c.code == "JNO")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(PULL, {"companies": [jno.pk]})
    html = client.get(reverse("companies:status", args=[jno.pk])).content.decode()
    assert "À jour" in html and "Fournisseurs" in html and "créés" in html
    assert "hx-trigger" not in html  # finished: the cell stops polling


def test_a_second_request_while_queued_says_since_when_it_waits(client, accountant, demo_companies):
    jno = next(c for c in demo_companies if c.code == "JNO")
    with time_machine.travel(dt.datetime(2026, 12, 7, 14, 20, tzinfo=PARIS), tick=False):
        client.force_login(accountant)
        client.post(PULL, {"companies": [jno.pk]})
        response = client.post(PULL, {"companies": [jno.pk]}, follow=True)
    assert "JNO : mise à jour déjà demandée, en attente d'un worker depuis 14:20." in unescape(
        response.content.decode()
    )


def test_a_request_while_a_sync_holds_the_company_says_when_it_frees_at_the_latest(
    client, accountant, demo_companies, settings
):
    settings.SYNC_LEASE_SECONDS = 60
    jno = next(c for c in demo_companies if c.code == "JNO")
    with time_machine.travel(dt.datetime(2026, 12, 7, 14, 31, 10, tzinfo=PARIS), tick=False):
        client.force_login(accountant)
        client.post(PULL, {"companies": [jno.pk]})
        assert company_lease_take(company_id=jno.pk, token="a-worker", label="mise à jour du référentiel")
        Company.objects.filter(pk=jno.pk).update(pull_status=Company.PullStatus.RUNNING)
        response = client.post(PULL, {"companies": [jno.pk]}, follow=True)
    assert (
        "JNO : déjà en cours (mise à jour du référentiel) ; si elle s'est interrompue, la société sera libérée"
        " au plus tard à 14:32."
    ) in unescape(response.content.decode())


def test_a_failure_is_said_in_french_in_the_row(
    client, accountant, demo_companies, sage, eager, django_capture_on_commit_callbacks, fast_retries
):
    sage.faults({"match": "GET /companies", "fault": "status", "status": 503})
    client.force_login(accountant)
    jno = next(c for c in demo_companies if c.code == "JNO")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(PULL, {"companies": [jno.pk]})
    html = client.get(LIST).content.decode()
    assert "Échec" in html and "Sage FRP 1000 est surchargé (HTTP 503)." in html


def test_a_forged_company_id_answers_404(client, bob, demo_companies):
    grant(bob, "companies.update_companies")
    jno, multi = (next(c for c in demo_companies if c.code == code) for code in ("JNO", "MULTI"))
    give_companies(bob, jno)
    client.force_login(bob)
    assert client.post(PULL, {"companies": [jno.pk, multi.pk]}).status_code == 404
    assert client.post(PULL, {"companies": ["abc"]}).status_code == 404
    assert client.get(reverse("companies:detail", args=[multi.pk])).status_code == 404
    assert client.get(reverse("companies:status", args=[multi.pk])).status_code == 404
    multi.refresh_from_db()
    assert multi.pull_status == Company.PullStatus.IDLE


def test_a_post_without_the_right_is_refused(client, charlie, demo_companies):
    give_companies(charlie, all_companies=True)
    client.force_login(charlie)
    assert client.post(PULL, {"companies": [demo_companies[0].pk]}).status_code == 403
    assert Company.objects.filter(pull_status=Company.PullStatus.QUEUED).count() == 0


def test_a_post_without_csrf_token_is_refused(accountant, demo_companies):
    client = Client(enforce_csrf_checks=True)
    client.force_login(accountant)
    response = client.post(PULL, {"companies": [demo_companies[0].pk]})
    assert response.status_code == 403
    assert Company.objects.filter(pull_status=Company.PullStatus.QUEUED).count() == 0


def test_get_is_not_allowed_on_the_action(client, accountant):
    client.force_login(accountant)
    assert client.get(PULL).status_code == 405


def test_the_detail_page_shows_the_referential_and_saves_local_settings(
    client, accountant, demo_companies, eager, django_capture_on_commit_callbacks
):
    client.force_login(accountant)
    jno = next(c for c in demo_companies if c.code == "JNO")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(PULL, {"companies": [jno.pk]})
    url = reverse("companies:detail", args=[jno.pk])
    html = client.get(url).content.decode()
    assert "Fournisseurs" in html and "Comptes" in html and "Modes de règlement" in html
    response = client.post(url, {"scan_directory": "../etc", "purchase_journal_code": "ACH"})
    assert "Nom de dossier invalide" in response.content.decode()
    before = jno.scan_directory
    client.post(url, {"scan_directory": "C0071000325_data_99", "purchase_journal_code": "ACH"})
    jno.refresh_from_db()
    assert jno.scan_directory == "C0071000325_data_99"
    # The audit row says what it was and what it became (it said the new value twice).
    details = AuditEvent.objects.filter(action="company.settings_changed").latest("pk").details
    assert details["before"]["scan_directory"] == before
    assert details["after"]["scan_directory"] == "C0071000325_data_99"


def test_discovery_adds_companies_that_exist_only_in_sage(client, alice, connector, sage):
    sage.add_company("NOUV", name="Nouvelle société")
    client.force_login(alice)
    response = client.post(reverse("companies:discover"), follow=True)
    assert "Nouvelle société" in response.content.decode()
    assert Company.objects.filter(code="NOUV", scan_directory="").exists()
    assert Company.objects.count() == 11


def _sage_item(sage, company: str, kind: str, code: str) -> dict:
    items = sage.get(f"/companies/{company}/{kind}", params={"limit": 5000}).json()["items"]
    return next(item for item in items if item["code"] == code)


def test_mise_a_jour_complete_reads_what_an_ordinary_update_cannot_see(
    client, accountant, demo_companies, sage, eager, django_capture_on_commit_callbacks
):
    client.force_login(accountant)
    jno = next(c for c in demo_companies if c.code == "JNO")
    html = client.get(LIST).content.decode()
    assert "Mise à jour complète" in html and 'name="full" value="1"' in html
    with django_capture_on_commit_callbacks(execute=True):
        client.post(PULL, {"companies": [jno.pk]})
    # Changed in Sage without its modification date moving: invisible to « ce qui a changé depuis ».
    sage.mutate("JNO", "suppliers", raw=[_sage_item(sage, "JNO", "suppliers", "F0001") | {"label": "Renommé"}])
    with django_capture_on_commit_callbacks(execute=True):
        client.post(PULL, {"companies": [jno.pk]})
    assert Supplier.objects.get(company=jno, code="F0001").label != "Renommé"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(PULL, {"companies": [jno.pk], "full": "1"}, follow=True)
    assert "Mise à jour complète lancée pour 1 société : JNO." in response.content.decode()
    assert Supplier.objects.get(company=jno, code="F0001").label == "Renommé"
    jno.refresh_from_db()
    assert jno.pull_status == Company.PullStatus.SUCCEEDED


def test_the_row_says_what_a_refused_answer_left_as_it_was(
    client, accountant, demo_companies, sage, eager, django_capture_on_commit_callbacks
):
    client.force_login(accountant)
    jno = next(c for c in demo_companies if c.code == "JNO")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(PULL, {"companies": [jno.pk]})
    sage.faults({"match": "GET /companies/JNO/journals", "fault": "drip", "delay": 0, "times": 2})
    with django_capture_on_commit_callbacks(execute=True):
        client.post(PULL, {"companies": [jno.pk]})
    html = client.get(reverse("companies:status", args=[jno.pk])).content.decode()
    assert "À jour, avec des éléments ignorés" in html
    assert "Journaux : 3 éléments manquaient dans la réponse de Sage FRP 1000" in html


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_searches_at_once_create_each_company_once_with_its_audit_line(alice, connector, sage):
    import threading

    from django.db import connection

    from core.models import AuditEvent

    for number in range(40):
        sage.add_company(f"NEW{number:02d}", name=f"Nouvelle {number:02d}")
    # Both requests wait for Sage's answer together, then write at the same moment.
    sage.faults({"match": "GET /companies", "fault": "latency", "delay": 1})
    outcomes: list = []

    def search():
        other = Client()
        other.force_login(alice)
        try:
            outcomes.append(other.post(reverse("companies:discover")).status_code)
        except Exception as error:  # the test client re-raises what would have been a 500
            outcomes.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=search) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert outcomes == [302, 302]
    assert Company.objects.count() == 50
    audited = [
        code
        for event in AuditEvent.objects.filter(action="companies.discovered")
        for code in event.details["companies"]
    ]
    assert sorted(audited) == sorted(Company.objects.values_list("code", flat=True))


def test_a_pull_whose_worker_died_can_be_launched_again_once_its_claim_ran_out(client, accountant, demo_companies):
    from django.utils import timezone

    client.force_login(accountant)
    jno = next(c for c in demo_companies if c.code == "JNO")
    Company.objects.filter(pk=jno.pk).update(
        pull_status=Company.PullStatus.RUNNING,
        pull_requested_at=timezone.now(),
        sync_lease_token="dead-worker",
        sync_lease_until=timezone.now() - dt.timedelta(seconds=1),
    )
    response = client.post(PULL, {"companies": [jno.pk]}, follow=True)
    assert "Mise à jour lancée pour 1 société : JNO." in unescape(response.content.decode())
    jno.refresh_from_db()
    assert jno.pull_status == Company.PullStatus.QUEUED
