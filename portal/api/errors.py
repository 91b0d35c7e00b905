"""One place for API error bodies.

REGARDS-style endpoints (`/api/v1/rs-...`) answer `{"messages": [...]}` as their reference
API does; every other endpoint answers RFC 9457 `application/problem+json`, keeping the
documented code in `code`. No malformed request may reach a 500.
"""
from __future__ import annotations

from http import HTTPStatus

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from portal import errors as domain

REGARDS_PREFIX = "/api/v1/rs-"
PROBLEM_CONTENT_TYPE = "application/problem+json"


class RegardsMessagesOutputSerializer(serializers.Serializer):
    """OpenAPI shape of a REGARDS error (or 204 notice) body."""

    messages = serializers.ListField(child=serializers.CharField())


class ApiError(exceptions.APIException):
    """An error with a documented wire code, e.g. ApiError(401, "ONLY_PAUSED_ORDER_CAN_BE_RESUMED")."""

    def __init__(self, status_code: int, code: str, detail: str | None = None, extra: dict | None = None):
        self.status_code = status_code
        self.code = code
        self.extra = extra or {}
        super().__init__(detail=detail or code, code=code)


# The one table from domain exceptions to HTTP statuses. A protocol whose reference API uses
# other statuses for some codes overrides them by code (REGARDS: refusals are 401).
STATUS_BY_DOMAIN_ERROR: dict[type[domain.DomainError], int] = {
    domain.NotFound: status.HTTP_404_NOT_FOUND,
    domain.NotAllowed: status.HTTP_403_FORBIDDEN,
    domain.NotAuthenticated: status.HTTP_401_UNAUTHORIZED,
    domain.Refused: status.HTTP_409_CONFLICT,
    domain.Invalid: status.HTTP_400_BAD_REQUEST,
    domain.Gone: status.HTTP_410_GONE,
    domain.NotReady: status.HTTP_202_ACCEPTED,
    domain.LimitExceeded: status.HTTP_409_CONFLICT,
}
STATUS_BY_CODE: dict[str, int] = {}


def status_for(exc: domain.DomainError) -> int:
    if exc.code in STATUS_BY_CODE:
        return STATUS_BY_CODE[exc.code]
    for klass in type(exc).__mro__:
        if klass in STATUS_BY_DOMAIN_ERROR:
            return STATUS_BY_DOMAIN_ERROR[klass]
    return status.HTTP_500_INTERNAL_SERVER_ERROR


def api_error_from_domain(exc: domain.DomainError) -> "ApiError":
    return ApiError(status_for(exc), exc.code, None if exc.message == exc.code else exc.message, exc.details)


def _flatten(detail, prefix: str = "") -> list[str]:
    if isinstance(detail, dict):
        out: list[str] = []
        for key, value in detail.items():
            name = "" if key == "non_field_errors" else f"{prefix}{key}"
            out.extend(_flatten(value, f"{name}." if name else ""))
        return out
    if isinstance(detail, (list, tuple)):
        out = []
        for item in detail:
            out.extend(_flatten(item, prefix))
        return out
    text = str(detail)
    return [f"{prefix[:-1]}: {text}" if prefix else text]


def is_regards_path(path: str) -> bool:
    return path.startswith(REGARDS_PREFIX)


def error_body(path: str, status_code: int, messages: list[str], code: str | None, extra: dict | None = None):
    """Returns (body, content_type) in the convention of the endpoint at `path`."""
    if is_regards_path(path):
        return {"messages": messages}, "application/json"
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status_code).phrase,
        "status": status_code,
        "detail": "; ".join(messages),
    }
    if code:
        body["code"] = code
    if len(messages) > 1:
        body["errors"] = messages
    body.update(extra or {})
    return body, PROBLEM_CONTENT_TYPE


def exception_handler(exc, context):
    request = context.get("request")
    path = request.path if request is not None else ""
    if isinstance(exc, domain.DomainError):
        exc = api_error_from_domain(exc)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real bug: let Django's 500 handling log it
    if isinstance(exc, ApiError):
        messages = [exc.code] if exc.detail == exc.code else [exc.code, str(exc.detail)]
        if is_regards_path(path):
            messages = [exc.code]
        code, extra = exc.code, exc.extra
    else:
        messages = _flatten(exc.detail) if hasattr(exc, "detail") else [str(exc)]
        code = getattr(exc, "default_code", None)
        extra = None
    body, content_type = error_body(path, response.status_code, messages, code, extra)
    response.data = body
    response.content_type = content_type
    return response


def _json_error(request, status_code: int, message: str):
    body, content_type = error_body(request.path, status_code, [message], None)
    return JsonResponse(body, status=status_code, content_type=content_type)


def handler400(request, exception=None):
    if not request.path.startswith("/api"):
        from django.views.defaults import bad_request

        return bad_request(request, exception)
    return _json_error(request, status.HTTP_400_BAD_REQUEST, "Bad request")


def handler403(request, exception=None):
    if not request.path.startswith("/api"):  # pages (and the admin) answer with an HTML page
        from django.views.defaults import permission_denied

        return permission_denied(request, exception)
    return _json_error(request, status.HTTP_403_FORBIDDEN, "Forbidden")


def handler404(request, exception=None):
    if not request.path.startswith("/api"):
        from django.views.defaults import page_not_found

        return page_not_found(request, exception)
    return _json_error(request, status.HTTP_404_NOT_FOUND, "Not found")


def handler500(request):
    if not request.path.startswith("/api"):
        from django.views.defaults import server_error

        return server_error(request)
    return _json_error(request, status.HTTP_500_INTERNAL_SERVER_ERROR, "Internal server error")


def problem_response(request, status_code: int, code: str, detail: str | None = None) -> Response:
    """An error Response built outside the exception path (e.g. inside a streaming view)."""
    body, content_type = error_body(request.path, status_code, [detail or code], code)
    return Response(body, status=status_code, content_type=content_type)
