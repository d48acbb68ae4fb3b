"""The gateway against the stub over real HTTP: typed errors in French, retries, validation of every item."""

from __future__ import annotations

import json
import time

import pytest

from connectors.sage_frp1000.client import (
    SageAuthError,
    SageClient,
    SageError,
    SageProtocolError,
    SageRejected,
    SageUnavailable,
)
from tests.support.foreign import odd_length_server
from tests.support.stub import free_port


@pytest.fixture
def client(sage):
    with SageClient(sage.url, sage.api_key, timeout=2, retries=2, backoff=0.01) as client:
        yield client


def test_it_reads_health(client):
    assert "Sage FRP 1000" in client.health()["version"]


def test_a_refused_key_is_an_auth_error(sage):
    with SageClient(sage.url, "wrong-key", timeout=2) as client, pytest.raises(SageAuthError) as error:
        client.health()
    assert error.value.message == "Clé API refusée par Sage FRP 1000."


def test_an_unreachable_server_is_unavailable_and_was_not_processed():
    client = SageClient(f"http://127.0.0.1:{free_port()}", "k", timeout=2, retries=0)
    with client, pytest.raises(SageUnavailable) as error:
        client.health()
    assert "injoignable" in error.value.message
    assert error.value.outcome_unknown is False


def test_a_slow_answer_times_out_with_an_unknown_outcome(sage, client):
    sage.faults({"match": "GET /health", "fault": "latency", "delay": 3})
    started = time.monotonic()
    with pytest.raises(SageUnavailable) as error:
        client.health()
    assert time.monotonic() - started < 3
    assert error.value.outcome_unknown is True
    assert "délai dépassé" in error.value.message


def test_gets_retry_transient_errors(sage, client):
    sage.faults({"match": "GET /companies", "fault": "status", "status": 500, "times": 2})
    items, problems = client.companies()
    assert len(items) == 10 and problems == []
    assert sage.stats()["GET companies"] == 3


def test_it_honours_retry_after(sage, client):
    sage.faults({"match": "GET /companies", "fault": "status", "status": 503, "retry_after": 1, "times": 1})
    started = time.monotonic()
    client.companies()
    assert time.monotonic() - started >= 1


def test_retries_stop_and_say_why(sage, client):
    sage.faults({"match": "GET /companies", "fault": "status", "status": 500})
    with pytest.raises(SageUnavailable) as error:
        client.companies()
    assert error.value.message == "Sage FRP 1000 est en erreur (HTTP 500)."
    assert sage.stats()["GET companies"] == 3


def test_a_post_is_never_retried_by_the_client(sage, client):
    sage.faults({"match": "POST /companies/*/entries", "fault": "status", "status": 500})
    with pytest.raises(SageUnavailable) as error:
        client.post_entries("JNO", [{"external_id": "k"}])
    assert error.value.outcome_unknown is True
    assert sage.stats()["POST companies/{code}/entries"] == 1


def test_entries_already_encoded_are_posted_as_the_same_body(client):
    entries = [{"external_id": "SFD-1-V1", "journal": "ACH"}, {"external_id": "SFD-2-V1", "label": "Fournitures é"}]
    as_dicts = client.post_entries("JNO", entries, simulate=True)
    encoded = client.post_entries(
        "JNO", entries, simulate=True, encoded=[json.dumps(entry, allow_nan=False) for entry in entries]
    )
    assert [result.external_id for result in encoded] == ["SFD-1-V1", "SFD-2-V1"]
    assert encoded == as_dicts
    assert {result.status for result in encoded} == {"rejected"}


def test_a_reset_connection_has_an_unknown_outcome(sage, client):
    sage.faults({"match": "POST /companies/*/entries", "fault": "reset"})
    with pytest.raises(SageUnavailable) as error:
        client.post_entries("JNO", [{"external_id": "k"}])
    assert error.value.outcome_unknown is True


@pytest.mark.parametrize(
    ("fault", "expected", "message"),
    [
        ({"fault": "malformed"}, SageProtocolError, "JSON invalide"),
        ({"fault": "wrong_shape"}, SageProtocolError, "items"),
        ({"fault": "oversized", "size": 12 * 1024 * 1024}, SageProtocolError, "trop volumineuse"),
        ({"fault": "html", "status": 502}, SageUnavailable, "page HTML"),
    ],
)
def test_bad_answers_are_typed_errors(sage, client, fault, expected, message):
    sage.faults({"match": "GET /companies/*/suppliers"} | fault)
    with pytest.raises(expected) as error:
        list(client.iter_referential("JNO", "suppliers"))
    assert message in error.value.message


