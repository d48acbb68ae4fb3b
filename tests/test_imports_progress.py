"""« Importer » from « Imports » (issue 15 §1): the scan of the folders shows its progress without a reload, from
rows in the database that a worker writes as it goes — whatever worker, and after a worker restart."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

from companies.models import Company
from invoices.imports import SCAN_STALE_SECONDS, intake_scan_request, intake_scan_run
from invoices.intake import PROCESSED_DIR, Outcome, intake_company
from invoices.models import IntakeFile, IntakeScan
from invoices.samples.build_samples import cii_xml
from tests.conftest import give_companies, grant
from tests.support.intake import an_invoice, drop, drop_the_usual, left_in
from tests.support.polling import wait_for

IMPORTS = reverse("invoices:imports")
PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
def accountant(bob, jno_ready):
    grant(bob, "invoices.view_invoices", "invoices.edit_invoices")
    give_companies(bob, jno_ready)
    return bob


def text_of(response) -> str:
    return " ".join(unescape(response.content.decode()).split())


def words_of(response) -> str:
    """What the page says, without its tags."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


def progress_of(client, scans: list[IntakeScan]):
    return client.get(reverse("invoices:imports_progress", args=[scans[0].batch]))


# --- « Importer » -------------------------------------------------------------------------------------------


def test_importer_asks_a_scan_of_each_folder_of_the_users_companies_and_follows_it(
    client, accountant, jno_ready, multi, django_capture_on_commit_callbacks
):
    Company.objects.create(connector=jno_ready.connector, code="SANS", name="Sans répertoire")
    client.force_login(accountant)
    with (
        time_machine.travel(dt.datetime(2026, 12, 1, 9, 5, tzinfo=PARIS), tick=False),
        django_capture_on_commit_callbacks(execute=False) as enqueued,
    ):
        response = client.post(reverse("invoices:imports_scan"))
    [scan] = IntakeScan.objects.all()
    assert (scan.company, scan.requested_by, scan.status) == (jno_ready, accountant, IntakeScan.Status.QUEUED)
    assert len(enqueued) == 1  # one task, sent once the rows are committed
    assert response["Location"] == f"{IMPORTS}?analyse={scan.batch}"
    page = client.get(response["Location"])
    html = text_of(page)
    assert "Import lancé pour 1 répertoire de scan : suivez l'avancement ci-dessous." in html
    box = html[html.index('<div id="imports-progress"') :]
    assert f'hx-get="/factures/imports/analyses/{scan.batch}/" hx-trigger="every 1s"' in box
    assert "Import en cours… JNO : en attente d'un worker depuis 09:05" in words_of(page)


def test_importer_without_a_folder_says_so(client, bob, jno):
    jno.scan_directory = ""
    jno.save()
    grant(bob, "invoices.view_invoices", "invoices.edit_invoices")
    give_companies(bob, jno)
    client.force_login(bob)
    response = client.post(reverse("invoices:imports_scan"), follow=True)
    assert "Aucune de vos sociétés n'a de répertoire de scan." in text_of(response)
    assert not IntakeScan.objects.exists()


def test_the_finished_scan_says_what_became_of_the_files_and_refreshes_the_list(client, accountant, jno_ready):
    drop_the_usual(jno_ready)
    scans = intake_scan_request(companies=[jno_ready], actor=accountant)
    scan = intake_scan_run(scan_id=scans[0].pk)
    assert (scan.status, scan.found) == (IntakeScan.Status.DONE, 4)
    assert scan.counts == {"created": 1, "duplicate": 1, "refused": 1, "ignored": 1}
    client.force_login(accountant)
    response = progress_of(client, scans)
    assert response["HX-Trigger"] == "imports-scanned"
    html = text_of(response)
    assert "hx-get" not in html and 'data-finished="1"' in html
    assert (
        "Import terminé JNO : terminé — 4 fichiers traités : 1 facture créée · 1 fichier déjà reçu · 1 fichier refusé"
        " · 1 fichier ignoré" in words_of(response)
    )
    # The list listens for it, and comes back whole with the menu's badge.
    page = client.get(IMPORTS).content.decode()
    assert 'hx-get="/factures/imports/?rows=1" hx-trigger="imports-scanned from:body"' in page
    rows = client.get(IMPORTS, {"rows": "1"}, headers={"HX-Request": "true"})
    assert {row.file.name for row in rows.context["rows"]} == {"facture.xml", "zz-copie.xml", "lisez-moi.txt",
                                                                ".DS_Store"}  # fmt: skip
    assert '<span id="imports-badge" hx-swap-oob="true">' in rows.content.decode()


