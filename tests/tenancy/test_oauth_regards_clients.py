"""The token endpoint as REGARDS clients call it: Basic client header, form or JSON, extra fields."""
import base64

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from portal.tenancy.models import Role
from tests.conftest import make_member

URL = "/api/v1/rs-authentication/oauth/token"
# What REGARDS clients send as is (client:secret), e.g. the SunPy REGARDS plugin.
REGARDS_BASIC = "Basic " + base64.b64encode(b"client:secret").decode()


@pytest.fixture(autouse=True)
def _clear_rate_limits():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def alice(project):
    return make_member(project, role=Role.ADMIN, email="alice@example.org")


def _fields(**overrides):
    return {"grant_type": "password", "username": "alice@example.org", "password": "pass-word-123",
            "scope": "alpha", **overrides}


def test_the_basic_client_header_is_accepted_and_the_answer_names_tenant_role_and_user(alice):
    response = APIClient().post(URL, _fields(), HTTP_AUTHORIZATION=REGARDS_BASIC)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["scope"] == "alpha" and body["expires_in"] > 0
    assert body["tenant"] == "alpha" and body["role"] == "ADMIN"
    assert body["sub"] == body["email"] == "alice@example.org"
    # The token works with no scope: it carries its project.
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {body['access_token']}")
    assert client.get("/api/v1/me").json()["project"] == "alpha"


def test_a_registered_user_gets_that_role(project):
    make_member(project, email="bob@example.org")
    body = APIClient().post(URL, _fields(username="bob@example.org")).json()
    assert body["role"] == "REGISTERED_USER" and body["email"] == "bob@example.org"


def test_json_fields_work_like_form_fields(alice):
    response = APIClient().post(URL, _fields(), format="json", HTTP_AUTHORIZATION=REGARDS_BASIC)
    assert response.status_code == 200 and response.json()["tenant"] == "alpha"


def test_missing_json_fields_are_invalid_request(alice):
    response = APIClient().post(URL, {"grant_type": "password"}, format="json")
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


@pytest.mark.parametrize("header, expected", [
    (REGARDS_BASIC, 200),
    ("Basic " + base64.b64encode(b"client:wrong").decode(), 401),
    ("Basic " + base64.b64encode(b"other:secret").decode(), 401),
    ("Basic !!!not-base64", 401),
    (None, 401),
])
def test_configured_client_credentials_are_checked(alice, settings, header, expected):
    settings.OAUTH_CLIENT_ID, settings.OAUTH_CLIENT_SECRET = "client", "secret"
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = APIClient().post(URL, _fields(), **extra)
    assert response.status_code == expected
    if expected == 401:
        assert response.json()["error"] == "invalid_client"
        assert response["WWW-Authenticate"].startswith("Basic")


def test_unconfigured_client_credentials_accept_any_basic_header(alice):
    header = "Basic " + base64.b64encode(b"whatever:else").decode()
    assert APIClient().post(URL, _fields(), HTTP_AUTHORIZATION=header).status_code == 200