def test_a_slow_drip_is_cut_by_the_deadline(sage):
    sage.faults({"match": "GET /health", "fault": "drip", "delay": 0.3})
    with SageClient(sage.url, sage.api_key, timeout=1, retries=0) as client:
        started = time.monotonic()
        with pytest.raises(SageUnavailable):
            client.health()
    assert time.monotonic() - started < 6


def test_a_404_is_a_rejection_with_sages_code(client):
    with pytest.raises(SageRejected) as error:
        list(client.iter_referential("NOPE", "accounts"))
    assert error.value.code == "COMPANY_UNKNOWN"


def test_it_iterates_every_page(client):
    pages = list(client.iter_referential("JNO", "suppliers", page_size=10))
    assert len(pages) >= 5
    assert pages[-1].next_cursor is None
    assert len({item["code"] for page in pages for item in page.items}) == sum(len(page.items) for page in pages)


def test_malformed_items_are_reported_and_the_rest_lands(sage, client):
    sage.mutate(
        "JNO",
        "suppliers",
        raw=[
            {"code": "F0001", "label": "x" * 300, "active": True, "modified_at": "2026-06-01T00:00:00Z"},
            {"code": "F0002", "label": "Sans statut", "modified_at": "2026-06-01T00:00:00Z"},
            {"code": "F0003", "label": "Date cassée", "active": True, "modified_at": "hier"},
            {
                "code": "F0004",
                "label": "SIREN",
                "active": True,
                "modified_at": "2026-06-01T00:00:00Z",
                "siren": "ABC",
            },
        ],
    )
    pages = list(client.iter_referential("JNO", "suppliers"))
    problems = {p.code: p.message for page in pages for p in page.problems}
    codes = {item["code"] for page in pages for item in page.items}
    assert problems["F0001"] == "champ « label » trop long (300 caractères ; 255 au maximum)"
    assert problems["F0002"] == "champ « active » manquant"
    assert "date de modification invalide" in problems["F0003"]
    assert "SIREN invalide" in problems["F0004"]
    assert {"F0001", "F0002", "F0003", "F0004"}.isdisjoint(codes)
    assert "F0005" in codes


def test_duplicate_codes_in_one_answer_are_reported_once(sage, client):
    body = {"items": [
        {"code": "A", "label": "A", "active": True, "modified_at": "2026-01-01T00:00:00Z"},
        {"code": "A", "label": "A bis", "active": True, "modified_at": "2026-01-01T00:00:00Z"},
    ], "next_cursor": None}  # fmt: skip
    page = next(iter(_pages_from(client, body)))
    assert [item["label"] for item in page.items] == ["A"]
    assert page.problems[0].message == "code en double dans la réponse de Sage (ignoré)"


def _pages_from(client, body):
    """Feed one canned answer through the real parsing path: a duplicate the stub's primary key forbids."""
    original = client._call
    client._call = lambda *args, **kwargs: body
    try:
        yield from client.iter_referential("JNO", "payment-modes")
    finally:
        client._call = original


def test_a_repeated_cursor_is_a_protocol_error(client):
    body = {"items": [], "next_cursor": "same"}
    client._call = lambda *args, **kwargs: body
    with pytest.raises(SageProtocolError):
        list(client.iter_referential("JNO", "accounts"))


def test_the_environment_is_read_once_per_client_as_requests_would_read_it(monkeypatch):
    """Proxies (and their exceptions) and a CA bundle from the environment hold for every request of a client, read
    once when it is made instead of at every request."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "sage.internal")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/company.pem")
    with SageClient("https://sage.example:8443", "k") as client:
        assert client.session.proxies["https"] == "http://proxy.example:3128"
        assert client.session.verify == "/etc/ssl/company.pem"
        assert not client.session.trust_env
    with SageClient("https://sage.internal", "k") as client:
        assert "https" not in client.session.proxies


def test_a_content_length_that_is_not_ascii_digits_is_no_crash():
    """« ² » passes ``isdigit`` and fails ``int``: the size announced is not believed, the body is read (capped)."""
    with odd_length_server() as server, SageClient(f"http://{server}", "k", timeout=2, retries=0) as client:
        try:
            answer = client.health()
        except SageError as error:  # a clear French refusal is fine too; a ValueError is not
            assert error.message
        else:
            assert answer["status"] == "up"