def test_a_scan_in_progress_counts_what_it_found_and_did(client, accountant, jno_ready):
    with time_machine.travel(dt.datetime(2026, 12, 1, 9, 0, tzinfo=PARIS), tick=False):
        [scan] = intake_scan_request(companies=[jno_ready], actor=accountant)
        IntakeScan.objects.filter(pk=scan.pk).update(
            status=IntakeScan.Status.RUNNING, found=3, counts={"created": 1}, heartbeat_at=dt.datetime.now(dt.UTC)
        )
        client.force_login(accountant)
        response = progress_of(client, [scan])
    assert "HX-Trigger" not in response
    assert 'hx-trigger="every 1s"' in text_of(response)
    assert "JNO : en cours — 3 fichiers trouvés, 1 traité : 1 facture créée" in words_of(response)


def test_a_scan_whose_worker_died_is_said_interrupted_and_no_longer_followed(client, accountant, jno_ready):
    start = dt.datetime(2026, 12, 1, 9, 0, tzinfo=PARIS)
    with time_machine.travel(start, tick=False):
        [scan] = intake_scan_request(companies=[jno_ready], actor=accountant)
        IntakeScan.objects.filter(pk=scan.pk).update(status=IntakeScan.Status.RUNNING, heartbeat_at=start)
    client.force_login(accountant)
    with time_machine.travel(start + dt.timedelta(seconds=SCAN_STALE_SECONDS - 1), tick=False):
        assert "HX-Trigger" not in progress_of(client, [scan])
    with time_machine.travel(start + dt.timedelta(seconds=SCAN_STALE_SECONDS + 1), tick=False):
        response = progress_of(client, [scan])
    assert response["HX-Trigger"] == "imports-scanned"
    assert "JNO : interrompu : le worker s'est arrêté en cours de route ; relancez « Importer »." in words_of(response)


def test_the_intake_tells_its_progress_after_the_listing_and_after_each_file(jno_ready):
    drop(jno_ready, "a.xml", cii_xml(an_invoice(jno_ready, number="FA-A")))
    drop(jno_ready, "b.txt", b"rien")
    told = []
    intake_company(
        company=jno_ready,
        progress=lambda report, listed: told.append((listed, [(item.name, item.outcome) for item in report.files])),
    )
    assert told == [
        (2, []),
        (2, [("a.xml", Outcome.CREATED)]),
        (2, [("a.xml", Outcome.CREATED), ("b.txt", Outcome.REFUSED)]),
    ]


def test_the_progress_is_written_as_the_scan_goes(jno_ready, bob, monkeypatch):
    drop(jno_ready, "a.xml", cii_xml(an_invoice(jno_ready, number="FA-A")))
    drop(jno_ready, "b.txt", b"rien")
    [scan] = intake_scan_request(companies=[jno_ready], actor=bob)
    seen = []
    save = IntakeFile.save

    def save_and_look(self, *args, **kwargs):
        # What the screen reads each time the intake records a file (the file is saved as it always is).
        row = IntakeScan.objects.get(pk=scan.pk)
        seen.append((row.status, row.found, row.counts))
        return save(self, *args, **kwargs)

    monkeypatch.setattr(IntakeFile, "save", save_and_look)
    intake_scan_run(scan_id=scan.pk)
    assert seen[0] == (IntakeScan.Status.RUNNING, 2, {})
    assert (IntakeScan.Status.RUNNING, 2, {"created": 1}) in seen


# --- a worker restarted, a message delivered twice ----------------------------------------------------------


