from django.utils import timezone
from rest_framework import authentication, exceptions

from .models import ApiToken


def _authenticate_key(raw_key: str):
    """(user, token) for a usable token key; AuthenticationFailed otherwise."""
    token = (
        ApiToken.objects.select_related("user", "project")
        .filter(key_hash=ApiToken.hash_key(raw_key))
        .first()
    )
    if token is None or not token.is_usable or not token.user.is_active:
        raise exceptions.AuthenticationFailed("Invalid or expired token.")
    now = timezone.now()
    # Write at most once a minute per token: reads stay reads.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user, token


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <token>`; the token is looked up by its SHA-256."""

    keyword = "bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid bearer header.")
        try:
            raw_key = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid bearer token.")
        return _authenticate_key(raw_key)

    def authenticate_header(self, request):
        return 'Bearer realm="orderly"'


class QueryTokenAuthentication(BearerTokenAuthentication):
    """`?token=<bearer token>`, as REGARDS' web front end puts it in file links (a browser
    cannot add a header to a link). Only for file downloads: tokens in URLs end up in logs."""

    def authenticate(self, request):
        raw_key = request.query_params.get("token")
        if not raw_key:
            return None
        if len(raw_key) > 200 or not raw_key.isascii():
            raise exceptions.AuthenticationFailed("Invalid token.")
        return _authenticate_key(raw_key)
