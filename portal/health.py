from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from portal.catalog.storage import storage_check
from portal.celery import app as celery_app


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return "ok"
    except Exception as exc:  # health checks report, they do not raise
        return f"error: {exc.__class__.__name__}"


def _check_broker() -> str:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return "ok"
    except Exception as exc:
        return f"error: {exc.__class__.__name__}"


def _report(checks: dict[str, str]) -> JsonResponse:
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ok" if healthy else "error", **checks}, status=200 if healthy else 503)


@require_GET
def healthz(request):
    """Liveness of a web node: it answers, and reaches PostgreSQL and the broker."""
    return _report({"database": _check_database(), "broker": _check_broker()})


@require_GET
def readyz(request):
    """Readiness: as /healthz, and every storage (local roots or object storage buckets) answers."""
    return _report({"database": _check_database(), "broker": _check_broker(), "storage": storage_check()})
