"""Secrets at rest: Fernet tokens under keys from the environment, newest first (rotation-friendly)."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class SecretUnreadable(Exception):
    """The stored secret was encrypted under a key that is no longer configured."""


def _fernet() -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode()) for key in settings.SFD_ENCRYPTION_KEYS])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "SFD_ENCRYPTION_KEYS must be Fernet keys (32 url-safe base64-encoded bytes), comma-separated."
        ) from exc


def encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable("La clé API enregistrée est illisible : ressaisissez-la.") from exc


def rotate(token: str) -> str:
    """The same secret, re-encrypted under the newest key."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable("La clé API enregistrée est illisible : ressaisissez-la.") from exc