def test_a_scan_delivered_again_once_finished_does_nothing(jno_ready, bob):
    [scan] = intake_scan_request(companies=[jno_ready], actor=bob)
    intake_scan_run(scan_id=scan.pk)
    drop(jno_ready, "tard.xml", cii_xml(an_invoice(jno_ready)))
    again = intake_scan_run(scan_id=scan.pk)
    assert again.status == IntakeScan.Status.DONE and again.found == 0
    assert left_in(jno_ready)[""] == ["tard.xml"]


def test_a_scan_whose_worker_died_carries_on_where_it_stopped(jno_ready, bob):
    drop(jno_ready, "a.xml", cii_xml(an_invoice(jno_ready, number="FA-A")))
    intake_company(company=jno_ready)  # what the dead worker had done: a.xml imported, counted
    [scan] = intake_scan_request(companies=[jno_ready], actor=bob)
    IntakeScan.objects.filter(pk=scan.pk).update(
        status=IntakeScan.Status.RUNNING, found=3, counts={"created": 1, "pending": 1}
    )
    drop(jno_ready, "b.xml", cii_xml(an_invoice(jno_ready, number="FA-B")))
    drop(jno_ready, "c.txt", b"rien")
    done = intake_scan_run(scan_id=scan.pk)  # the message, delivered again to the restarted worker
    assert (done.status, done.found) == (IntakeScan.Status.DONE, 3)
    assert done.counts == {"created": 2, "refused": 1}
    assert sorted(left_in(jno_ready)[PROCESSED_DIR]) == ["a.xml", "a.xml.txt", "b.xml", "b.xml.txt"]


def test_a_company_without_a_folder_any_more_fails_with_its_reason(jno_ready, bob):
    [scan] = intake_scan_request(companies=[jno_ready], actor=bob)
    Company.objects.filter(pk=jno_ready.pk).update(active=False)
    failed = intake_scan_run(scan_id=scan.pk)
    assert failed.status == IntakeScan.Status.FAILED
    assert failed.error == "La société JNO est inactive ou n'a pas de répertoire de scan."


# --- scope --------------------------------------------------------------------------------------------------


def test_the_progress_shows_only_the_users_companies(client, accountant, jno_ready, multi_ready, alice):
    scans = intake_scan_request(companies=[jno_ready, multi_ready], actor=alice)
    for scan in scans:
        intake_scan_run(scan_id=scan.pk)
    client.force_login(accountant)
    html = text_of(progress_of(client, scans))
    assert 'data-company="JNO"' in html and "MULTI" not in html
    [multi_only] = intake_scan_request(companies=[multi_ready], actor=alice)
    assert progress_of(client, [multi_only]).status_code == 404
    # On the list too: a batch of another company shows no box.
    response = client.get(IMPORTS, {"analyse": str(multi_only.batch)})
    assert response.status_code == 200 and "Imports</h1>" in response.content.decode()
    assert "imports-progress" not in response.content.decode()
    assert client.get(IMPORTS, {"analyse": "pas-un-uuid"}).status_code == 200


# --- a real worker ------------------------------------------------------------------------------------------


@pytest.mark.worker
@pytest.mark.slow
def test_a_real_worker_started_after_the_click_does_the_scan_the_screen_follows(
    client, accountant, jno_ready, scan_root, start_worker
):
    drop_the_usual(jno_ready)
    client.force_login(accountant)
    response = client.post(reverse("invoices:imports_scan"))
    [scan] = IntakeScan.objects.all()
    # No worker yet: the message waits in the broker, the screen says so.
    assert "JNO : en attente d'un worker" in words_of(progress_of(client, [scan]))
    start_worker(extra_env={"SCAN_ROOT": str(scan_root)})
    finished = wait_for(lambda: progress_of(client, [scan]).get("HX-Trigger"), timeout=60, message="the scan")
    assert finished == "imports-scanned"
    assert "JNO : terminé — 4 fichiers traités : 1 facture créée" in words_of(progress_of(client, [scan]))
    listed = client.get(response["Location"]).context["rows"]
    assert {row.file.name: row.file.outcome for row in listed} == {
        "facture.xml": Outcome.CREATED,
        "zz-copie.xml": Outcome.DUPLICATE,
        "lisez-moi.txt": Outcome.REFUSED,
        ".DS_Store": Outcome.IGNORED,
    }
