import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from tests.conftest import make_member

URL = "/api/v1/rs-authentication/oauth/token"


@pytest.fixture(autouse=True)
def _clear_rate_limits():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def alice(project):
    return make_member(project, email="alice@example.org")


def _form(password="pass-word-123", username="alice@example.org", scope="alpha", grant_type="password"):
    return {"grant_type": grant_type, "username": username, "password": password, "scope": scope}


def test_password_grant_gives_a_working_bearer_token(alice):
    response = APIClient().post(URL, _form())
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["scope"] == "alpha" and body["expires_in"] > 0
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {body['access_token']}")
    assert client.get("/api/v1/me?scope=alpha").json()["email"] == "alice@example.org"


@pytest.mark.parametrize("form", [_form(password="wrong"), _form(username="bob@example.org"), _form(scope="beta")])
def test_wrong_credentials_are_invalid_grant(alice, other_project, form):
    response = APIClient().post(URL, form)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_other_grant_types_are_refused(alice):
    response = APIClient().post(URL, _form(grant_type="client_credentials"))
    assert response.status_code == 400 and response.json()["error"] == "unsupported_grant_type"


def test_repeated_failures_are_rate_limited_even_with_the_right_password_then(alice, settings):
    client = APIClient()
    for _ in range(settings.TOKEN_RATE_LIMIT_FAILURES):
        assert client.post(URL, _form(password="wrong")).status_code == 400
    blocked = client.post(URL, _form())
    assert blocked.status_code == 429
    assert int(blocked["Retry-After"]) > 0


def test_failures_from_one_address_past_its_ceiling_limit_every_user_from_it(project, settings):
    client = APIClient()
    for n in range(settings.TOKEN_RATE_LIMIT_ADDRESS_FAILURES):
        client.post(URL, _form(username=f"guess{n}@example.org", password="x"))
    make_member(project, email="carol@example.org")
    assert client.post(URL, _form(username="carol@example.org")).status_code == 429
    other_ip = APIClient(REMOTE_ADDR="10.9.9.9")
    assert other_ip.post(URL, _form(username="carol@example.org")).status_code == 200
