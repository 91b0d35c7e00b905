"""Wire strictness shared by every endpoint.

- Strings are strings: DRF's CharField (and its kin: email, URL, slug, regex fields) turns a
  JSON number into text, so `{"label": 12}` passed as the label "12". The API's fields are
  documented as strings, and a client sending a number has a bug worth reporting, so a value
  that is not a string is refused like any other invalid value (400). Installed once, for
  every serializer, by PortalConfig.ready.
- A method an endpoint does not offer is 405 with `Allow`, before authentication (DRF checks
  the caller first, so `TRACE` answered 401).
- No NUL character in a path or query parameter: PostgreSQL text cannot hold one, so a `%00`
  in `scope`, `q` or a path segment became a 500 wherever it reached a query. 400 up front.
"""
from __future__ import annotations

from django.http import JsonResponse
from rest_framework import serializers

from .errors import error_body, handler400

_drf_char_to_internal_value = serializers.CharField.to_internal_value


def _strict_to_internal_value(self, data):
    if not isinstance(data, str):
        self.fail("invalid")
    return _drf_char_to_internal_value(self, data)


def install_strict_strings() -> None:
    serializers.CharField.to_internal_value = _strict_to_internal_value


class MethodNotAllowedFirstMiddleware:
    """405 for a method the API view behind a URL has no handler for, whoever asks."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        view_class = getattr(view_func, "cls", None)  # DRF APIView.as_view()
        if view_class is None:
            return None
        def offers(method: str) -> bool:  # Django's View answers HEAD with its GET handler
            return method in view_class.http_method_names and (
                hasattr(view_class, method) or (method == "head" and hasattr(view_class, "get")))

        if offers(request.method.lower()):
            return None
        allowed = [m.upper() for m in view_class.http_method_names if offers(m)]
        body, content_type = error_body(request.path, 405, [f'Method "{request.method}" not allowed.'],
                                        "method_not_allowed")
        response = JsonResponse(body, status=405, content_type=content_type)
        response["Allow"] = ", ".join(allowed)
        return response


class NulCharactersRefusedMiddleware:
    """400 (an HTML page, or the API's error body) for a NUL in the path or query string."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path or any("\x00" in key or any("\x00" in value for value in values)
                                          for key, values in request.GET.lists()):
            return handler400(request)
        return self.get_response(request)
