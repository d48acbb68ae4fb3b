"""The one retry loop (``SageClient.retrying``), against the stub over HTTP: what Sage said it did not process is sent
again, an unknown outcome is not unless the call is idempotent, and the caller's ``between`` runs between two tries."""

from __future__ import annotations

import pytest

from connectors.sage_frp1000.client import SageClient, SageUnavailable, error_triples

HEALTH = "GET /health"


@pytest.fixture
def client(sage):
    with SageClient(sage.url, sage.api_key, retries=2, backoff=0.0) as gateway:
        yield gateway


def test_it_sends_again_what_sage_did_not_process(client, sage):
    sage.faults({"match": HEALTH, "fault": "status", "status": 503, "retry_after": 0, "times": 1})
    between = []
    health = client.retrying(client.health, unknown_too=False, between=lambda: between.append("renewed"))
    assert health["version"]
    assert between == ["renewed"]


def test_it_does_not_send_again_what_may_have_been_processed(client, sage):
    sage.faults({"match": HEALTH, "fault": "status", "status": 500, "times": 1})
    between = []
    with pytest.raises(SageUnavailable) as failure:
        client.retrying(client.health, unknown_too=False, between=lambda: between.append("renewed"))
    assert failure.value.outcome_unknown
    assert between == []


def test_an_idempotent_call_is_sent_again_whatever_the_outcome(client, sage):
    sage.faults({"match": HEALTH, "fault": "status", "status": 500, "times": 1})
    assert client.retrying(client.health, unknown_too=True)["version"]


def test_a_failure_met_elsewhere_counts_as_the_first_try(client, sage):
    first = SageUnavailable("Sage FRP 1000 est surchargé (HTTP 503).", outcome_unknown=False, retry_after=0)
    assert client.retrying(client.health, unknown_too=False, failure=first)["version"]
    with pytest.raises(SageUnavailable):
        client.retrying(client.health, unknown_too=False, failure=SageUnavailable("Coupure.", outcome_unknown=True))


def test_it_gives_up_after_its_retries(client, sage):
    sage.faults({"match": HEALTH, "fault": "status", "status": 503, "retry_after": 0, "times": 3})
    between = []
    with pytest.raises(SageUnavailable):
        client.retrying(client.health, unknown_too=False, between=lambda: between.append("renewed"))
    assert between == ["renewed", "renewed"]


def test_sage_errors_become_triples_with_a_missing_code_or_field_said():
    errors = [{"code": "ACCOUNT_UNKNOWN", "field": "lines[0].account", "message": "Compte inconnu."}, {"message": "?"}]
    assert error_triples(errors) == [
        ("ACCOUNT_UNKNOWN", "lines[0].account", "Compte inconnu."),
        ("?", "", "?"),
    ]
