"""The connector's key goes to the server it was typed for and nowhere else; « Tester la connexion » tells Sage from
anything else, in at most 10 s, and says the same of every host it cannot reach.

The foreign servers (tests/support/foreign.py) are real sockets on loopback ports of their own.
"""

from __future__ import annotations

import time
from html import unescape

import pytest
from django.urls import reverse

from connectors.models import Connector
from connectors.services import ConnectorKeyRequired, connector_probe, connector_save
from core.models import AuditEvent
from tests.conftest import give_companies, grant
from tests.support.connectors import connector_form
from tests.support.foreign import ForeignHTTPServer, banner_server, drip_server, silent_server
from tests.support.stub import free_port

URL = reverse("connectors:settings")
UNREACHABLE = (
    "Serveur injoignable : aucun serveur Sage FRP 1000 n'a répondu à cette adresse. "
    "Vérifiez l'URL, le réseau et le pare-feu."
)
NOT_SAGE = "Cette adresse ne répond pas comme un serveur Sage FRP 1000 : vérifiez l'URL."


@pytest.fixture
def admin(bob, connector):
    grant(bob, "connectors.manage_connectors")
    give_companies(bob, all_companies=True)
    return bob


@pytest.fixture
def foreign():
    with ForeignHTTPServer() as server:
        yield server


def _save(client, connector, **changes):
    return client.post(reverse("connectors:save", args=[connector.pk]), connector_form(connector, **changes))


def _test(client, connector) -> str:
    response = client.post(reverse("connectors:test", args=[connector.pk]), follow=True)
    return unescape(response.content.decode())


# --- the key follows its URL ---------------------------------------------------------------------------


def test_a_new_url_without_the_key_is_refused_and_the_key_goes_nowhere(client, admin, connector, sage, foreign):
    client.force_login(admin)
    response = _save(client, connector, url=foreign.url)
    html = unescape(response.content.decode())
    assert response.status_code == 200
    assert "L'URL a changé : saisissez de nouveau la clé API" in html
    assert sage.api_key not in html
    connector.refresh_from_db()
    assert connector.url == sage.url and connector.decrypted_api_key() == sage.api_key
    assert "Connexion réussie" in _test(client, connector)
    assert foreign.requests == []


def test_with_the_key_typed_again_the_new_server_gets_that_key_only(client, admin, connector, sage, foreign):
    client.force_login(admin)
    assert _save(client, connector, url=foreign.url, api_key="cle-du-nouveau-serveur").status_code == 302
    connector.refresh_from_db()
    assert connector.url == foreign.url
    _test(client, connector)
    assert foreign.authorizations() == ["Bearer cle-du-nouveau-serveur"]
    assert AuditEvent.objects.filter(summary__contains="clé API remplacée").exists()


def test_the_same_url_keeps_the_stored_key(client, admin, connector, sage):
    client.force_login(admin)
    assert _save(client, connector, timeout_seconds=7).status_code == 302
    connector.refresh_from_db()
    assert connector.timeout_seconds == 7 and connector.decrypted_api_key() == sage.api_key


def test_the_service_refuses_a_new_url_without_the_key(admin, connector, sage, foreign):
    with pytest.raises(ConnectorKeyRequired):
        connector_save(
            connector=connector, name=connector.name, url=foreign.url, timeout_seconds=5, api_key="", actor=admin
        )
    connector.refresh_from_db()
    assert connector.url == sage.url


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("file:///etc/passwd", "Adresse invalide : saisissez une URL http:// ou https://"),
        ("gopher://127.0.0.1:70/_SSRF", "Adresse invalide : saisissez une URL http:// ou https://"),
        ("ftp://sage.example.com", "Adresse invalide : saisissez une URL http:// ou https://"),
        ("javascript:alert(1)", "Adresse invalide : saisissez une URL http:// ou https://"),
        ("http://", "Adresse invalide : saisissez une URL http:// ou https://"),
        ("http://sfd:motdepasse@sage.example.com", "L'URL ne doit contenir ni identifiant ni mot de passe"),
        ("https://sage.example.com/?token=abc", "ni paramètres (« ? ») ni ancre (« # »)"),
        ("https://sage.example.com/#x", "ni paramètres (« ? ») ni ancre (« # »)"),
    ],
)
def test_only_an_http_url_to_a_host_is_accepted(client, admin, connector, url, error):
    client.force_login(admin)
    html = unescape(_save(client, connector, url=url, api_key="une-cle").content.decode())
    assert error in html
    new = {"new-name": "Autre", "new-url": url, "new-timeout_seconds": 5, "new-api_key": "k"}
    created = client.post(reverse("connectors:create"), new)
    assert error in unescape(created.content.decode())
    assert list(Connector.objects.values_list("url", flat=True)) == [connector.url]


# --- « Tester la connexion »: Sage's answer, or one sentence ------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "content_type"),
    [
        (b'{"status": "up"}', 200, "application/json"),
        (b'{"status": "ok"}', 200, "application/json"),
        (b'{"status": "ok", "version": ""}', 200, "application/json"),
        (b'[{"status": "ok", "version": "1"}]', 200, "application/json"),
        (b"<html><body>Welcome to nginx!</body></html>", 200, "text/html"),
        (b'{"errors": [{"code": "NOT_FOUND", "message": "Not found"}]}', 404, "application/json"),
    ],
)
def test_an_answer_that_is_not_sages_is_said_so(client, admin, connector, foreign, body, status, content_type):
    connector.url = foreign.url
    connector.save()
    foreign.answer(body, status=status, content_type=content_type)
    client.force_login(admin)
    html = _test(client, connector)
    assert NOT_SAGE in html and "Connexion réussie" not in html


def test_every_unreachable_host_reads_the_same(client, admin, connector, sage):
    connector.timeout_seconds = 1
    connector.save()
    client.force_login(admin)
    sentences = {}
    with banner_server() as banner, silent_server() as silent:
        for case, url in {
            "refused": f"http://127.0.0.1:{free_port()}",
            "unknown name": "http://sage-frp1000.invalid",
            "tls to a plain port": sage.url.replace("http://", "https://"),
            "another protocol": f"http://{banner}",
            "no answer": f"http://{silent}",
        }.items():
            connector.url = url
            connector.save()
            html = _test(client, connector).split('id="messages"')[1].split("</div>")[0]
            sentences[case] = [line for line in (UNREACHABLE, "délai", "refusée", "interrompue") if line in html]
    assert all(found == [UNREACHABLE] for found in sentences.values()), sentences


def test_the_probe_answers_within_its_budget_whatever_the_server_does(connector):
    with drip_server() as drip:
        connector.url = f"http://{drip}"
        connector.timeout_seconds = 30
        connector.save()
        started = time.monotonic()
        probe = connector_probe(connector=connector, budget=1.0)
        elapsed = time.monotonic() - started
    assert not probe.ok and probe.message.startswith("Serveur injoignable")
    assert elapsed < 1.5


@pytest.mark.slow
def test_tester_la_connexion_keeps_its_ten_second_promise(client, admin, connector):
    with drip_server() as drip:
        connector.url = f"http://{drip}"
        connector.timeout_seconds = 300
        connector.save()
        client.force_login(admin)
        started = time.monotonic()
        html = _test(client, connector)
        elapsed = time.monotonic() - started
    assert UNREACHABLE in html
    assert 9 < elapsed < 11
