"""``/healthz``: readiness as JSON. It lives in ``config``, on top of every app, because it reads them all (the
connectors' last probes, beat's heartbeat, the Celery broker); ``core`` stays below everything."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from connectors.models import Connector
from core.models import Heartbeat

from .celery import app as celery_app

logger = logging.getLogger(__name__)

# The probe must answer well within a container health check's timeout, whatever is down.
CHECK_TIMEOUT_SECONDS = 2.0
# The tick runs every minute: three missed ticks mean beat (or every worker) is gone.
BEAT_STALE_AFTER = timedelta(minutes=3)
# The Sage servers are probed every tick too: a verdict older than three ticks says nothing any more.
SAGE_PROBE_STALE_AFTER = timedelta(minutes=3)


def _guarded(name: str, check: Callable[..., dict], *args) -> dict:
    """Run one check; a failure is reported by its exception's class only (messages may name hosts)."""
    try:
        return check(*args)
    except Exception as exc:  # the probe must answer, whatever broke
        logger.warning("healthz: the %s check failed", name, exc_info=True)
        return {"ok": False, "error": type(exc).__name__}


def _database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"ok": True}


def _broker() -> dict:
    if celery_app.conf.broker_url.startswith("filesystem://"):
        folder = celery_app.conf.broker_transport_options.get("data_folder_in", "")
        if folder and Path(folder).is_dir():
            return {"ok": True}
        return {"ok": False, "error": "dossier de la file Celery absent"}
    timeouts = {"socket_connect_timeout": CHECK_TIMEOUT_SECONDS, "socket_timeout": CHECK_TIMEOUT_SECONDS}
    with celery_app.connection_for_write(connect_timeout=CHECK_TIMEOUT_SECONDS, transport_options=timeouts) as broker:
        broker.ensure_connection(max_retries=0, timeout=CHECK_TIMEOUT_SECONDS)
    return {"ok": True}


def _beat(required: bool) -> dict:
    heartbeat = Heartbeat.objects.filter(name="beat").first()
    if heartbeat is None:
        return {"ok": False, "required": required, "error": "aucun battement de beat enregistré"}
    age = timezone.now() - heartbeat.at
    result = {
        "ok": age < BEAT_STALE_AFTER,
        "required": required,
        "last_tick": heartbeat.at.isoformat(),
        "age_seconds": int(age.total_seconds()),
    }
    if not result["ok"]:
        result["error"] = "dernier battement de beat trop ancien"
    return result


def _sage() -> dict:
    """The last probe of each Sage FRP 1000 server (``connectors_health_refresh``, every minute in the worker), never
    a call to Sage: an anonymous request must not make SFD knock on its servers. Counts only, no names."""
    fresh_after = timezone.now() - SAGE_PROBE_STALE_AFTER
    probes = list(Connector.objects.values_list("health_ok", "health_checked_at"))
    fresh = [(ok, at) for ok, at in probes if ok is not None and at is not None and at >= fresh_after]
    failing = sum(1 for ok, _at in fresh if not ok)
    unknown = len(probes) - len(fresh)
    result: dict = {
        "ok": not failing and not unknown,
        "connectors": len(probes),
        "failing": failing,
        "unknown": unknown,
        "checked_at": min(at for _ok, at in fresh).isoformat() if fresh else None,
    }
    errors = []
    if failing:
        errors.append(
            ngettext(
                "%(count)d serveur Sage FRP 1000 injoignable ou en erreur",
                "%(count)d serveurs Sage FRP 1000 injoignables ou en erreur",
                failing,
            )
            % {"count": failing}
        )
    if unknown:
        errors.append(
            ngettext(
                "%(count)d serveur Sage FRP 1000 sans vérification récente",
                "%(count)d serveurs Sage FRP 1000 sans vérification récente",
                unknown,
            )
            % {"count": unknown}
        )
    if errors:
        result["error"] = " ; ".join(errors)
    return result


@never_cache
@require_safe
def healthz(request):
    """Readiness as JSON for probes and operators, without authentication and with no secret in it.

    Only the broker is reached over the network (bounded by CHECK_TIMEOUT_SECONDS, in a thread beside the database
    check); the Sage servers are read from their last probe.
    """
    require_beat = getattr(settings, "HEALTHZ_REQUIRE_BEAT", False)
    with ThreadPoolExecutor(max_workers=1) as pool:
        broker = pool.submit(_guarded, "broker", _broker)
        database = _guarded("database", _database)
        beat = _guarded("beat", _beat, require_beat)
        sage = _guarded("sage", _sage)
        checks = {"database": database, "broker": broker.result(), "beat": beat, "sage": sage}
    beat.setdefault("required", require_beat)
    # Sage FRP 1000 is someone else's server: when it is down, SFD itself still serves (and says so), so a probe
    # must not restart or unroute it. The answer is then « degraded », with 200.
    sage["required"] = False
    healthy = all(check["ok"] for check in checks.values() if check.get("required", True))
    status = "unhealthy" if not healthy else ("ok" if sage["ok"] else "degraded")
    return JsonResponse({"status": status, "checks": checks}, status=200 if healthy else 503)
