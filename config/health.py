"""/health/ for an outside monitor: is paging able to work right now?

No login and no case data: only whether each part answers, how old the sweeper's heartbeat is,
and how late the most overdue alert step is. 200 when all is well, 503 otherwise, so a plain
HTTP check can page a human about the pager.
"""

from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from oncall.models import Alert, AlertState, Heartbeat


def _database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True}
    except Exception as exc:  # noqa: BLE001  (any failure is simply "not ok")
        return {"ok": False, "error": type(exc).__name__}


def _broker() -> dict:
    from config.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=1)
        return {"ok": True}
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": type(exc).__name__}


def _sweeper(now) -> dict:
    """The sweeper runs on a worker when beat sends it, so a fresh heartbeat shows beat, the
    broker, a worker on the paging queue and the database all working together."""
    beat = Heartbeat.objects.filter(name="sweeper").first()
    if beat is None:
        return {"ok": False, "age_seconds": None}
    age = (now - beat.at).total_seconds()
    return {"ok": age <= settings.HEALTH_HEARTBEAT_MAX_AGE_SECONDS, "age_seconds": round(age, 1)}


def _workers() -> dict:
    """Asked only when the heartbeat is stale, to tell a dead worker from a dead beat."""
    from config.celery import app

    try:
        replies = app.control.ping(timeout=1.0)
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": bool(replies), "answering": len(replies)}


def _overdue(now) -> dict:
    grace = timedelta(seconds=settings.ALERT_SWEEP_GRACE_SECONDS)
    oldest = (
        Alert.objects.filter(
            state__in=[AlertState.TRIGGERED, AlertState.ACKNOWLEDGED], next_step_at__lt=now - grace
        )
        .order_by("next_step_at")
        .values_list("next_step_at", flat=True)
        .first()
    )
    if oldest is None:
        return {"ok": True, "oldest_seconds": 0}
    return {"ok": False, "oldest_seconds": round((now - oldest).total_seconds(), 1)}


@never_cache
@require_GET
def health(request):
    now = timezone.now()
    checks = {"database": _database(), "broker": _broker()}
    if checks["database"]["ok"]:
        checks["sweeper"] = _sweeper(now)
        checks["overdue_alerts"] = _overdue(now)
    complete = len(checks) == 4
    if complete and not checks["sweeper"]["ok"] and checks["broker"]["ok"]:
        # Workers answering while the heartbeat is stale points at beat.
        checks["workers"] = _workers()
        checks["beat"] = {"ok": False, "suspect": checks["workers"]["ok"]}
    healthy = complete and all(check["ok"] for check in checks.values())
    return JsonResponse({"ok": healthy, "checks": checks}, status=200 if healthy else 503)
