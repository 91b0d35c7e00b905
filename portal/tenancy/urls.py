from django.urls import path

from . import apis

urlpatterns = [
    path("api/v1/rs-authentication/oauth/token", apis.OAuthTokenApi.as_view(), name="oauth-token"),
    path("api/v1/tokens", apis.TokenListCreateApi.as_view(), name="token-list"),
    path("api/v1/tokens/<int:token_id>", apis.TokenRevokeApi.as_view(), name="token-revoke"),
    path("api/v1/me", apis.MeApi.as_view(), name="me"),
]
