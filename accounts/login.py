"""Login with throttling, counted in the database so that every web process and every machine sees the same attempts.

Only failures count, within ``LOGIN_LOCKOUT_SECONDS``:

- one name from one address: ``LOGIN_MAX_FAILURES`` tries, then that address waits, even with the right password
  (one attacker's guesses at one account are bounded; the real user elsewhere is not locked out by them);
- one name from every address: ``LOGIN_MAX_FAILURES_PER_NAME`` tries, then the name waits everywhere (a
  distributed guess at one account stays bounded);
- one address, every name: past ``LOGIN_MAX_FAILURES_PER_IP`` failures, the address has one try per name instead of
  ``LOGIN_MAX_FAILURES``. It never refuses a right password to a name it has not failed: behind a proxy that is not
  declared in ``TRUSTED_PROXIES`` every client shares one address, and a flood of made-up names must not lock
  everybody out.

The address is the client's as the trusted reverse proxies report it (``client_ip``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from functools import lru_cache

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import ngettext_lazy

from .models import LoginAttempt

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=8)
def _networks(values: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(value, strict=False) for value in values)


def _address(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [2001:db8::1]:443
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # 192.0.2.1:443
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def client_ip(request) -> str | None:
    """The client's address: ``REMOTE_ADDR``, or when that is a trusted proxy, the right-most address of
    ``X-Forwarded-For`` that is not one of the trusted proxies.

    Each proxy appends the address it received the request from; whatever is left of that was written by the
    client and proves nothing, so the walk from the right stops at the first address no trusted proxy owns.
    """
    remote = _address(request.META.get("REMOTE_ADDR", ""))
    if remote is None:
        return None
    trusted = _networks(tuple(settings.TRUSTED_PROXIES))

    def is_trusted(address: Address) -> bool:
        return any(address in network for network in trusted)

    client = remote
    if is_trusted(remote):
        hops = [hop for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:
                break
            client = address
            if not is_trusted(address):
                break
    return str(client)


def login_locked(username: str, ip: str | None) -> bool:
    since = timezone.now() - dt.timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS)
    failures = LoginAttempt.objects.filter(at__gte=since, succeeded=False)
    name = username.lower()
    if failures.filter(username=name).count() >= settings.LOGIN_MAX_FAILURES_PER_NAME:
        return True
    pair = failures.filter(username=name, ip=ip).count()
    if pair >= settings.LOGIN_MAX_FAILURES:
        return True
    return pair > 0 and failures.filter(ip=ip).count() >= settings.LOGIN_MAX_FAILURES_PER_IP


class ThrottledAuthenticationForm(AuthenticationForm):
    error_messages = AuthenticationForm.error_messages | {
        # The number is the parameter « minutes » given when the error is raised.
        "locked": ngettext_lazy(
            "Trop de tentatives de connexion échouées : réessayez dans %(minutes)s minute, ou demandez à un "
            "administrateur de vérifier votre compte.",
            "Trop de tentatives de connexion échouées : réessayez dans %(minutes)s minutes, ou demandez à un "
            "administrateur de vérifier votre compte.",
            "minutes",
        ),
    }

    def clean(self):
        username = (self.cleaned_data.get("username") or "")[:150]
        ip = client_ip(self.request) if self.request else None
        if username and login_locked(username, ip):
            # Refused before the password is even checked: a locked name reveals nothing about its password.
            raise ValidationError(
                self.error_messages["locked"],
                code="locked",
                params={"minutes": settings.LOGIN_LOCKOUT_SECONDS // 60},
            )
        try:
            data = super().clean()
        except ValidationError:
            if username:
                LoginAttempt.objects.create(username=username.lower(), ip=ip, succeeded=False)
            raise
        LoginAttempt.objects.create(username=username.lower(), ip=ip, succeeded=True)
        return data


class LoginView(auth_views.LoginView):
    form_class = ThrottledAuthenticationForm
    redirect_authenticated_user = True
