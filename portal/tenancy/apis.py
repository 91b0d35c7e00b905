from datetime import timedelta

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


class OAuthTokenApi(APIView):
    """REGARDS-style password grant: form fields grant_type, username, password, scope."""

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

    @extend_schema(request=OAuthTokenInputSerializer, responses={200: inline_serializer(
        "OAuthToken", {"access_token": serializers.CharField(), "token_type": serializers.CharField(),
                       "expires_in": serializers.IntegerField(), "scope": serializers.CharField()})})
    def post(self, request):
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
        if user is None or project is None or project_access_for(user=user, project=project) is None:
            ratelimit.record_failure(attempt)
            return self._oauth_error("invalid_grant", "Bad credentials for this project.")
        ratelimit.record_success(attempt)
        issued = token_issue(user=user, project=project, name="oauth")
        expires_in = int((issued.token.expires_at - issued.token.created_at).total_seconds())
        return Response({"access_token": issued.raw_key, "token_type": "bearer",
                         "expires_in": expires_in, "scope": project.slug})


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
