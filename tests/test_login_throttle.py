"""Login throttling through the real login view, behind the README's reverse proxy and without it.

The proxy is 172.18.0.1 (as docker-compose's web sees the host's nginx); 203.0.113.9 is an attacker, 198.51.100.7
is bob at his desk. Thresholds are lowered so that each test hashes few passwords.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from html import unescape

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from accounts.models import LoginAttempt

LOGIN = reverse("login")
PROXY, ATTACKER, BOB_DESK = "172.18.0.1", "203.0.113.9", "198.51.100.7"
LOCKED = "Trop de tentatives de connexion échouées"


@pytest.fixture
def limits(settings):
    settings.LOGIN_MAX_FAILURES = 3
    settings.LOGIN_MAX_FAILURES_PER_NAME = 6
    settings.LOGIN_MAX_FAILURES_PER_IP = 4
    settings.TRUSTED_PROXIES = []
    return settings


def _login(username: str, password: str, *, remote: str, forwarded: str | None = None):
    client = Client(REMOTE_ADDR=remote)
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    response = client.post(LOGIN, {"username": username, "password": password}, headers=headers)
    return response, client


def _logged_in(result) -> bool:
    response, client = result
    return response.status_code == 302 and "_auth_user_id" in client.session


def _locked(result) -> bool:
    response, _client = result
    return response.status_code == 200 and LOCKED in unescape(response.content.decode())


def test_behind_a_trusted_proxy_a_flood_of_made_up_names_locks_only_its_sender(limits, bob):
    limits.TRUSTED_PROXIES = [PROXY]
    for number in range(8):
        _login(f"inconnu{number}", "x", remote=PROXY, forwarded=ATTACKER)
    assert set(LoginAttempt.objects.values_list("ip", flat=True)) == {ATTACKER}
    assert _logged_in(_login("bob", "bob-password-2026", remote=PROXY, forwarded=BOB_DESK))
    # The sender, past its limit, has one try per name left: a wrong one locks that name for it only.
    assert not _logged_in(_login("bob", "devine", remote=PROXY, forwarded=ATTACKER))
    assert _locked(_login("bob", "bob-password-2026", remote=PROXY, forwarded=ATTACKER))
    assert _logged_in(_login("bob", "bob-password-2026", remote=PROXY, forwarded=BOB_DESK))


def test_with_no_trusted_proxy_a_flood_of_made_up_names_locks_out_no_right_password(limits, bob, charlie):
    # The README's proxy, not declared: every client is the proxy. The flood still locks nobody out.
    for number in range(8):
        _login(f"inconnu{number}", "x", remote=PROXY, forwarded=ATTACKER)
    assert set(LoginAttempt.objects.values_list("ip", flat=True)) == {PROXY}
    assert _logged_in(_login("bob", "bob-password-2026", remote=PROXY, forwarded=BOB_DESK))
    assert _logged_in(_login("charlie", "charlie-password-2026", remote=PROXY))


def test_the_forwarded_header_is_believed_only_from_a_trusted_proxy(limits, bob):
    limits.TRUSTED_PROXIES = ["10.0.0.0/8"]
    limits.LOGIN_MAX_FAILURES = limits.LOGIN_MAX_FAILURES_PER_NAME = 10
    _login("bob", "x", remote=ATTACKER, forwarded=BOB_DESK)  # straight to gunicorn, header forged
    # Through the proxy, with an address made up by the client on the left of what the proxy appended.
    _login("bob", "x", remote="10.1.2.3", forwarded=f"{BOB_DESK}, {ATTACKER}")
    # Through two trusted proxies (a load balancer, then nginx).
    _login("bob", "x", remote="10.1.2.3", forwarded=f"{ATTACKER}, 10.9.9.9")
    # A header that is not an address ends the walk at the proxy that passed it on.
    _login("bob", "x", remote="10.1.2.3", forwarded="n'importe quoi")
    _login("bob", "x", remote="10.1.2.3", forwarded=f"[2001:db8::7]:51000, {ATTACKER}:443")
    assert list(LoginAttempt.objects.order_by("pk").values_list("ip", flat=True)) == [
        ATTACKER, ATTACKER, ATTACKER, "10.1.2.3", ATTACKER,
    ]  # fmt: skip


def test_guessing_one_password_from_one_address_is_bounded(limits, bob):
    for _attempt in range(3):
        assert not _logged_in(_login("bob", "devine", remote=ATTACKER))
    assert _locked(_login("bob", "bob-password-2026", remote=ATTACKER))
    assert LoginAttempt.objects.filter(succeeded=True).count() == 0
    # bob, elsewhere, is not locked out by the attacker's guesses.
    assert _logged_in(_login("bob", "bob-password-2026", remote=BOB_DESK))


def test_guessing_one_password_from_many_addresses_is_bounded(limits, bob):
    for number in range(6):
        _login("BOB", "devine", remote=f"192.0.2.{number // 2 + 1}")
    assert _locked(_login("bob", "bob-password-2026", remote="192.0.2.200"))
    assert _locked(_login("bob", "bob-password-2026", remote=BOB_DESK))


def test_the_lock_ends_with_its_window(limits, bob):
    with time_machine.travel(dt.datetime(2026, 12, 31, 23, 50, tzinfo=dt.UTC), tick=False):
        for _attempt in range(3):
            _login("bob", "devine", remote=ATTACKER)
        assert _locked(_login("bob", "bob-password-2026", remote=ATTACKER))
    with time_machine.travel(dt.datetime(2027, 1, 1, 0, 6, tzinfo=dt.UTC), tick=False):
        assert _logged_in(_login("bob", "bob-password-2026", remote=ATTACKER))


def test_a_bad_trusted_proxy_stops_the_start():
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={"DJANGO_SETTINGS_MODULE": "config.settings", "TRUSTED_PROXIES": "172.18.0.1,nginx", "PATH": "/usr/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "TRUSTED_PROXIES must list IP addresses or networks" in result.stderr and "'nginx'" in result.stderr
