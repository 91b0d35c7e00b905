"""`/api/v1/webhooks`: registration (secret shown once), listing, deletion, test ping, delivery
log, SSRF refusals, and what members of other projects and other members can reach."""
from __future__ import annotations

import pytest
from standardwebhooks.webhooks import Webhook

from portal.tenancy.models import Role
from portal.webhooks.models import MessageStatus, WebhookEndpoint, WebhookMessage
from tests.conftest import make_member

URL = "/api/v1/webhooks"


def register(member, url, events=("order.created",), **extra):
    return member.client.post(URL, {"url": url, "events": list(events), **extra}, format="json")


def test_registration_shows_the_secret_once(member, private_hooks, receiver):
    response = register(member, receiver.url, ["order.created", "order.expiring"], description="my receiver")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["secret"].startswith("whsec_") and len(body["secret"]) > 40
    assert body["url"] == receiver.url and body["events"] == ["order.created", "order.expiring"]
    assert body["owner"] == member.user.email and body["enabled"] is True
    # later reads never show it again
    listed = member.client.get(URL).json()
    assert [e["id"] for e in listed["content"]] == [body["id"]] and "secret" not in listed["content"][0]
    assert "secret" not in member.client.get(f"{URL}/{body['id']}").json()


@pytest.mark.parametrize("url", ["http://10.0.0.1/", "https://localhost/", "https://169.254.169.254/",
                                 "https://127.0.0.1:8443/hook", "https://[::1]/", "https://192.168.1.20/x",
                                 "http://93.184.216.34/", "ftp://hooks.example.com/", "https://user:pw@1.1.1.1/",
                                 "not a url"])
def test_private_hosts_and_plain_http_are_refused_without_the_setting(member, settings, url):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    response = register(member, url)
    assert response.status_code == 400, response.content
    assert response["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "WEBHOOK_URL_REFUSED"
    assert not WebhookEndpoint.unscoped_objects.exists()


def test_a_public_https_address_is_accepted(member, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    # An IP literal resolves without DNS (no network in tests); 1.1.1.1 is public.
    assert register(member, "https://1.1.1.1/hooks").status_code == 201


def test_unknown_or_missing_event_types_are_400(member, private_hooks, receiver):
    bad = register(member, receiver.url, ["order.eaten"])
    assert bad.status_code == 400 and bad.json()["code"] == "WEBHOOK_INVALID_EVENT_TYPE"
    assert register(member, receiver.url, []).status_code == 400
    assert register(member, receiver.url, ["ping"]).status_code == 400  # ping is only sent by /test
    assert member.client.post(URL, {"events": ["order.created"]}, format="json").status_code == 400


def test_members_see_their_endpoints_and_admins_all_of_the_project(project, member, admin_member, private_hooks,
                                                                   receiver, django_assert_num_queries):
    other = make_member(project)
    mine = register(member, receiver.url).json()["id"]
    theirs = register(other, receiver.url).json()["id"]
    assert [e["id"] for e in member.client.get(URL).json()["content"]] == [mine]
    assert member.client.get(f"{URL}/{theirs}").status_code == 404
    assert member.client.delete(f"{URL}/{theirs}").status_code == 404
    assert member.client.post(f"{URL}/{theirs}/test").status_code == 404
    assert member.client.get(f"{URL}/{theirs}/deliveries").status_code == 404
    for _ in range(3):
        register(other, receiver.url)
    # token (+ its use noted), project, membership, count, page with owners joined: none per endpoint
    with django_assert_num_queries(6):
        listed = admin_member.client.get(URL).json()
    assert {e["id"] for e in listed["content"]} >= {mine, theirs} and listed["metadata"]["totalElements"] == 5
    # an ADMIN may remove any endpoint of the project
    assert admin_member.client.delete(f"{URL}/{theirs}").status_code == 204
    assert not WebhookEndpoint.unscoped_objects.filter(pk=theirs).exists()


def test_endpoints_of_another_project_are_unknown(two_projects, private_hooks, receiver):
    alpha, beta = two_projects
    owner, intruder = make_member(alpha), make_member(beta, Role.ADMIN)
    endpoint = register(owner, receiver.url).json()["id"]
    assert intruder.client.get(URL).json()["content"] == []
    for method, path in [("get", ""), ("delete", ""), ("post", "/test"), ("get", "/deliveries")]:
        assert getattr(intruder.client, method)(f"{URL}/{endpoint}{path}").status_code == 404
        # naming alpha as scope: not a member
        assert getattr(intruder.client, method)(f"{URL}/{endpoint}{path}?scope=alpha").status_code == 403
    assert WebhookEndpoint.unscoped_objects.filter(pk=endpoint).exists()
    assert not WebhookMessage.unscoped_objects.exists()


def test_test_sends_a_signed_ping_and_the_log_shows_it(member, private_hooks, receiver, celery_live_worker,
                                                       django_assert_num_queries):
    created = register(member, receiver.url).json()
    response = member.client.post(f"{URL}/{created['id']}/test")
    assert response.status_code == 202 and response.json()["eventType"] == "ping"
    [ping] = receiver.wait_for(1)
    payload = Webhook(created["secret"]).verify(ping.body, ping.headers)
    assert payload["type"] == "ping" and payload["data"]["endpointId"] == created["id"]
    assert ping.headers["webhook-id"] == response.json()["msgId"]
    message = WebhookMessage.unscoped_objects.get(msg_id=ping.headers["webhook-id"])
    for _ in range(100):
        message.refresh_from_db()
        if message.status == MessageStatus.DELIVERED:
            break
        import time

        time.sleep(0.05)
    with django_assert_num_queries(6):
        log = member.client.get(f"{URL}/{created['id']}/deliveries").json()
    [entry] = log["content"]
    assert entry["status"] == "delivered" and entry["statusCode"] == 200 and entry["attempts"] == 1
    assert entry["nextAttempt"] is None and entry["lastError"] is None and entry["msgId"] == ping.headers["webhook-id"]


def test_delete_removes_the_endpoint_and_its_log(member, private_hooks, receiver):
    created = register(member, receiver.url).json()
    assert member.client.delete(f"{URL}/{created['id']}").status_code == 204
    assert member.client.get(f"{URL}/{created['id']}").status_code == 404
    assert not WebhookEndpoint.unscoped_objects.exists()
