"""Deployment: production settings, JSON logs, /healthz, the compose file, rotating the encryption key."""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.utils import timezone

from connectors.models import Connector
from connectors.services import connectors_health_refresh
from core.logging import JsonFormatter, sync_logger
from core.models import Heartbeat
from core.services import heartbeat_touch
from tests.support.production import production_env
from tests.support.services import REQUIRED
from tests.support.stub import free_port

ROOT = Path(__file__).resolve().parents[1]


# --- production settings ------------------------------------------------------------------------------


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def printed(result: subprocess.CompletedProcess) -> list[str]:
    """What the script printed, without the JSON log lines that production also writes to stdout."""
    return [line for line in result.stdout.splitlines() if not line.startswith("{")]


def test_check_deploy_passes_without_a_warning(tmp_path):
    # DEBUG=1 in the environment must not turn the debug pages on in production.
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env(tmp_path, DEBUG="1"))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output
    assert "WARNING" not in output


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SECRET_KEY", None),
        ("SECRET_KEY", ""),
        ("ALLOWED_HOSTS", None),
        ("ALLOWED_HOSTS", " , "),
        ("DATABASE_URL", None),
        ("CELERY_BROKER_URL", None),
        ("SFD_ENCRYPTION_KEYS", None),
    ],
)
def test_production_refuses_to_start_without_a_required_variable(tmp_path, name, value):
    result = run(["-c", "import django; django.setup()"], production_env(tmp_path, **{name: value}))
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"The environment variable {name} is required." in result.stderr


def test_production_refuses_an_encryption_key_that_is_not_a_fernet_key(tmp_path):
    env = production_env(tmp_path, SFD_ENCRYPTION_KEYS="not-a-fernet-key")
    result = run(["-c", "import django; django.setup()"], env)
    assert result.returncode != 0
    assert "SFD_ENCRYPTION_KEYS must be Fernet keys" in result.stderr


def test_production_hardening_is_in_place(tmp_path):
    code = (
        "import django, json; django.setup()\n"
        "from django.conf import settings as s\n"
        "print(json.dumps({name: getattr(s, name) for name in ("
        "'DEBUG', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SECURE_SSL_REDIRECT', "
        "'SECURE_HSTS_SECONDS', 'SECURE_HSTS_INCLUDE_SUBDOMAINS', 'SECURE_HSTS_PRELOAD', 'X_FRAME_OPTIONS', "
        "'WHITENOISE_USE_FINDERS', 'HEALTHZ_REQUIRE_BEAT', 'SECURE_PROXY_SSL_HEADER')}"
        " | {'static': s.STORAGES['staticfiles']['BACKEND'], 'keys': s.SFD_ENCRYPTION_KEYS}))\n"
    )
    env = production_env(tmp_path, DEBUG="1")
    result = run(["-c", code], env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "DEBUG": False,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 365 * 24 * 3600,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
        "X_FRAME_OPTIONS": "DENY",
        "WHITENOISE_USE_FINDERS": False,
        "HEALTHZ_REQUIRE_BEAT": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "static": "whitenoise.storage.CompressedManifestStaticFilesStorage",
        # Exactly the configured key: nothing derived from SECRET_KEY is accepted in production.
        "keys": [env["SFD_ENCRYPTION_KEYS"]],
    }


def test_production_redirects_to_https_but_lets_probes_reach_healthz(tmp_path):
    code = (
        "import django; django.setup()\n"
        "from django.test import Client\n"
        "client = Client(HTTP_HOST='sfd.example.com')\n"
        "plain = client.get('/')\n"
        "print(plain.status_code, plain['Location'])\n"
        "print(client.get('/healthz').status_code)\n"
        "behind_proxy = client.get('/', headers={'X-Forwarded-Proto': 'https'})\n"
        "print(behind_proxy.status_code, behind_proxy['Location'])\n"
    )
    result = run(["-c", code], production_env(tmp_path))
    assert result.returncode == 0, result.stderr
    plain, healthz, behind_proxy = printed(result)
    assert plain == "301 https://sfd.example.com/"
    # No tables in this database, hence unhealthy: but answered over plain HTTP rather than redirected.
    assert healthz == "503"
    assert behind_proxy == "302 /accounts/login/?next=/"


