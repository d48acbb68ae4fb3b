"""Shared fixtures: the Sage FRP 1000 stub over real HTTP, named users, real workers, a real browser.

Services: PostgreSQL (``DATABASE_URL``), Redis (``CELERY_BROKER_URL``/``REDIS_URL``) and Chromium are used
when present. Without them, the groups that need them are skipped and named at the end of the run; with
``SFD_REQUIRE_SERVICES=1`` (what ``.ci/run`` sets) a missing one fails the run instead.
"""

from __future__ import annotations

import os
import shutil
import sys

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from tests.support.services import REQUIRED, SERVICES, SKIPPED, require_or_skip
from tests.support.stub import StubProcess

pytest_plugins = [
    "tests.support.clock",
    "tests.support.workers",
    "tests.support.brokers",
    "tests.support.browser",
    "tests.support.intake",
    "tests.support.exports",
]


# --- services: skip with a reason, or fail when CI requires them ---------------------------------------


def pytest_configure(config):
    if REQUIRED:
        if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
            raise pytest.UsageError("SFD_REQUIRE_SERVICES=1 but DATABASE_URL is not a PostgreSQL URL")
        if not os.environ.get("CELERY_BROKER_URL", "").startswith("redis"):
            raise pytest.UsageError("SFD_REQUIRE_SERVICES=1 but CELERY_BROKER_URL is not a Redis URL")


@pytest.fixture(autouse=True)
def _services_of_the_test(request):
    """A test marked postgres, redis or browser needs that service: skipped without it, or failed in CI."""
    for marker, service in (
        ("postgres", "postgres"),
        ("redis", "redis"),
        ("redis_server", "redis-server"),
        ("browser", "chromium"),
        ("tesseract", "tesseract"),
    ):
        if request.node.get_closest_marker(marker):
            require_or_skip(service)


def pytest_unconfigure(config):
    """The run's own var/ and queue go with it (``tests/support/settings.py``): nothing is left for ``make run``."""
    run_settings = sys.modules.get("tests.support.settings")
    if run_settings is None:
        return
    from django.conf import settings

    if settings.CELERY_BROKER_URL.startswith("redis://"):
        from kombu import Exchange, Queue

        from config.celery import app

        name = settings.CELERY_TASK_DEFAULT_QUEUE
        with app.connection_for_write() as connection:
            # Declared first: a channel deletes only the bindings it knows of.
            queue = Queue(name, Exchange(name, type="direct"), routing_key=name)(connection.default_channel)
            queue.declare()
            queue.delete()
    if run_settings.CREATED_VAR_DIR:
        shutil.rmtree(run_settings.CREATED_VAR_DIR, ignore_errors=True)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if SKIPPED:
        terminalreporter.section("groups skipped for a missing service")
        for service, reason in sorted(SKIPPED.items()):
            terminalreporter.write_line(f"{SERVICES[service].group}: skipped — {reason}")
        terminalreporter.write_line("Set SFD_REQUIRE_SERVICES=1 to make a missing service a failure (as CI does).")


# --- the Sage FRP 1000 stub ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def stub_process(tmp_path_factory):
    process = StubProcess(tmp_path_factory.mktemp("stub") / "sage.sqlite3")
    process.start()
    yield process
    process.stop()


@pytest.fixture
def sage(stub_process):
    """The stub, reset to its demo dataset with no fault, for one test."""
    stub_process.reset()
    yield stub_process
    stub_process.clear_faults()


@pytest.fixture
def connector(db, sage, settings):
    from connectors.models import Connector

    connector = Connector.objects.create(name="Sage FRP 1000", url=sage.url, timeout_seconds=5)
    connector.set_api_key(sage.api_key)
    connector.save()
    return connector


@pytest.fixture
def fast_retries(settings):
    settings.SAGE_RETRIES = 2
    settings.SAGE_BACKOFF_SECONDS = 0.01
    return settings


def make_company(connector, code: str, name: str | None = None, scan_directory: str = ""):
    from companies.models import Company

    return Company.objects.create(connector=connector, code=code, name=name or code, scan_directory=scan_directory)


@pytest.fixture
def jno(connector):
    return make_company(connector, "JNO", scan_directory="C0071000325_data_6")


@pytest.fixture
def multi(connector):
    return make_company(connector, "MULTI", scan_directory="C0071000325_data_8")


@pytest.fixture
def demo_companies(connector):
    from accounts.management.commands.seed_demo import DEMO_COMPANIES

    return [make_company(connector, code, name, scan) for name, code, scan in DEMO_COMPANIES]


# --- named users: alice the administrator, bob the accountant, charlie an outsider ---------------------


def grant(user, *codenames: str) -> None:
    for codename in codenames:
        app_label, _, name = codename.partition(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=name))
    # Permissions are cached on the instance.
    for cache in ("_perm_cache", "_user_perm_cache", "_group_perm_cache"):
        user.__dict__.pop(cache, None)


def give_companies(user, *companies, all_companies: bool = False) -> None:
    from companies.models import CompanyAccess

    access, _ = CompanyAccess.objects.get_or_create(user=user)
    access.all_companies = all_companies
    access.save()
    access.companies.add(*companies)


@pytest.fixture
def alice(db):
    return get_user_model().objects.create_superuser(
        "alice", "alice@example.com", "alice-password-2026", first_name="Alice"
    )


@pytest.fixture
def bob(db):
    return get_user_model().objects.create_user("bob", "bob@example.com", "bob-password-2026", first_name="Bob")


@pytest.fixture
def charlie(db):
    return get_user_model().objects.create_user("charlie", "charlie@example.com", "charlie-password-2026")
