"""The e-mail summary after an automatic run that ended with anomalies or errors."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.mail import send_mail
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _

from companies.selectors import companies_for_user

from .models import SyncRun, SyncRunCompany

RIGHT = ("synchro", "view_synchronisations")


def _recipients():
    permission = Permission.objects.get(content_type__app_label=RIGHT[0], codename=RIGHT[1])
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .exclude(email="")
        .filter(Q(is_superuser=True) | Q(user_permissions=permission) | Q(groups__permissions=permission))
        .distinct()
    )


def run_notify(*, run_id: int) -> int:
    """One e-mail per user holding « Visuel Synchronisations » for the companies in trouble; returns how many."""
    if not SyncRun.objects.filter(pk=run_id, trigger=SyncRun.Trigger.SCHEDULE, notified_at__isnull=True).exists():
        return 0
    troubled = list(
        SyncRunCompany.objects.filter(run_id=run_id)
        # What this run refused or could not settle; entries left in anomaly by an earlier run were mailed then.
        .filter(
            Q(rejected__gt=0)
            | Q(update_rejected__gt=0)
            | Q(unknown__gt=0)
            | ~Q(error="")
            | Q(status=SyncRunCompany.Status.FAILED)
        )
        .select_related("company")
    )
    # Claim the notification, so that a second finisher never sends it twice.
    if not SyncRun.objects.filter(pk=run_id, notified_at__isnull=True).update(notified_at=timezone.now()):
        return 0
    if not troubled:
        return 0
    run = SyncRun.objects.get(pk=run_id)
    sent = 0
    for user in _recipients():
        visible = set(companies_for_user(user).values_list("pk", flat=True))
        lines = [line for line in troubled if line.company_id in visible]
        if not lines:
            continue
        body = render_to_string("synchro/email_run_summary.txt", {"run": run, "lines": lines, "user": user})
        send_mail(
            _("SFD Synchro : synchronisation automatique avec anomalies"),
            body,
            settings.DEFAULT_FROM_EMAIL,
            [user.email],
        )
        sent += 1
    return sent
