import base64
import binascii
import hmac
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.api.errors import ApiError
from portal.api.parsers import BoundedJSONParser
from portal.api.views import ProjectAPIView

from . import ratelimit
from .models import ApiToken
from .access import project_access_for
from .selectors import project_by_slug
from .services import token_issue, token_revoke


class OAuthErrorOutputSerializer(serializers.Serializer):
    error = serializers.CharField()
    error_description = serializers.CharField()


def _basic_client(request) -> tuple[str, str] | None:
    """The `client:secret` pair of an `Authorization: Basic` header, or None (absent or garbled)."""
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    return (client_id, secret) if sep else None


def _client_allowed(request) -> bool:
    """REGARDS clients send `Authorization: Basic <client:secret>` (e.g. client:secret). Ignored
    unless OAUTH_CLIENT_ID is set; then that header must name the configured client and secret."""
    expected_id = settings.OAUTH_CLIENT_ID
    if not expected_id:
        return True
    client = _basic_client(request)
    if client is None:
        return False
    return (hmac.compare_digest(client[0].encode(), expected_id.encode())
            and hmac.compare_digest(client[1].encode(), settings.OAUTH_CLIENT_SECRET.encode()))


class OAuthTokenOutputSerializer(serializers.Serializer):
    access_token = serializers.CharField()
    token_type = serializers.CharField()
    expires_in = serializers.IntegerField()
    scope = serializers.CharField()
    tenant = serializers.CharField(help_text="The project (REGARDS tenant) the token is bound to.")
    role = serializers.ChoiceField(choices=["REGISTERED_USER", "ADMIN"])
    sub = serializers.CharField(help_text="The user's login (email).")
    email = serializers.EmailField()


class OAuthTokenApi(APIView):
    """REGARDS-style password grant: fields grant_type, username, password, scope (form or JSON).

    The `Authorization: Basic` client header REGARDS clients send is accepted, and checked
    against OAUTH_CLIENT_ID / OAUTH_CLIENT_SECRET when those are set.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [FormParser, MultiPartParser, BoundedJSONParser]

    class OAuthTokenInputSerializer(serializers.Serializer):
        grant_type = serializers.CharField(max_length=50)
        username = serializers.CharField(max_length=254)
        password = serializers.CharField(max_length=1024, trim_whitespace=False)
        scope = serializers.CharField(max_length=50)

    @staticmethod
    def _oauth_error(code: str, description: str, http_status: int = 400, headers=None):
        return Response({"error": code, "error_description": description}, status=http_status,
                        headers=headers)

    @extend_schema(request={"application/x-www-form-urlencoded": OAuthTokenInputSerializer,
                            "application/json": OAuthTokenInputSerializer},
                   responses={200: OAuthTokenOutputSerializer, 400: OAuthErrorOutputSerializer,
                              401: OAuthErrorOutputSerializer, 429: OAuthErrorOutputSerializer})
    def post(self, request):
        if not _client_allowed(request):
            return self._oauth_error("invalid_client", "Unknown client or wrong client secret.",
                                     status.HTTP_401_UNAUTHORIZED, headers={"WWW-Authenticate": 'Basic realm="orderly"'})
        form = self.OAuthTokenInputSerializer(data=request.data)
        if not form.is_valid():
            return self._oauth_error("invalid_request", "grant_type, username, password and scope are required.")
        data = form.validated_data
        if data["grant_type"] != "password":
            return self._oauth_error("unsupported_grant_type", "Only grant_type=password is supported.")
        attempt = ratelimit.LoginAttempt.of(request, data["username"])
        if ratelimit.is_blocked(attempt):
            return self._oauth_error("too_many_requests", "Too many failed attempts; try again later.",
                                     status.HTTP_429_TOO_MANY_REQUESTS,
                                     headers={"Retry-After": str(ratelimit.retry_after_seconds())})
        user = authenticate(request, username=data["username"].strip().lower(), password=data["password"])
        project = project_by_slug(data["scope"])
        access = project_access_for(user=user, project=project) if user and project else None
        if access is None:
            ratelimit.record_failure(attempt)
            return self._oauth_error("invalid_grant", "Bad credentials for this project.")
        ratelimit.record_success(attempt)
        issued = token_issue(user=user, project=project, name="oauth")
        expires_in = int((issued.token.expires_at - issued.token.created_at).total_seconds())
        return Response({"access_token": issued.raw_key, "token_type": "bearer",
                         "expires_in": expires_in, "scope": project.slug, "tenant": project.slug,
                         "role": "ADMIN" if access.is_admin else "REGISTERED_USER",
                         "sub": user.email, "email": user.email})


class TokenOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    createdAt = serializers.DateTimeField()
    expiresAt = serializers.DateTimeField()
    revoked = serializers.BooleanField()
    token = serializers.CharField(required=False, help_text="Only in the creation response.")


def _token_body(token: ApiToken) -> dict:
    return {
        "id": token.pk,
        "name": token.name,
        "prefix": token.prefix,
        "createdAt": token.created_at,
        "expiresAt": token.expires_at,
        "revoked": token.revoked_at is not None,
    }


class TokenListCreateApi(ProjectAPIView):
    """The caller's own tokens in the project. A new token's key is shown once."""

    class TokenCreateInputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
        lifetimeDays = serializers.IntegerField(min_value=1, max_value=365, required=False, default=30)

    @extend_schema(responses=inline_serializer("TokenList", {"content": TokenOutputSerializer(many=True)}))
    def get(self, request):
        tokens = ApiToken.objects.filter(user=request.user, project=request.access.project).order_by("-id")
        return Response({"content": [_token_body(t) for t in tokens]})

    @extend_schema(request=TokenCreateInputSerializer, responses={201: TokenOutputSerializer})
    def post(self, request):
        form = self.TokenCreateInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        issued = token_issue(user=request.user, project=request.access.project,
                             name=form.validated_data["name"],
                             lifetime=timedelta(days=form.validated_data["lifetimeDays"]))
        return Response({**_token_body(issued.token), "token": issued.raw_key}, status=status.HTTP_201_CREATED)


class TokenRevokeApi(ProjectAPIView):
    @extend_schema(responses={204: None})
    def delete(self, request, token_id: int):
        token = ApiToken.objects.filter(user=request.user, project=request.access.project, pk=token_id).first()
        if token is None:
            raise ApiError(status.HTTP_404_NOT_FOUND, "TOKEN_NOT_FOUND", "Unknown token.")
        token_revoke(token=token)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeApi(ProjectAPIView):
    @extend_schema(responses=inline_serializer("Me", {
        "email": serializers.EmailField(), "project": serializers.CharField(), "role": serializers.CharField()}))
    def get(self, request):
        return Response({
            "email": request.user.email,
            "project": request.access.project.slug,
            "role": "ADMIN" if request.access.is_admin else "REGISTERED_USER",
        })