@pytest.mark.slow
def test_static_files_are_collected_hashed_compressed_and_served_by_whitenoise(tmp_path):
    env = production_env(tmp_path)
    result = run(["manage.py", "collectstatic", "--noinput"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    hashed = json.loads((tmp_path / "static" / "staticfiles.json").read_text())["paths"]
    css = [name for name in hashed.values() if name.endswith(".css")]
    assert css and all(re.search(r"\.[0-9a-f]{12}\.css$", name) for name in css)
    assert all((tmp_path / "static" / (name + ".gz")).exists() for name in css)

    code = (
        "import django; django.setup()\n"
        "from django.test import Client\n"
        "client = Client(HTTP_HOST='sfd.example.com', headers={'X-Forwarded-Proto': 'https'})\n"
        "page = client.get('/accounts/login/')\n"
        "print(page.status_code)\n"
        "print(' '.join(sorted(set(__import__('re').findall(r'/static/[^\"]+', page.content.decode())))))\n"
    )
    result = run(["-c", code], env)
    assert result.returncode == 0, result.stderr
    status, links = printed(result)
    assert status == "200"
    assert links and all(link.removeprefix("/static/") in hashed.values() for link in links.split())

    served = run(
        [
            "-c",
            "import django; django.setup()\n"
            "from django.test import Client\n"
            f"response = Client(HTTP_HOST='sfd.example.com').get('/static/{css[0]}', secure=True)\n"
            "print(response.status_code, response['Cache-Control'])\n",
        ],
        env,
    )
    assert served.returncode == 0, served.stderr
    (served_line,) = printed(served)
    assert served_line.startswith("200 ") and "immutable" in served_line


def test_production_logs_are_json_lines_on_stdout(tmp_path):
    code = (
        "import django, logging; django.setup()\n"
        "from core.logging import sync_logger\n"
        "sync_logger(logging.getLogger('synchro.run'), run_id=7, company='JNO').warning('export de %d', 3)\n"
    )
    result = run(["-c", code], production_env(tmp_path))
    assert result.returncode == 0, result.stderr
    entry = json.loads(result.stdout.strip().splitlines()[-1])
    assert entry["message"] == "export de 3"
    assert (entry["run_id"], entry["company"], entry["level"], entry["logger"]) == (
        7,
        "JNO",
        "WARNING",
        "synchro.run",
    )


# --- the JSON formatter -------------------------------------------------------------------------------


@pytest.fixture
def json_log():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.deployment.json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)


def test_json_formatter_writes_one_object_per_line_with_run_and_company(json_log):
    logger, lines = json_log
    log = sync_logger(logger, run_id=12, company="SA AKAO")
    log.info("référentiel de %s :\n%d fournisseurs", "SA AKAO", 42, extra={"task_id": "abc-123"})
    try:
        raise ValueError("Sage a refusé")
    except ValueError:
        log.exception("échec")
    logger.info("hors synchronisation")
    first, second, third = lines()
    assert first["message"] == "référentiel de SA AKAO :\n42 fournisseurs"
    assert (first["run_id"], first["company"], first["task_id"]) == (12, "SA AKAO", "abc-123")
    assert first["level"] == "INFO" and first["logger"] == "tests.deployment.json"
    assert datetime.fromisoformat(first["time"]).tzinfo is not None
    assert second["level"] == "ERROR" and second["run_id"] == 12
    assert "ValueError: Sage a refusé" in second["exception"]
    assert "run_id" not in third and "company" not in third and "exception" not in third


def test_json_formatter_masks_credentials(json_log):
    logger, lines = json_log
    logger.info("broker redis://sfd:hunter2-secret@redis:6379/0 et Authorization: Bearer sk-live-123")
    (line,) = lines()
    assert "hunter2-secret" not in line["message"] and "sk-live-123" not in line["message"]
    assert "redis://sfd:***@redis:6379/0" in line["message"]


# --- /healthz -----------------------------------------------------------------------------------------


def healthz(client) -> tuple[int, dict, str]:
    response = client.get("/healthz")
    assert response["Content-Type"] == "application/json"
    return response.status_code, response.json(), response.content.decode()


def test_healthz_is_ok_against_the_stub_without_login_and_without_secrets(client, connector, sage):
    connectors_health_refresh()
    status, body, raw = healthz(client)
    assert status == 200, body
    assert body["status"] == "ok"
    checks = body["checks"]
    assert checks["database"]["ok"] and checks["broker"]["ok"] and checks["sage"]["ok"]
    assert {k: checks["sage"][k] for k in ("connectors", "failing", "unknown")} == {
        "connectors": 1,
        "failing": 0,
        "unknown": 0,
    }
    # Not required by the embedded default: reported, but it does not make the app unhealthy.
    assert checks["beat"]["required"] is False
    for secret in (sage.api_key, connector.api_key_encrypted, connector.url, connector.name):
        assert secret not in raw


def test_healthz_is_degraded_when_the_sage_server_is_unreachable(client, connector, sage):
    address = f"127.0.0.1:{free_port()}"
    connector.name, connector.url = "Serveur de Lyon", f"http://sfd:url-password@{address}"
    connector.save()
    connectors_health_refresh()
    status, body, raw = healthz(client)
    # Sage down is said, but SFD still serves: a probe must not take it out of rotation for someone else's outage.
    assert status == 200 and body["status"] == "degraded"
    assert body["checks"]["sage"]["failing"] == 1
    assert body["checks"]["sage"]["error"] == "1 serveur Sage FRP 1000 injoignable ou en erreur"
    assert body["checks"]["database"]["ok"]
    for secret in ("url-password", sage.api_key, address, connector.name):
        assert secret not in raw


def test_the_probe_gives_up_on_a_hanging_sage_server_within_its_timeout(connector, sage):
    sage.faults({"match": "GET /health", "fault": "latency", "delay": 8})
    started = time.monotonic()
    probes = connectors_health_refresh()
    assert time.monotonic() - started < 7  # its 2 s timeout, not the server's 8 s (room for a loaded machine)
    assert probes[connector.pk].message.startswith("Serveur injoignable")
    connector.refresh_from_db()
    assert connector.health_ok is False and connector.health_checked_at is not None


def test_the_probe_reports_a_refused_key_or_an_unreadable_one(client, connector, sage):
    second = Connector.objects.create(name="Second serveur", url=sage.url, timeout_seconds=5)
    second.set_api_key("not-the-key")
    second.save()
    Connector.objects.create(name="Clé illisible", url=sage.url, api_key_encrypted="gAAAAA-not-a-token")
    connectors_health_refresh()
    assert dict(Connector.objects.values_list("name", "health_message")) == {
        "Sage FRP 1000": "Connexion réussie : Sage FRP 1000 (simulateur SFD) 7.0-stub.",
        "Second serveur": "Connexion refusée : clé API refusée par Sage FRP 1000.",
        "Clé illisible": "La clé API enregistrée est illisible : ressaisissez-la.",
    }
    status, body, raw = healthz(client)
    assert status == 200 and body["status"] == "degraded"
    assert body["checks"]["sage"]["error"] == "2 serveurs Sage FRP 1000 injoignables ou en erreur"
    assert "not-the-key" not in raw and "gAAAAA-not-a-token" not in raw and "Second serveur" not in raw


@pytest.fixture
def unreachable_broker(monkeypatch):
    """Point the Celery app at a port where nothing listens: the broker is really down for the app."""
    # Celery reads this variable before its configuration, so it wins over CELERY_BROKER_URL of settings.
    monkeypatch.setenv("CELERY_BROKER_URL", f"redis://127.0.0.1:{free_port()}/0")


def test_healthz_is_unhealthy_when_the_broker_is_down(client, connector, unreachable_broker):
    connectors_health_refresh()
    status, body, _ = healthz(client)
    assert status == 503
    assert body["checks"]["broker"] == {"ok": False, "error": "OperationalError"}
    assert body["checks"]["database"]["ok"] and body["checks"]["sage"]["ok"]


def test_healthz_requires_a_fresh_beat_when_configured(client, connector, settings):
    settings.HEALTHZ_REQUIRE_BEAT = True
    status, body, _ = healthz(client)
    assert status == 503
    assert body["checks"]["beat"] == {
        "ok": False,
        "required": True,
        "error": "aucun battement de beat enregistré",
    }

    Heartbeat.objects.create(name="beat", at=timezone.now() - timedelta(minutes=3, seconds=5))
    status, body, _ = healthz(client)
    assert status == 503
    assert body["checks"]["beat"]["ok"] is False and body["checks"]["beat"]["age_seconds"] >= 185

    heartbeat_touch("beat")
    status, body, _ = healthz(client)
    assert status == 200, body
    assert body["checks"]["beat"]["ok"] is True and body["checks"]["beat"]["age_seconds"] < 60
    assert Heartbeat.objects.count() == 1


def test_healthz_answers_head_and_refuses_writes(client, connector):
    assert client.head("/healthz").status_code == 200
    assert client.post("/healthz").status_code == 405


# --- docker-compose -------------------------------------------------------------------------------------


def test_docker_compose_file_is_valid(tmp_path):
    binary = shutil.which("docker-compose")
    if binary is None:
        reason = "the docker-compose binary is absent (apt-get install -y docker-compose)"
        if REQUIRED:
            pytest.fail(f"docker-compose is required (SFD_REQUIRE_SERVICES=1): {reason}", pytrace=False)
        pytest.skip(reason)
    # The compose file reads .env; check it with the example's values, never with a real .env.
    shutil.copy(ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    result = subprocess.run(
        [binary, "config", "-q"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    services = subprocess.run(
        [binary, "config", "--services"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    assert set(services) == {"postgres", "redis", "migrate", "web", "worker", "beat", "stub"}


def test_env_example_names_every_variable_the_settings_read():
    sources = (ROOT / "config" / "settings.py").read_text() + (ROOT / "config" / "production.py").read_text()
    read = set(re.findall(r"env_\w+\(\s*\"([A-Z][A-Z0-9_]+)\"", sources))
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert read - documented == set()


# --- rotation of the encryption key ---------------------------------------------------------------------


def test_rotate_encryption_key_re_encrypts_under_the_newest_key(connector, sage, settings):
    old_keys = list(settings.SFD_ENCRYPTION_KEYS)
    new_key = Fernet.generate_key().decode()
    settings.SFD_ENCRYPTION_KEYS = [new_key, *old_keys]
    before = connector.api_key_encrypted
    out = io.StringIO()

    call_command("rotate_encryption_key", stdout=out)

    assert "1 clé API rechiffrée" in out.getvalue()
    connector.refresh_from_db()
    assert connector.api_key_encrypted != before
    assert Fernet(new_key.encode()).decrypt(connector.api_key_encrypted.encode()).decode() == sage.api_key
    # The old keys can now go: the connector still reads its key, and still reaches Sage with it.
    settings.SFD_ENCRYPTION_KEYS = [new_key]
    assert connector.decrypted_api_key() == sage.api_key
    with connector.client() as client:
        assert client.health()["status"] == "ok"


def test_rotate_encryption_key_names_what_it_cannot_read(connector, sage, settings):
    readable = Connector.objects.create(name="Lisible", url=sage.url)
    readable.set_api_key("lisible")
    readable.save()
    Connector.objects.filter(pk=connector.pk).update(
        api_key_encrypted=Fernet(Fernet.generate_key()).encrypt(b"lost").decode()
    )
    settings.SFD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *settings.SFD_ENCRYPTION_KEYS]
    out = io.StringIO()

    with pytest.raises(CommandError, match=r"Clé API illisible .* « Sage FRP 1000 »"):
        call_command("rotate_encryption_key", stdout=out)

    assert "1 clé API rechiffrée" in out.getvalue()
    readable.refresh_from_db()
    settings.SFD_ENCRYPTION_KEYS = settings.SFD_ENCRYPTION_KEYS[:1]
    assert readable.decrypted_api_key() == "lisible"
