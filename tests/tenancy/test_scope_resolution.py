from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from portal.tenancy.models import ApiToken, Role
from tests.conftest import make_member


def test_member_reaches_the_project(member):
    response = member.client.get("/api/v1/me")
    assert response.status_code == 200
    assert response.json() == {"email": member.user.email, "project": "alpha", "role": "REGISTERED_USER"}


def test_scope_as_query_parameter(member):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {member.token}")
    assert client.get("/api/v1/me?scope=alpha").status_code == 200


def test_a_bearer_token_without_scope_names_its_own_project(member):
    # REGARDS clients send no scope once they hold a token: the token carries the tenant.
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {member.token}")
    response = client.get("/api/v1/me")
    assert response.status_code == 200
    assert response.json()["project"] == "alpha"


def test_a_session_without_scope_is_400(member):
    client = APIClient()
    client.force_login(member.user)
    response = client.get("/api/v1/me")
    assert response.status_code == 400
    assert response.json()["code"] == "PROJECT_REQUIRED"


def test_a_token_without_scope_never_reaches_another_project(two_projects):
    alpha, beta = two_projects
    both = make_member(beta)
    from tests.factories import MembershipFactory
    MembershipFactory(user=both.user, project=alpha, role=Role.ADMIN)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {both.token}")
    assert client.get("/api/v1/me").json() == {"email": both.user.email, "project": "beta",
                                               "role": "REGISTERED_USER"}
    assert client.get("/api/v1/me", HTTP_SCOPE="alpha").status_code == 403


def test_unknown_project_is_404(member):
    response = member.client.get("/api/v1/me?scope=nope")
    assert response.status_code == 404
    assert response.json()["code"] == "PROJECT_NOT_FOUND"


def test_not_a_member_is_403(two_projects):
    alpha, beta = two_projects
    stranger = make_member(beta)
    # a session user (no token) of beta asking for alpha
    client = APIClient()
    client.force_login(stranger.user)
    response = client.get("/api/v1/me", HTTP_SCOPE="alpha")
    assert response.status_code == 403
    assert response.json()["code"] == "NOT_A_PROJECT_MEMBER"


def test_a_token_is_bound_to_its_project(two_projects):
    alpha, beta = two_projects
    both = make_member(alpha)
    from tests.factories import MembershipFactory
    MembershipFactory(user=both.user, project=beta)
    # the user is a member of beta, but this token was issued for alpha
    response = both.client.get("/api/v1/me?scope=beta")
    assert response.status_code == 403
    assert response.json()["code"] == "TOKEN_NOT_VALID_FOR_PROJECT"


def test_anonymous_is_401_with_bearer_challenge(project):
    response = APIClient().get("/api/v1/me", HTTP_SCOPE="alpha")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("spoil", ["revoke", "expire", "garble"])
def test_revoked_expired_or_unknown_tokens_are_401(member, spoil):
    token = ApiToken.objects.get(user=member.user)
    if spoil == "revoke":
        token.revoked_at = timezone.now()
        token.save()
    elif spoil == "expire":
        token.expires_at = timezone.now() - timedelta(seconds=1)
        token.save()
    else:
        member.client.credentials(HTTP_AUTHORIZATION="Bearer ordly_not-a-real-token", HTTP_SCOPE="alpha")
    assert member.client.get("/api/v1/me").status_code == 401


def test_tokens_are_stored_hashed_and_shown_once(member):
    created = member.client.post("/api/v1/tokens", {"name": "ci", "lifetimeDays": 2}, format="json")
    assert created.status_code == 201
    raw = created.json()["token"]
    stored = ApiToken.objects.get(pk=created.json()["id"])
    assert raw not in (stored.key_hash, stored.prefix) and stored.key_hash == ApiToken.hash_key(raw)
    assert len(raw) >= 32  # at least 128 random bits, url-safe
    listing = member.client.get("/api/v1/tokens").json()["content"]
    assert all("token" not in item for item in listing)
    # revoke it: it stops working
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_SCOPE="alpha")
    assert client.get("/api/v1/me").status_code == 200
    assert member.client.delete(f"/api/v1/tokens/{stored.pk}").status_code == 204
    assert client.get("/api/v1/me").status_code == 401


def test_admin_role_is_reported(admin_member):
    assert admin_member.client.get("/api/v1/me").json()["role"] == Role.ADMIN
