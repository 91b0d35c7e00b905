from django.utils import timezone
from rest_framework import authentication, exceptions

from .models import ApiToken


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

    def authenticate_header(self, request):
        return 'Bearer realm="orderly"'
