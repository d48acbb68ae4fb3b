"""Settings of SFD Synchro, read from the environment.

With nothing set, the app runs on its embedded default: SQLite in ``var/``, Celery on a local file-system
broker, the Sage FRP 1000 stub on 127.0.0.1:8765. ``DATABASE_URL`` (PostgreSQL) and ``CELERY_BROKER_URL``
(Redis) switch to the real services. ``config.production`` hardens this for a deployment.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import ipaddress
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from .env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("SFD_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY") or "django-insecure-sfd-synchro-embedded-default-only-for-a-laptop"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_htmx",
    "core",
    "connectors",
    "companies",
    "invoices",
    "synchro",
    "accounts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "core.middleware.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.context_processors.menu",
                "invoices.context_processors.imports_badge",
            ],
        },
    }
]

# --- database ---------------------------------------------------------------------------------------


def _sqlite(name: str | Path) -> dict:
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": name,
        # WAL, a busy timeout and immediate transactions: web, worker and beat write side by side
        # without « database is locked ».
        "OPTIONS": {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;",
        },
        # A file, not memory: the worker processes that tests start share it.
        "TEST": {"NAME": str(Path(name).with_name("test-" + Path(name).name))},
    }


DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL and not DATABASE_URL.startswith("sqlite"):
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = 10
elif DATABASE_URL:
    DATABASES = {"default": _sqlite(dj_database_url.parse(DATABASE_URL)["NAME"])}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {"default": _sqlite(VAR_DIR / "sfd.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- auth, sessions ---------------------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Django's model backend, except that a right acting on every company needs a user who sees every company.
AUTHENTICATION_BACKENDS = ["accounts.backends.CompanyScopedModelBackend"]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600, minimum=300)
SESSION_COOKIE_HTTPONLY = True
# Login throttling, within LOGIN_LOCKOUT_SECONDS (accounts/login.py): LOGIN_MAX_FAILURES per name from one
# address, LOGIN_MAX_FAILURES_PER_NAME per name from all addresses; past LOGIN_MAX_FAILURES_PER_IP an address has one
# try per name. Only failures count: a flood of wrong names never refuses someone else's right password.
LOGIN_MAX_FAILURES = env_int("LOGIN_MAX_FAILURES", 5, minimum=1)
LOGIN_MAX_FAILURES_PER_NAME = env_int("LOGIN_MAX_FAILURES_PER_NAME", 50, minimum=1)
LOGIN_MAX_FAILURES_PER_IP = env_int("LOGIN_MAX_FAILURES_PER_IP", 30, minimum=1)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 900, minimum=60)


def _networks(name: str) -> list[str]:
    values = env_list(name, [])
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ImproperlyConfigured(
                f"{name} must list IP addresses or networks, comma-separated (e.g. 172.18.0.1,10.0.0.0/8), "
                f"not {value!r}."
            ) from None
    return values


# The reverse proxies whose X-Forwarded-For is believed, as the address web sees them come from. Empty: the header
# is ignored and the client is REMOTE_ADDR (behind a proxy, then, every client is the proxy).
TRUSTED_PROXIES = _networks("TRUSTED_PROXIES")
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# --- i18n -------------------------------------------------------------------------------------------

LANGUAGE_CODE = "fr"
# French only: the product speaks its manual's words, and a browser asking for English must not get Django's own
# messages (« Enter a valid date. ») in English among French labels.
LANGUAGES = [("fr", "Français")]
TIME_ZONE = "Europe/Paris"
USE_I18N = True
USE_TZ = True
LOCALE_PATHS = [BASE_DIR / "locale"]

# --- static files -----------------------------------------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# --- e-mail -----------------------------------------------------------------------------------------

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "SFD Synchro <sfd-synchro@localhost>")

# --- Celery (read by config/celery.py through the CELERY_ namespace) --------------------------------

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or "filesystem://"
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 3000, minimum=10)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 3300, minimum=20)
if CELERY_TASK_TIME_LIMIT <= CELERY_TASK_SOFT_TIME_LIMIT:
    raise ImproperlyConfigured("CELERY_TASK_TIME_LIMIT must be above CELERY_TASK_SOFT_TIME_LIMIT.")
# Above the longest task, so that Redis never hands a running task to a second worker.
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {"visibility_timeout": CELERY_TASK_TIME_LIMIT + 600}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS |= {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A task running when the broker connection drops finishes its work (the database records it); its message is
# replaced by the reaper if it is lost. Cancelling it would only throw away progress.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TIMEZONE = TIME_ZONE
CELERY_ENABLE_UTC = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# Beat has one synchronisation entry: a tick every minute that takes due schedule slots in the database.
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "celery")
SCHEDULER_TICK_SECONDS = env_float("SCHEDULER_TICK_SECONDS", 60.0, minimum=1.0)
CELERY_BEAT_SCHEDULE: dict = {
    "schedule-tick": {"task": "synchro.tasks.schedule_tick", "schedule": SCHEDULER_TICK_SECONDS},
    # The « Répertoire de scan » of every company, read every five minutes (also on « Importer »).
    "invoices-intake": {"task": "invoices.tasks.intake_all_companies", "schedule": 300.0},
    # Paper invoices whose reading was lost with its worker, read again.
    "invoices-paper-reap": {"task": "invoices.tasks.paper_reap_task", "schedule": 120.0},
    # Each Sage FRP 1000 server's /health, stored for /healthz, which never calls Sage itself. A probe that waited in
    # the queue longer than a tick is dropped: the next one is due.
    "connectors-health": {
        "task": "connectors.tasks.connectors_health_task",
        "schedule": SCHEDULER_TICK_SECONDS,
        "options": {"expires": SCHEDULER_TICK_SECONDS},
    },
}

# --- the Sage FRP 1000 connector and the synchronisation --------------------------------------------

SAGE_FRP1000_URL = env_str("SAGE_FRP1000_URL", "http://127.0.0.1:8765")
SAGE_FRP1000_API_KEY = env_str("SAGE_FRP1000_API_KEY", "demo-sage-key")
SAGE_FRP1000_TIMEOUT = env_float("SAGE_FRP1000_TIMEOUT", 30.0, minimum=1.0)
SAGE_MAX_RESPONSE_BYTES = env_int("SAGE_MAX_RESPONSE_BYTES", 10 * 1024 * 1024, minimum=1024)
SAGE_RETRIES = env_int("SAGE_RETRIES", 3, minimum=0, maximum=10)
SAGE_BACKOFF_SECONDS = env_float("SAGE_BACKOFF_SECONDS", 0.5, minimum=0.0)
REFERENTIAL_PAGE_SIZE = env_int("REFERENTIAL_PAGE_SIZE", 1000, minimum=1, maximum=5000)
# A pull whose answer would deactivate more than this share of a kind (or all of it) reads the kind in full again
# before applying it: one faulty answer must not switch off a whole chart of accounts.
REFERENTIAL_MAX_GONE_SHARE = env_float("REFERENTIAL_MAX_GONE_SHARE", 0.5, minimum=0.0)
if REFERENTIAL_MAX_GONE_SHARE > 1:
    raise ImproperlyConfigured("REFERENTIAL_MAX_GONE_SHARE is a share: between 0 and 1.")
SYNC_BATCH_SIZE = env_int("SYNC_BATCH_SIZE", 200, minimum=1, maximum=1000)
# How many times one batch is sent again after outcomes that had to be reconciled.
SYNC_SEND_ROUNDS = env_int("SYNC_SEND_ROUNDS", 5, minimum=1)
# A run line that shows no sign of life for this long, with its company free, is dispatched again.
SYNC_REAP_SECONDS = env_int("SYNC_REAP_SECONDS", 300, minimum=1)
SYNC_HISTORY_RETENTION_DAYS = env_int("SYNC_HISTORY_RETENTION_DAYS", 365, minimum=1)
PULL_PROGRESS_INTERVAL = env_float("PULL_PROGRESS_INTERVAL", 1.0, minimum=0.0)
# How long a company stays leased by one sync without a sign of life; a killed worker frees it after this. The holder
# renews it every quarter of this from a thread of its own, however long the sync takes.
SYNC_LEASE_SECONDS = env_int("SYNC_LEASE_SECONDS", 60, minimum=1)

# Fernet keys for secrets at rest, newest first (rotation: prepend a new key, run rotate_encryption_key).
_derived_key = base64.urlsafe_b64encode(hashlib.sha256(("sfd-fernet:" + SECRET_KEY).encode()).digest()).decode()
SFD_ENCRYPTION_KEYS = env_list("SFD_ENCRYPTION_KEYS", [_derived_key])

SCAN_ROOT = Path(env_str("SCAN_ROOT", str(VAR_DIR / "scan")))
# How long reading one paper invoice (OCR, every page) may take: the task's hard limit, after which a reading is
# taken for lost with its worker and done again.
PAPER_READ_SECONDS = env_int("PAPER_READ_SECONDS", 600, minimum=60)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"client_error_without_traceback": {"()": "core.logging.ClientErrorWithoutTraceback"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # SQL at DEBUG would put parameters, hence personal data, in the logs.
        "django.db.backends": {"level": "INFO"},
        "factur-x": {"level": "WARNING"},
        # A 403 or a 404 is one warning line, not a traceback that reads like a crash.
        "django.request": {"filters": ["client_error_without_traceback"]},
    },
}

# The embedded default keeps its state in var/; create what the app expects there (never fatal).
for _directory in (VAR_DIR, STATIC_ROOT):
    with contextlib.suppress(OSError):
        _directory.mkdir(parents=True, exist_ok=True)
