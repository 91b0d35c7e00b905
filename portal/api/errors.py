"""One place for API error bodies and statuses.

REGARDS-style endpoints (`/api/v1/rs-...`) answer `{"messages": [...]}` as their reference
API does; every other endpoint answers RFC 9457 `application/problem+json`, keeping the
documented code in `code`. Domain exceptions (`portal/errors.py`) get their status from the
table of the protocol at the request's path. No malformed request may reach a 500.
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
ADMIN_ROLE_REQUIRED = "ADMIN_ROLE_REQUIRED"
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


# Problem+json (every endpoint but REGARDS'): the status of each kind of domain error.
STATUS_BY_DOMAIN_ERROR: dict[type[domain.DomainError], int] = {
    domain.NotFound: status.HTTP_404_NOT_FOUND,
    domain.NotAllowed: status.HTTP_403_FORBIDDEN,
    domain.NotAuthenticated: status.HTTP_401_UNAUTHORIZED,
    domain.Refused: status.HTTP_409_CONFLICT,
    domain.Invalid: status.HTTP_400_BAD_REQUEST,
    domain.Gone: status.HTTP_410_GONE,
    domain.NotReady: status.HTTP_202_ACCEPTED,
    domain.Failed: status.HTTP_422_UNPROCESSABLE_ENTITY,
    domain.LimitExceeded: status.HTTP_409_CONFLICT,
    domain.Unavailable: status.HTTP_503_SERVICE_UNAVAILABLE,
}
# A documented code whose status differs from its kind's.
STATUS_BY_CODE: dict[str, int] = {}

# REGARDS (`/api/v1/rs-...`): its reference API refuses what an object's state forbids with 401.
REGARDS_STATUS_BY_DOMAIN_ERROR: dict[type[domain.DomainError], int] = {
    **STATUS_BY_DOMAIN_ERROR,
    domain.Refused: status.HTTP_401_UNAUTHORIZED,
}
# Documented REGARDS codes whose status differs from their kind's (e.g. labels: 422). The apps
# own their codes: each adds its `REGARDS_STATUS_BY_CODE` (from its codes.py) when it is ready.
REGARDS_STATUS_BY_CODE: dict[str, int] = {}


def status_for(exc: domain.DomainError, path: str = "") -> int:
    """The status of a domain error in the protocol of the endpoint at `path`."""
    by_code, by_kind = ((REGARDS_STATUS_BY_CODE, REGARDS_STATUS_BY_DOMAIN_ERROR) if is_regards_path(path)
                        else (STATUS_BY_CODE, STATUS_BY_DOMAIN_ERROR))
    if exc.code in by_code:
        return by_code[exc.code]
    for klass in type(exc).__mro__:
        if klass in by_kind:
            return by_kind[klass]
    return status.HTTP_500_INTERNAL_SERVER_ERROR


def api_error_from_domain(exc: domain.DomainError, path: str = "") -> "ApiError":
    return ApiError(status_for(exc, path), exc.code, None if exc.message == exc.code else exc.message, exc.details)


def flatten_errors(detail, prefix: str = "") -> list[str]:
    """Validation errors (nested dicts and lists) as `field.sub: message` lines."""
    if isinstance(detail, dict):
        out: list[str] = []
        for key, value in detail.items():
            # Errors of an object as a whole are named by the object (nothing at the top).
            name = prefix[:-1] if key == "non_field_errors" else f"{prefix}{key}"
            out.extend(flatten_errors(value, f"{name}." if name else ""))
        return out
    if isinstance(detail, (list, tuple)):
        out = []
        for item in detail:
            out.extend(flatten_errors(item, prefix))
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
        exc = api_error_from_domain(exc, path)
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
        messages = flatten_errors(exc.detail) if hasattr(exc, "detail") else [str(exc)]
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


def require_admin(request) -> None:
    """403 ADMIN_ROLE_REQUIRED unless the caller administers the request's project."""
    if not request.access.is_admin:
        raise ApiError(status.HTTP_403_FORBIDDEN, ADMIN_ROLE_REQUIRED)


def problem_response(request, status_code: int, code: str, detail: str | None = None) -> Response:
    """An error Response built outside the exception path (e.g. inside a streaming view)."""
    body, content_type = error_body(request.path, status_code, [detail or code], code)
    return Response(body, status=status_code, content_type=content_type)
