"""Security: login throttling, sessions, logout, headers and CSP, hostile input, and the API key kept secret."""

from __future__ import annotations

import datetime as dt
import logging
import re
from html import unescape
from pathlib import Path

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import LoginAttempt
from companies.services import company_referential_pull
from tests.conftest import give_companies, grant
from tests.support.exports import export
from tests.support.invoices import make_invoice

LOGIN = reverse("login")
ROOT = Path(__file__).resolve().parents[1]


def _login(client, username, password):
    return client.post(LOGIN, {"username": username, "password": password})


def test_repeated_failures_lock_the_name_even_with_the_right_password(client, bob):
    for _attempt in range(5):
        response = _login(client, "bob", "mauvais-mot-de-passe")
        assert "Saisissez un nom d’utilisateur et un mot de passe valides" in unescape(response.content.decode())
    response = _login(client, "bob", "bob-password-2026")
    assert "Trop de tentatives de connexion échouées : réessayez dans 15 minutes" in unescape(response.content.decode())
    assert "_auth_user_id" not in client.session
    assert LoginAttempt.objects.filter(username="bob", succeeded=False).count() == 5


def test_the_lock_counts_per_name_and_a_success_passes_under_it(client, bob, charlie):
    for _attempt in range(4):
        _login(client, "bob", "x")
    assert _login(client, "bob", "bob-password-2026").status_code == 302
    for _attempt in range(5):
        _login(Client(), "charlie", "x")
    assert _login(Client(), "bob", "bob-password-2026").status_code == 302


def test_logout_is_a_post(client, bob):
    client.force_login(bob)
    assert client.get(reverse("logout")).status_code == 405
    assert client.post(reverse("logout")).status_code == 302
    assert "_auth_user_id" not in client.session


def test_sessions_expire(client, bob, settings):
    assert settings.SESSION_COOKIE_AGE <= 12 * 3600
    client.force_login(bob)
    session = client.session
    session.set_expiry(60)
    session.save()
    assert client.get(reverse("home")).status_code == 200  # within its minute, the session holds
    with time_machine.travel(timezone.now() + dt.timedelta(seconds=61), tick=False):
        response = client.get(reverse("home"))
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)


def test_passwords_are_validated(db):
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    for weak in ("12345678901", "motdepasse", "azerty"):
        with pytest.raises(ValidationError):
            validate_password(weak)


def test_every_page_carries_the_security_headers(client, alice):
    client.force_login(alice)
    response = client.get(reverse("home"))
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_no_template_has_inline_script_style_or_handler():
    offenders = []
    for template in [*ROOT.glob("templates/**/*.html"), *ROOT.glob("*/templates/**/*.html")]:
        text = template.read_text()
        if re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text) or re.search(r"\sstyle=\"", text):
            offenders.append(template.name)
        if re.search(r"\son[a-z]+=\"", text) or "javascript:" in text:
            offenders.append(template.name)
    assert offenders == []


HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "' OR '1'='1' --",
    "'; DROP TABLE invoices_invoice; --",
    "x" * 5000,
    "\x00\x01\x02\x7f",
    "%00%ff",
    "Ω≈ç√∫˜µ≤≥÷ 🙂",
    "../../etc/passwd",
    "=cmd|' /C calc'!A0",
]


@pytest.fixture
def everyone(alice, jno):
    company_referential_pull(company=jno)
    make_invoice(jno, number="FA-FUZZ", validate=True)
    return alice


FILTERED_PAGES = [
    ("invoices:list", ["company", "status", "supplier", "number", "bap", "date_from", "date_to", "page"]),
    (
        "synchro:list",
        ["type", "company", "status", "supplier", "date_from", "date_to", "after", "before", "last", "run"],
    ),
    ("synchro:csv", ["type", "company", "status", "supplier", "date_from", "date_to"]),
    ("synchro:history", ["page"]),
    ("accounts:rights", ["q", "page"]),
    ("connectors:settings", ["onglet"]),
    ("companies:list", []),
]


@pytest.mark.parametrize(("name", "params"), FILTERED_PAGES)
def test_filters_survive_hostile_input(client, everyone, name, params):
    client.force_login(everyone)
    for value in HOSTILE:
        for param in params or ["q"]:
            response = client.get(reverse(name), {param: value})
            assert response.status_code in (200, 302), (name, param, value[:20], response.status_code)
            body = b"".join(response.streaming_content) if response.streaming else response.content
            assert b"<script>alert(1)</script>" not in body
            assert b"<img src=x onerror" not in body


def test_invalid_utf8_in_a_query_string_is_not_a_500(client, everyone):
    client.force_login(everyone)
    for name in ("invoices:list", "synchro:list", "accounts:rights"):
        response = client.get(reverse(name) + "?supplier=%ff%fe%fd&q=%c3%28&number=%80")
        assert response.status_code == 200


def test_forms_store_hostile_strings_escaped(client, everyone, jno):
    client.force_login(everyone)
    detail = reverse("companies:detail", args=[jno.pk])
    for value in HOSTILE:
        response = client.post(detail, {"scan_directory": value, "purchase_journal_code": value[:40] or "ACH"})
        assert response.status_code in (200, 302)
    page = client.get(detail).content
    assert b"<script>alert(1)</script>" not in page
    response = client.post(
        reverse("connectors:schedule"), {"frequency": "<script>", "time": "'; DROP TABLE", "enabled": "on"}
    )
    assert response.status_code == 200 and b"<script>" not in response.content.split(b"<main")[1].split(b"</main>")[0]
    invoice = jno.invoices.get(number="FA-FUZZ")
    response = client.post(
        reverse("invoices:detail", args=[invoice.pk]), {"number": HOSTILE[1], "lines-TOTAL_FORMS": "x"}
    )
    assert response.status_code in (200, 302, 400)


@pytest.mark.django_db(transaction=True)
def test_the_api_key_never_appears_in_logs_errors_or_task_arguments(client, jno, sage, caplog, fast_retries, bob):
    grant(bob, "synchro.view_synchronisations", "companies.update_companies", "connectors.manage_connectors")
    give_companies(bob, all_companies=True)
    caplog.set_level(logging.DEBUG)
    company_referential_pull(company=jno)
    make_invoice(jno, validate=True)
    sage.faults({"match": "POST /companies/*/entries", "fault": "status", "status": 500})
    line = export(jno)
    run = line.run
    client.force_login(bob)
    responses = [client.get(reverse(name)) for name in ("synchro:list", "connectors:settings", "companies:list")]
    responses.append(client.post(reverse("connectors:test", args=[jno.connector.pk]), follow=True))
    assert [response.status_code for response in responses] == [200, 200, 200, 200]
    pages = [response.content.decode() for response in responses]
    assert "JNO" in pages[0] and "Paramétrage des connecteurs" in pages[1] and "Société</h1>" in pages[2]
    key = sage.api_key
    assert key not in caplog.text
    assert key not in line.error and all(key not in page for page in pages)
    assert key not in str(run.selection) and key not in repr(jno.connector)
    from synchro.tasks import run_company_task

    signature = run_company_task.s(line.pk)
    assert signature.args == (line.pk,)  # tasks carry ids, never secrets
