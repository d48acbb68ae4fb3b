"""The environment of a production process (``config.production``) started by a test, and nothing else of this
machine's."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet


def production_env(tmp_path: Path, **overrides: str | None) -> dict[str, str]:
    """A production-like environment in ``tmp_path`` (``None`` removes a variable)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DJANGO_SETTINGS_MODULE": "config.production",
        "SECRET_KEY": secrets.token_urlsafe(50)[:50],
        "ALLOWED_HOSTS": "sfd.example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'production.sqlite3'}",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/15",
        "SFD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "SFD_VAR_DIR": str(tmp_path / "var"),
        "STATIC_ROOT": str(tmp_path / "static"),
    }
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env
