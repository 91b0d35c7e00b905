"""The webhook settings page (create with the secret shown once, test, delete, recent
deliveries), the admin console (scoped by project, resend) and the order history views."""
from __future__ import annotations

import re

import pytest
from django.test import Client

from orders.models import OrderEvent
from portal.tenancy.models import Role
from portal.webhooks.models import MessageStatus, WebhookEndpoint, WebhookMessage
from tests.conftest import make_member
from tests.orders.conftest import make_objects, order_of

pytestmark = pytest.mark.django_db


def _page(member):
    client = Client()
    client.force_login(member.user)
    return client


def _settings_url(project) -> str:
    return f"/projects/{project.slug}/settings/webhooks/"


def test_a_member_registers_sees_the_secret_once_tests_and_deletes(member, private_hooks, receiver, run_tasks):
    web = _page(member)
    url = _settings_url(member.project)
    assert 'id="no-endpoints"' in web.get(url).content.decode()
    response = web.post(url, {"url": receiver.url, "events": ["order.created", "order.expiring"],
                              "description": "lab receiver"})
    assert response.status_code == 201
    endpoint = WebhookEndpoint.unscoped_objects.get()
    assert endpoint.secret in response.content.decode() and endpoint.events == ["order.created", "order.expiring"]
    assert endpoint.secret not in web.get(url).content.decode()  # once only
    with run_tasks():
        assert web.post(f"{url}{endpoint.pk}/test").status_code == 302
    assert [r.type for r in receiver.received] == ["ping"]
    html = web.get(url).content.decode()
    assert "ping" in html and "delivered" in html and WebhookMessage.unscoped_objects.get().msg_id in html
    assert web.post(f"{url}{endpoint.pk}/delete").status_code == 302
    assert not WebhookEndpoint.unscoped_objects.exists()


def test_a_refused_url_is_explained_on_the_page(member, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    response = _page(member).post(_settings_url(member.project), {"url": "http://10.0.0.1/",
                                                                  "events": ["order.created"]})
    assert response.status_code == 400 and "https://" in response.content.decode()
    assert not WebhookEndpoint.unscoped_objects.exists()


def test_the_page_shows_only_ones_own_endpoints_and_guards_other_projects(two_projects, private_hooks, receiver):
    alpha, beta = two_projects
    owner, colleague, intruder = make_member(alpha), make_member(alpha, Role.ADMIN), make_member(beta)
    endpoint = WebhookEndpoint.unscoped_objects.create(project=alpha, owner=owner.user, url=receiver.url,
                                                       events=["order.created"], secret="whsec_c2VjcmV0",
                                                       description="owner's receiver")
    assert "owner&#x27;s receiver" in _page(owner).get(_settings_url(alpha)).content.decode()
    # another member of the project (even an ADMIN) manages only their own here
    assert "owner&#x27;s receiver" not in _page(colleague).get(_settings_url(alpha)).content.decode()
    assert _page(colleague).post(f"{_settings_url(alpha)}{endpoint.pk}/delete").status_code == 404
    # a member of another project: the project's page does not exist for them, nor does the endpoint
    assert _page(intruder).get(_settings_url(alpha)).status_code == 404
    assert _page(intruder).post(f"{_settings_url(alpha)}{endpoint.pk}/delete").status_code == 404
    assert _page(intruder).post(f"{_settings_url(beta)}{endpoint.pk}/test").status_code == 404
    assert WebhookEndpoint.unscoped_objects.filter(pk=endpoint.pk).exists()
    assert not WebhookMessage.unscoped_objects.exists()


@pytest.fixture
def console(project):
    """The admin console as a staff ADMIN of `project`."""
    admin = make_member(project, Role.ADMIN)
    type(admin.user).objects.filter(pk=admin.user.pk).update(is_staff=True)
    return _page(admin)


def _message(project, owner, url, status=MessageStatus.FAILED):
    endpoint = WebhookEndpoint.unscoped_objects.create(project=project, owner=owner, url=url,
                                                       events=["order.created"], secret="whsec_c2VjcmV0")
    return WebhookMessage.unscoped_objects.create(project=project, endpoint=endpoint, msg_id=f"msg_{url[-6:]}",
                                                  event_type="order.created", payload='{"type":"order.created"}',
                                                  created_at=endpoint.created_at, status=status, attempts=7)


def test_admin_lists_endpoints_and_deliveries_of_its_projects_only(console, member, other_project, receiver):
    mine = _message(member.project, member.user, receiver.url + "alpha1")
    stranger = make_member(other_project)
    theirs = _message(other_project, stranger.user, "https://hooks.example.com/beta22")
    endpoints = console.get("/admin/webhooks/webhookendpoint/").content.decode()
    assert "alpha1" in endpoints and "beta22" not in endpoints and "whsec_" not in endpoints
    messages = console.get("/admin/webhooks/webhookmessage/").content.decode()
    assert mine.msg_id in messages and theirs.msg_id not in messages
    assert console.get(f"/admin/webhooks/webhookmessage/{theirs.pk}/change/").status_code in (302, 404)
    assert console.get(f"/admin/webhooks/webhookendpoint/{theirs.endpoint_id}/change/").status_code in (302, 404)
    change = console.get(f"/admin/webhooks/webhookendpoint/{mine.endpoint_id}/change/").content.decode()
    assert "whsec_" not in change
    # the resend action ignores rows of other projects
    console.post("/admin/webhooks/webhookmessage/", {"action": "resend", "_selected_action": [theirs.pk]})
    theirs.refresh_from_db()
    assert theirs.status == MessageStatus.FAILED and theirs.attempts == 7


def test_resend_sends_the_same_message_again_and_reenables_the_endpoint(console, member, private_hooks, receiver,
                                                                        run_tasks):
    message = _message(member.project, member.user, receiver.url)
    WebhookEndpoint.unscoped_objects.filter(pk=message.endpoint_id).update(disabled_reason="503",
                                                                           disabled_at=message.created_at)
    with run_tasks():
        response = console.post("/admin/webhooks/webhookmessage/", {"action": "resend",
                                                                     "_selected_action": [message.pk]})
    assert response.status_code == 302
    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED and message.attempts == 1
    assert [r.headers["webhook-id"] for r in receiver.received] == [message.msg_id]
    assert WebhookEndpoint.unscoped_objects.get(pk=message.endpoint_id).disabled_at is None


def test_order_history_in_the_admin_and_on_the_order_page(console, member, run_tasks):
    order = order_of(member, make_objects(member.project, count=2), run=run_tasks, label="told")
    kinds = list(OrderEvent.unscoped_objects.filter(order_id=order.pk).values_list("kind", "to_status"))
    assert kinds == [("created", "PENDING"), ("status_changed", "RUNNING"), ("files_available", ""),
                     ("status_changed", "DONE")]
    change = console.get(f"/admin/orders/order/{order.pk}/change/").content.decode()
    assert "Order events" in change and "files available" in change.lower()
    assert change.lower().count("status changed") == 2 and member.user.email in change
    page = _page(member).get(f"/projects/{member.project.slug}/orders/{order.pk}/").content.decode()
    history = re.search(r'<table id="order-history">(.*?)</table>', page, re.S).group(1)
    assert history.count("<tr>") == 1 + 4 and "RUNNING" in history and "task orders.build" in history
