"""Settings of a deployment: ``DJANGO_SETTINGS_MODULE=config.production``.

Everything comes from the environment and nothing has a default that would be unsafe in production: a
missing secret, host list, database, broker or encryption key stops the start with a clear message rather
than falling back to the embedded default of ``config.settings``.
"""

from __future__ import annotations

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from .env import env_bool, env_int, env_required, env_str
from .settings import *  # noqa: F403


def _required_list(name: str) -> list[str]:
    values = [item.strip() for item in env_required(name).split(",") if item.strip()]
    if not values:
        raise ImproperlyConfigured(f"The environment variable {name} is required.")
    return values


DEBUG = False
SECRET_KEY = env_required("SECRET_KEY")
ALLOWED_HOSTS = _required_list("ALLOWED_HOSTS")

# The embedded default would silently fall back to SQLite and a file-system queue in a container.
env_required("DATABASE_URL")
env_required("CELERY_BROKER_URL")

# Never derived from SECRET_KEY here: rotating SECRET_KEY must not make the stored secrets unreadable.
SFD_ENCRYPTION_KEYS = _required_list("SFD_ENCRYPTION_KEYS")
for _key in SFD_ENCRYPTION_KEYS:
    try:
        Fernet(_key.encode())
    except ValueError:
        raise ImproperlyConfigured(
            "SFD_ENCRYPTION_KEYS must be Fernet keys (32 url-safe base64-encoded bytes), comma-separated, newest first."
        ) from None

# --- HTTPS, behind a reverse proxy that terminates TLS and sets X-Forwarded-Proto ---------------------

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
# Container and load-balancer probes speak plain HTTP to gunicorn, without the proxy's header.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
X_FRAME_OPTIONS = "DENY"

# --- static files: collected at image build, served by whitenoise with hashed, compressed names -------

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = False

# --- health, logs ------------------------------------------------------------------------------------

HEALTHZ_REQUIRE_BEAT = env_bool("HEALTHZ_REQUIRE_BEAT", True)

# The filters and loggers of config.settings, written as JSON lines.
LOGGING = LOGGING | {  # noqa: F405
    "formatters": {"json": {"()": "core.logging.JsonFormatter"}},
    "handlers": {"stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "json"}},
    "root": {"handlers": ["stdout"], "level": env_str("LOG_LEVEL", "INFO")},
}
