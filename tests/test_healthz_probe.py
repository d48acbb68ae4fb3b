"""/healthz reads the last probe of each Sage FRP 1000 server (made by the worker every minute) and never calls Sage
itself: an anonymous request cannot make SFD knock on its servers, nor learn their names or addresses."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.urls import reverse

from connectors.models import Connector
from connectors.services import connectors_health_refresh
from tests.conftest import give_companies, grant
from tests.support.polling import wait_for

HEALTHZ = "/healthz"


def _sage_check(client) -> tuple[dict, str]:
    response = client.get(HEALTHZ)
    assert response.status_code == 200
    return response.json()["checks"]["sage"], response.content.decode()


def test_anonymous_requests_never_reach_sage(client, connector, sage):
    connectors_health_refresh()
    probes = sage.stats().get("GET health", 0)
    for _request in range(5):
        check, raw = _sage_check(client)
        assert check["ok"] is True
        assert connector.name not in raw and sage.url not in raw
    assert sage.stats().get("GET health", 0) == probes


def test_no_probe_yet_or_an_old_one_reads_as_unknown(client, connector, sage):
    check, _raw = _sage_check(client)
    assert (check["ok"], check["unknown"], check["checked_at"]) == (False, 1, None)
    assert check["error"] == "1 serveur Sage FRP 1000 sans vérification récente"
    with time_machine.travel(dt.datetime(2026, 12, 31, 23, 58, tzinfo=dt.UTC), tick=False):
        connectors_health_refresh()
    with time_machine.travel(dt.datetime(2027, 1, 1, 0, 0, 30, tzinfo=dt.UTC), tick=False):
        check, _raw = _sage_check(client)
        assert check["ok"] is True and check["checked_at"] == "2026-12-31T23:58:00+00:00"
    with time_machine.travel(dt.datetime(2027, 1, 1, 0, 2, tzinfo=dt.UTC), tick=False):
        check, _raw = _sage_check(client)
        assert check["ok"] is False and check["unknown"] == 1


def test_a_new_url_or_key_forgets_the_last_probe(client, bob, connector, sage):
    grant(bob, "connectors.manage_connectors")
    give_companies(bob, all_companies=True)
    connectors_health_refresh()
    client.force_login(bob)
    prefix = f"c{connector.pk}"
    data = {f"{prefix}-name": connector.name, f"{prefix}-url": connector.url, f"{prefix}-timeout_seconds": 5}
    client.post(reverse("connectors:save", args=[connector.pk]), data | {f"{prefix}-api_key": "autre-cle"})
    connector.refresh_from_db()
    assert (connector.health_ok, connector.health_checked_at) == (None, None)


def test_the_connectors_page_shows_each_servers_last_probe(client, bob, connector, sage):
    grant(bob, "connectors.manage_connectors")
    give_companies(bob, all_companies=True)
    connectors_health_refresh()
    client.force_login(bob)
    html = client.get(reverse("connectors:settings")).content.decode()
    assert "Dernière vérification automatique" in html and "Connexion réussie" in html


@pytest.mark.worker
@pytest.mark.slow
def test_beat_and_a_worker_probe_every_server(start_worker, start_beat, connector, sage):
    fast_tick = {"SCHEDULER_TICK_SECONDS": "2"}
    start_worker(extra_env=fast_tick)
    start_beat(extra_env=fast_tick)
    probed = wait_for(
        lambda: Connector.objects.filter(pk=connector.pk, health_checked_at__isnull=False).first(),
        timeout=60,
        interval=0.5,
        message="the worker to probe the connector",
    )
    assert probed.health_ok is True
