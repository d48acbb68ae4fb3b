"""Login with throttling: after repeated failures, a name (or an address) waits before trying again.

Counted in the database, so that every web process and every machine sees the same attempts.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import LoginAttempt


def _ip(request) -> str | None:
    # REMOTE_ADDR only: a forwarded header is whatever the client wants it to be unless a trusted proxy sets it.
    return request.META.get("REMOTE_ADDR") or None


def login_locked(username: str, ip: str | None) -> bool:
    since = timezone.now() - dt.timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS)
    failures = LoginAttempt.objects.filter(at__gte=since, succeeded=False)
    if failures.filter(username=username.lower()).count() >= settings.LOGIN_MAX_FAILURES:
        return True
    return ip is not None and failures.filter(ip=ip).count() >= settings.LOGIN_MAX_FAILURES_PER_IP


class ThrottledAuthenticationForm(AuthenticationForm):
    error_messages = AuthenticationForm.error_messages | {
        "locked": _(
            "Trop de tentatives de connexion échouées : réessayez dans %(minutes)s minutes, ou demandez à un "
            "administrateur de vérifier votre compte."
        ),
    }

    def clean(self):
        username = (self.cleaned_data.get("username") or "")[:150]
        ip = _ip(self.request) if self.request else None
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
