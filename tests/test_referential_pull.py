"""The referential pull against the stub over HTTP: bulk, incremental, never deleting, one at a time."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from companies.lease import CompanyBusy, company_lease_release, company_lease_take
from companies.models import Account, Company, Journal, PaymentMode, Supplier, TaxCode
from companies.services import company_referential_pull
from tests.conftest import make_company


def test_first_pull_creates_the_whole_referential(jno):
    outcome = company_referential_pull(company=jno)
    jno.refresh_from_db()
    assert outcome.status == Company.PullStatus.SUCCEEDED
    assert jno.pull_status == Company.PullStatus.SUCCEEDED
    suppliers = Supplier.objects.filter(company=jno)
    assert suppliers.count() == outcome.counts["suppliers"]["created"] >= 42
    assert Account.objects.get(company=jno, code="606800").active is False
    assert suppliers.get(code="F0042").blocked is True
    assert str(TaxCode.objects.get(company=jno, code="T55").rate) == "5.50"
    assert set(Journal.objects.filter(company=jno).values_list("code", flat=True)) == {"ACH", "BQ", "OD"}
    assert PaymentMode.objects.filter(company=jno).count() == 4
    assert jno.closed_until.isoformat() == "2026-03-31"
    assert jno.pull_result["counts"]["accounts"]["created"] == Account.objects.filter(company=jno).count()
    assert jno.pull_finished_at is not None and jno.sync_lease_token == ""


def test_second_pull_with_no_change_touches_nothing(jno):
    company_referential_pull(company=jno)
    before = {model: list(model.objects.filter(company=jno).order_by("pk").values()) for model in (Supplier, Account)}
    outcome = company_referential_pull(company=jno)
    full = company_referential_pull(company=jno, full=True)
    for counts in [*outcome.counts.values(), *full.counts.values()]:
        assert counts["created"] == counts["updated"] == counts["deactivated"] == 0
    assert sum(counts["received"] for counts in outcome.counts.values()) == 0
    assert full.counts["suppliers"]["unchanged"] == len(before[Supplier])
    for model, rows in before.items():
        assert list(model.objects.filter(company=jno).order_by("pk").values()) == rows


def test_an_incremental_pull_asks_only_for_what_changed(sage, jno):
    company_referential_pull(company=jno)
    sage.mutate("JNO", "suppliers", upsert=[{"code": "F0001", "label": "Nouveau nom"}])
    outcome = company_referential_pull(company=jno)
    assert outcome.counts["suppliers"] == {
        "received": 1,
        "created": 0,
        "updated": 1,
        "deactivated": 0,
        "unchanged": 0,
        "reactivated": 0,
    }
    assert Supplier.objects.get(company=jno, code="F0001").label == "Nouveau nom"


def test_items_gone_from_sage_become_inactive_and_are_never_deleted(sage, jno):
    company_referential_pull(company=jno)
    sage.mutate("JNO", "accounts", delete=["622600"])
    sage.mutate("JNO", "suppliers", delete=["F0005"])
    outcome = company_referential_pull(company=jno)
    account = Account.objects.get(company=jno, code="622600")
    supplier = Supplier.objects.get(company=jno, code="F0005")
    assert (account.active, supplier.active) == (False, False)
    assert account.gone_upstream_at is not None and not account.usable
    assert outcome.counts["accounts"]["deactivated"] == 1
    assert outcome.counts["suppliers"]["deactivated"] == 1
    sage.mutate("JNO", "suppliers", upsert=[{"code": "F0005", "label": "Revenu", "active": True}])
    company_referential_pull(company=jno)
    supplier.refresh_from_db()
    assert supplier.usable and supplier.label == "Revenu"


def test_local_settings_survive_every_pull(sage, jno):
    company_referential_pull(company=jno)
    Supplier.objects.filter(company=jno, code="F0001").update(local_expense_account="606300")
    Company.objects.filter(pk=jno.pk).update(scan_directory="mon_dossier", purchase_journal_code="HA")
    sage.mutate("JNO", "suppliers", upsert=[{"code": "F0001", "label": "Changé dans Sage"}])
    company_referential_pull(company=jno)
    company_referential_pull(company=jno, full=True)
    jno.refresh_from_db()
    supplier = Supplier.objects.get(company=jno, code="F0001")
    assert (jno.scan_directory, jno.purchase_journal_code) == ("mon_dossier", "HA")
    assert (supplier.label, supplier.local_expense_account) == ("Changé dans Sage", "606300")


def test_malformed_items_are_reported_and_the_rest_lands(sage, jno):
    company_referential_pull(company=jno)
    sage.mutate(
        "JNO",
        "suppliers",
        raw=[
            {"code": "F0001", "label": "y" * 300, "active": True, "modified_at": "2026-07-01T00:00:00Z"},
            {"code": "F0002", "label": "Sans statut", "modified_at": "2026-07-01T00:00:00Z"},
            {"code": "F0099", "label": "Nouveau", "active": True, "modified_at": "2026-07-01T00:00:00Z"},
        ],
    )
    outcome = company_referential_pull(company=jno)
    jno.refresh_from_db()
    assert jno.pull_status == Company.PullStatus.PARTIAL
    assert {p["code"] for p in jno.pull_result["problems"]} == {"F0001", "F0002"}
    assert outcome.counts["suppliers"]["created"] == 1
    # Unreadable does not mean gone: the malformed items keep their last good version, active.
    assert Supplier.objects.get(company=jno, code="F0001").usable
    assert Supplier.objects.get(company=jno, code="F0002").usable


@pytest.mark.usefixtures("fast_retries")
def test_a_server_failing_half_way_leaves_nothing_half_written(sage, jno):
    sage.faults({"match": "GET /companies/*/tax-codes", "fault": "status", "status": 500})
    outcome = company_referential_pull(company=jno)
    jno.refresh_from_db()
    assert outcome.status == jno.pull_status == Company.PullStatus.FAILED
    assert jno.pull_error == "Sage FRP 1000 est en erreur (HTTP 500)."
    assert Account.objects.filter(company=jno).count() == 0
    assert Supplier.objects.filter(company=jno).count() == 0
    assert jno.sync_lease_token == ""


@pytest.mark.usefixtures("fast_retries")
def test_a_slow_server_is_said_in_french(sage, jno):
    jno.connector.timeout_seconds = 1
    jno.connector.save()
    sage.faults({"match": "GET /companies/*/accounts", "fault": "latency", "delay": 2})
    company_referential_pull(company=jno)
    jno.refresh_from_db()
    assert jno.pull_error == "Sage FRP 1000 ne répond pas (délai dépassé)."


def test_a_refused_key_says_cle_api_refusee(jno):
    jno.connector.set_api_key("wrong")
    jno.connector.save()
    company_referential_pull(company=jno)
    jno.refresh_from_db()
    assert jno.pull_status == Company.PullStatus.FAILED
    assert "Clé API refusée" in jno.pull_error


def test_a_company_missing_from_sage_is_said(connector):
    ghost = make_company(connector, "GHOST")
    company_referential_pull(company=ghost)
    ghost.refresh_from_db()
    assert ghost.pull_error == "La société GHOST n'existe pas dans Sage FRP 1000."


def test_a_second_pull_of_the_same_company_says_deja_en_cours(jno):
    assert company_lease_take(company_id=jno.pk, token="other-worker", label="mise à jour du référentiel")
    with pytest.raises(CompanyBusy) as busy:
        company_referential_pull(company=jno)
    assert "déjà en cours" in str(busy.value)
    company_lease_release(company_id=jno.pk, token="other-worker")
    assert company_referential_pull(company=jno).status == Company.PullStatus.SUCCEEDED


def test_an_expired_claim_is_taken_over(jno, settings):
    settings.SYNC_LEASE_SECONDS = 5
    assert company_lease_take(company_id=jno.pk, token="dead-worker", label="x")
    Company.objects.filter(pk=jno.pk).update(sync_lease_until="2020-01-01T00:00:00Z")
    assert company_lease_take(company_id=jno.pk, token="new-worker", label="x")
    assert not company_lease_take(company_id=jno.pk, token="third", label="x")
    # The holder may claim again (a redelivered task takes its own claim back).
    assert company_lease_take(company_id=jno.pk, token="new-worker", label="x")


@pytest.mark.slow
def test_query_count_does_not_grow_with_the_number_of_suppliers(sage, connector, settings):
    settings.PULL_PROGRESS_INTERVAL = 3600  # progress lines are time-based; keep them out of the count
    counts = {}
    for size in (1_000, 10_000):
        code = f"BIG{size}"
        sage.generate(code, suppliers=size)
        company = make_company(connector, code)
        with CaptureQueriesContext(connection) as first:
            outcome = company_referential_pull(company=company)
        assert outcome.counts["suppliers"]["created"] == Supplier.objects.filter(company=company).count() > size
        with CaptureQueriesContext(connection) as second:
            again = company_referential_pull(company=company)
        assert all(c["created"] == c["updated"] == c["deactivated"] == 0 for c in again.counts.values())
        counts[size] = (len(first.captured_queries), len(second.captured_queries))
    assert counts[1_000] == counts[10_000], counts


# --- items that come back, answers that would empty a kind ----------------------------------------------


def _sage_items(sage, company: str, kind: str) -> list[dict]:
    return sage.get(f"/companies/{company}/{kind}", params={"limit": 5000}).json()["items"]


def _usable_accounts(company) -> int:
    return Account.objects.filter(company=company, active=True, gone_upstream_at__isnull=True).count()


def _held_accounts(company) -> int:
    """The accounts SFD holds as still in Sage (606800 among them: in Sage, inactive there)."""
    return Account.objects.filter(company=company, gone_upstream_at__isnull=True).count()


# An answer with no item at all, as a faulty proxy or a half-restored server gives it: the stub's « drip » serves
# ``{"items": [], "next_cursor": null}`` (with no delay between its bytes here). An incremental pull makes two calls
# per kind (what changed, then the list of codes): ``times`` says how many of them get the empty answer.
def _empty_answers(sage, company: str, kind: str, times: int) -> None:
    sage.faults({"match": f"GET /companies/{company}/{kind}", "fault": "drip", "delay": 0, "times": times})


def test_an_item_back_in_sage_with_its_old_modified_at_is_active_again(sage, jno):
    company_referential_pull(company=jno)
    honoraires = next(item for item in _sage_items(sage, "JNO", "accounts") if item["code"] == "622600")
    sage.mutate("JNO", "accounts", delete=["622600"])
    company_referential_pull(company=jno)
    assert not Account.objects.get(company=jno, code="622600").usable
    # Back in Sage as it was, its modification date unchanged: older than what SFD asks for.
    sage.mutate("JNO", "accounts", raw=[honoraires])
    outcome = company_referential_pull(company=jno)
    account = Account.objects.get(company=jno, code="622600")
    assert account.usable and account.gone_upstream_at is None and account.label == "Honoraires"
    assert outcome.counts["accounts"]["reactivated"] == 1


def test_one_empty_answer_deactivates_nothing_and_the_pull_says_why(sage, jno):
    company_referential_pull(company=jno)
    usable, held = _usable_accounts(jno), _held_accounts(jno)
    _empty_answers(sage, "JNO", "accounts", times=2)
    outcome = company_referential_pull(company=jno)
    jno.refresh_from_db()
    assert _usable_accounts(jno) == usable
    assert "accounts" not in outcome.counts
    assert outcome.status == jno.pull_status == Company.PullStatus.PARTIAL
    assert jno.pull_result["notices"] == [
        f"Comptes : {held} éléments manquaient dans la réponse de Sage FRP 1000, mais sa liste complète les contient"
        " encore : réponse jugée incomplète, rien n'a été modifié pour cette nature."
    ]
    # The other kinds were written as usual, and the next pull is an ordinary one.
    assert outcome.counts["suppliers"]["deactivated"] == 0
    again = company_referential_pull(company=jno)
    assert again.status == Company.PullStatus.SUCCEEDED and again.counts["accounts"]["deactivated"] == 0


def test_an_empty_list_is_suspicious_whatever_the_share_allowed(sage, jno, settings):
    settings.REFERENTIAL_MAX_GONE_SHARE = 1.0
    company_referential_pull(company=jno)
    _empty_answers(sage, "JNO", "payment-modes", times=2)
    outcome = company_referential_pull(company=jno)
    assert PaymentMode.objects.filter(company=jno, gone_upstream_at__isnull=True).count() == 4
    assert outcome.notices and outcome.notices[0].startswith("Modes de règlement : 4 éléments manquaient")


def test_a_mass_deletion_confirmed_by_a_full_read_is_applied_and_said(sage, jno):
    company_referential_pull(company=jno)
    suppliers = [item["code"] for item in _sage_items(sage, "JNO", "suppliers")]
    gone = suppliers[: len(suppliers) - 5]
    sage.mutate("JNO", "suppliers", delete=gone)
    before = sage.stats().get("GET companies/{code}/suppliers", 0)
    outcome = company_referential_pull(company=jno)
    jno.refresh_from_db()
    # What changed, the list of codes, then the full read that confirms.
    assert sage.stats()["GET companies/{code}/suppliers"] - before == 3
    assert Supplier.objects.filter(company=jno, gone_upstream_at__isnull=False).count() == len(gone)
    assert outcome.counts["suppliers"]["deactivated"] == len(gone)
    assert outcome.status == Company.PullStatus.SUCCEEDED
    assert jno.pull_result["notices"] == [
        f"{len(gone)} fournisseurs absents de Sage FRP 1000 désactivés après vérification complète"
    ]


def test_a_small_deletion_needs_no_second_read(sage, jno):
    company_referential_pull(company=jno)
    sage.mutate("JNO", "payment-modes", delete=["LCR"])
    before = sage.stats().get("GET companies/{code}/payment-modes", 0)
    outcome = company_referential_pull(company=jno)
    assert sage.stats()["GET companies/{code}/payment-modes"] - before == 2
    assert outcome.counts["payment-modes"]["deactivated"] == 1 and not outcome.notices


def test_a_first_full_read_that_would_empty_a_kind_is_read_again_before_anything_is_written(sage, jno):
    company_referential_pull(company=jno)
    usable, held = _usable_accounts(jno), _held_accounts(jno)
    # « Mise à jour complète » reads every kind in full: one empty answer, then the real list.
    _empty_answers(sage, "JNO", "accounts", times=1)
    outcome = company_referential_pull(company=jno, full=True)
    assert _usable_accounts(jno) == usable
    assert outcome.notices[0].startswith(f"Comptes : {held} éléments manquaient")


def test_accounts_deactivated_by_an_empty_answer_before_this_fix_come_back_at_the_next_pull(sage, jno):
    company_referential_pull(company=jno)
    # What a pull of the previous version left after one empty answer: every account gone.
    Account.objects.filter(company=jno).update(active=False, gone_upstream_at="2026-06-01T00:00:00Z")
    outcome = company_referential_pull(company=jno)
    assert _usable_accounts(jno) == Account.objects.filter(company=jno).exclude(code="606800").count()
    assert Account.objects.get(company=jno, code="606800").active is False  # inactive in Sage itself
    assert outcome.counts["accounts"]["reactivated"] == Account.objects.filter(company=jno).count()


def test_an_item_back_in_sage_but_unreadable_is_no_longer_gone_and_costs_one_full_read(sage, jno):
    company_referential_pull(company=jno)
    sage.mutate("JNO", "suppliers", delete=["F0007"])
    company_referential_pull(company=jno)
    # Back under its code, with its old date, but without the status SFD needs to read it.
    sage.mutate(
        "JNO", "suppliers", raw=[{"code": "F0007", "label": "Sans statut", "modified_at": "2026-01-05T08:00:00Z"}]
    )
    before = sage.stats().get("GET companies/{code}/suppliers", 0)
    outcome = company_referential_pull(company=jno)
    assert {problem["code"] for problem in outcome.problems} == {"F0007"}
    supplier = Supplier.objects.get(company=jno, code="F0007")
    assert supplier.gone_upstream_at is None and not supplier.usable  # kept inactive until Sage gives a readable item
    assert sage.stats()["GET companies/{code}/suppliers"] - before == 3  # what changed, the codes, one full read
    before = sage.stats()["GET companies/{code}/suppliers"]
    company_referential_pull(company=jno)
    assert sage.stats()["GET companies/{code}/suppliers"] - before == 2


def test_a_new_item_with_an_old_modified_at_is_read_all_the_same(sage, jno):
    """An item created in Sage with a modification date older than the newest SFD has seen (imported with its date,
    or a server whose clock is behind) does not come with what changed: the list of codes names it, and one full
    read of its kind brings it."""
    company_referential_pull(company=jno)
    sage.mutate(
        "JNO",
        "suppliers",
        raw=[{"code": "F0900", "label": "Importé avec sa date", "active": True, "modified_at": "2020-01-01T00:00:00Z"}],
    )
    before = sage.stats().get("GET companies/{code}/suppliers", 0)
    outcome = company_referential_pull(company=jno)
    assert Supplier.objects.get(company=jno, code="F0900").label == "Importé avec sa date"
    assert outcome.counts["suppliers"]["created"] == 1 and outcome.counts["suppliers"]["deactivated"] == 0
    assert sage.stats()["GET companies/{code}/suppliers"] - before == 3  # what changed, the codes, one full read
    before = sage.stats()["GET companies/{code}/suppliers"]
    again = company_referential_pull(company=jno)
    assert sage.stats()["GET companies/{code}/suppliers"] - before == 2 and again.counts["suppliers"]["received"] == 0
