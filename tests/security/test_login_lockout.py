"""Login lockout (issue 11, items 4 and 5): the login pages are throttled like the token
endpoint; failures count per (user, client address) with a higher per-address ceiling; behind
a trusted proxy the client address comes from the configured header."""
from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient

from portal.tenancy.models import Role
from tests.conftest import make_member

PASSWORD = "right-pass-word-1"
TOKEN_URL = "/api/v1/rs-authentication/oauth/token"


@pytest.fixture(autouse=True)
def _fresh_limits(settings):
    settings.TOKEN_RATE_LIMIT_FAILURES = 3
    settings.TOKEN_RATE_LIMIT_ADDRESS_FAILURES = 8
    cache.clear()
    yield
    cache.clear()


def _user(project, email, *, staff=False):
    member = make_member(project, Role.ADMIN if staff else Role.REGISTERED_USER, email=email)
    member.user.set_password(PASSWORD)
    member.user.is_staff = staff
    member.user.save()
    return member


def _page_login(path, email, password, address="10.0.0.1", **headers):
    client = Client(REMOTE_ADDR=address, **headers)
    response = client.post(path, {"username": email, "password": password})
    logged_in = "_auth_user_id" in client.session
    return response, logged_in


def _token_login(project, email, password, address="10.0.0.1", **headers):
    client = APIClient(REMOTE_ADDR=address, **headers)
    return client.post(TOKEN_URL, {"grant_type": "password", "username": email, "password": password,
                                   "scope": project.slug})


def _login(way, project, email, password, address="10.0.0.1", **headers) -> int:
    """Logs in one of three ways; returns the HTTP status and whether it worked as (status, ok)."""
    if way == "token":
        response = _token_login(project, email, password, address, **headers)
        return response.status_code, response.status_code == 200
    response, logged_in = _page_login(way, email, password, address, **headers)
    return response.status_code, logged_in


WAYS = ["/accounts/login/", "/admin/login/", "token"]


@pytest.mark.parametrize("way", WAYS)
def test_wrong_passwords_then_the_right_one_is_refused(project, way):
    _user(project, "ann@example.org", staff=True)
    for _ in range(3):
        status, ok = _login(way, project, "ann@example.org", "wrong")
        assert not ok and status in (200, 400)
    status, ok = _login(way, project, "ann@example.org", PASSWORD)
    assert (status, ok) == (429, False)


@pytest.mark.parametrize("way", ["/accounts/login/", "/admin/login/"])
def test_a_locked_out_page_says_when_to_come_back(project, way):
    _user(project, "ann@example.org", staff=True)
    for _ in range(3):
        _page_login(way, "ann@example.org", "wrong")
    response, logged_in = _page_login(way, "ann@example.org", PASSWORD)
    assert response.status_code == 429 and int(response["Retry-After"]) > 0 and not logged_in
    assert b"Too many failed attempts" in response.content and b"did not match" not in response.content


@pytest.mark.parametrize("way", WAYS)
def test_an_attacker_cannot_lock_out_another_user_or_the_same_user_elsewhere(project, way):
    _user(project, "ann@example.org", staff=True)
    _user(project, "bob@example.org", staff=True)
    for _ in range(5):
        _login(way, project, "ann@example.org", "wrong", address="10.6.6.6")
    # A different user's right password from the attacker's address still works...
    assert _login(way, project, "bob@example.org", PASSWORD, address="10.6.6.6")[1]
    # ...and so does the victim's own, from the victim's address.
    assert _login(way, project, "ann@example.org", PASSWORD, address="10.1.1.1")[1]
    assert _login(way, project, "ann@example.org", PASSWORD, address="10.6.6.6")[0] == 429


@pytest.mark.parametrize("way", WAYS)
def test_one_address_trying_many_users_reaches_the_address_ceiling(project, way):
    _user(project, "bob@example.org", staff=True)
    for n in range(8):
        _login(way, project, f"guess{n}@example.org", "wrong", address="10.6.6.6")
    assert _login(way, project, "bob@example.org", PASSWORD, address="10.6.6.6")[0] == 429
    assert _login(way, project, "bob@example.org", PASSWORD, address="10.1.1.1")[1]


def test_failures_count_across_pages_and_the_token_endpoint(project):
    _user(project, "ann@example.org", staff=True)
    _login("/accounts/login/", project, "ann@example.org", "wrong")
    _login("/admin/login/", project, "ann@example.org", "wrong")
    _login("token", project, "ann@example.org", "wrong")
    assert _login("/accounts/login/", project, "ann@example.org", PASSWORD)[0] == 429


@pytest.mark.parametrize("way", WAYS)
def test_behind_a_trusted_proxy_clients_are_told_apart_by_the_header(project, settings, way):
    settings.CLIENT_ADDRESS_HEADER = "X-Forwarded-For"
    _user(project, "ann@example.org", staff=True)
    proxy = "10.0.0.254"
    for _ in range(8):  # one client behind the proxy, beyond both ceilings
        _login(way, project, "ann@example.org", "wrong", address=proxy, HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert _login(way, project, "ann@example.org", PASSWORD, address=proxy,
                  HTTP_X_FORWARDED_FOR="203.0.113.7")[0] == 429
    # Another client behind the same proxy is not affected.
    assert _login(way, project, "ann@example.org", PASSWORD, address=proxy,
                  HTTP_X_FORWARDED_FOR="198.51.100.9")[1]
    # What a client writes left of the proxy's entry is not believed.
    assert _login(way, project, "ann@example.org", PASSWORD, address=proxy,
                  HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.7")[0] == 429


@pytest.mark.parametrize("way", WAYS)
def test_without_a_configured_header_forwarded_addresses_are_ignored(project, settings, way):
    settings.CLIENT_ADDRESS_HEADER = ""
    _user(project, "ann@example.org", staff=True)
    for n in range(3):
        _login(way, project, "ann@example.org", "wrong", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")
    assert _login(way, project, "ann@example.org", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.99")[0] == 429


@pytest.mark.parametrize("header, proxies, forwarded, expected", [
    ("", 1, "203.0.113.7", "10.0.0.1"),
    ("X-Forwarded-For", 1, "203.0.113.7", "203.0.113.7"),
    ("X-Forwarded-For", 1, "1.2.3.4, 203.0.113.7", "203.0.113.7"),
    ("X-Forwarded-For", 2, "1.2.3.4, 203.0.113.7, 10.0.0.9", "203.0.113.7"),
    ("X-Forwarded-For", 2, "203.0.113.7", "10.0.0.1"),  # fewer entries than trusted proxies
    ("X-Forwarded-For", 1, "not-an-address", "10.0.0.1"),
    ("X-Real-IP", 1, None, "10.0.0.1"),
])
def test_client_address(rf, settings, header, proxies, forwarded, expected):
    from portal.tenancy.ratelimit import client_address

    settings.CLIENT_ADDRESS_HEADER, settings.CLIENT_ADDRESS_PROXIES = header, proxies
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {}
    assert client_address(rf.get("/", REMOTE_ADDR="10.0.0.1", **extra)) == expected
