"""Events reach a real HTTP receiver: signed, in order, retried with backoff, only for what the
endpoint's owner may read, never across projects."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.db import connection
from standardwebhooks.webhooks import Webhook

from orders import services as order_services
from orders.models import Order, OrderEvent
from portal.tenancy.models import Role
from portal.tenancy.scope import project_scope
from portal.webhooks import services
from portal.webhooks.models import MessageStatus, WebhookAttempt, WebhookEndpoint, WebhookMessage
from tests.conftest import make_member
from tests.conftest import wait_until as _wait_until
from tests.orders.conftest import ORDERS_URL, fill_basket, make_objects, order_of

HOOKS = "/api/v1/webhooks"
ORDER_EVENTS = ["order.created", "order.status_changed", "order.files_available", "order.waiting_for_user",
                "order.expiring", "order.expired"]


def register(member, receiver, events=ORDER_EVENTS) -> dict:
    response = member.client.post(HOOKS, {"url": receiver.url, "events": list(events)}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def needs_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("concurrent worker threads and requests need PostgreSQL (CI)")


def wait_until(predicate, timeout=30.0, what="it"):
    _wait_until(predicate, timeout, what)


def test_an_orders_whole_life_arrives_signed_and_in_order(member, private_hooks, receiver, celery_live_worker):
    needs_postgresql()
    # given a receiver registered for every order event
    endpoint = register(member, receiver)
    verifier = Webhook(endpoint["secret"])
    fill_basket(member, make_objects(member.project, count=3))
    # when the order is created, built and staged by the worker, then expires
    order_id = member.client.post(ORDERS_URL, {"label": "watched"}, format="json").json()["content"]["id"]
    wait_until(lambda: Order.unscoped_objects.get(pk=order_id).status == "DONE", what="the order to finish")
    with project_scope(member.project):
        order_services.order_expire(project=member.project, order_id=order_id)
    received = receiver.wait_for(6)
    time.sleep(0.3)  # nothing more comes
    # then every event arrived once, in the order it happened, verifiable with the secret
    payloads = [verifier.verify(r.body, r.headers) for r in receiver.received]
    assert [(p["type"], p["data"]["content"]["status"]) for p in payloads] == [
        ("order.created", "PENDING"),
        ("order.status_changed", "RUNNING"),
        ("order.files_available", "RUNNING"),
        ("order.status_changed", "DONE"),
        ("order.status_changed", "EXPIRED"),
        ("order.expired", "EXPIRED"),
    ]
    assert len({r.headers["webhook-id"] for r in received}) == 6
    # the data is the order as the API shows it to its owner
    done = payloads[3]["data"]
    assert done["content"]["id"] == order_id and done["content"]["label"] == "watched"
    assert done["content"]["availableFilesCount"] == 3 and done["content"]["owner"] == member.user.email
    assert {"self", "list", "download"} <= {link["rel"] for link in done["links"]}
    assert payloads[0]["timestamp"].endswith("Z")
    # each event is in the order's history too, with who or which task did it
    history = list(OrderEvent.unscoped_objects.filter(order_id=order_id).values_list("kind", "to_status",
                                                                                       "actor_label"))
    assert history[0] == ("created", "PENDING", member.user.email)
    assert ("status_changed", "RUNNING", "task orders.build") in history
    assert history[-1] == ("status_changed", "EXPIRED", "system")


def test_a_receiver_failing_twice_gets_the_event_on_the_third_attempt(member, private_hooks, receiver,
                                                                      celery_live_worker):
    needs_postgresql()
    endpoint = register(member, receiver, ["order.created"])
    receiver.answers = [500, 500]
    fill_basket(member, make_objects(member.project, count=1))
    member.client.post(ORDERS_URL, {}, format="json")
    received = receiver.wait_for(3)
    message = WebhookMessage.unscoped_objects.get(endpoint_id=endpoint["id"])
    wait_until(lambda: WebhookMessage.unscoped_objects.get(pk=message.pk).status == MessageStatus.DELIVERED,
               what="delivery")
    # the same message (same id, same body) three times, each signed anew
    assert {r.headers["webhook-id"] for r in received} == {message.msg_id}
    assert len({r.body for r in received}) == 1
    attempts = list(WebhookAttempt.unscoped_objects.filter(message=message).values_list("number", "status_code"))
    assert attempts == [(1, 500), (2, 500), (3, 200)]
    times = list(WebhookAttempt.unscoped_objects.filter(message=message).values_list("at", flat=True))
    assert (times[1] - times[0]).total_seconds() >= 0.3  # the (shortened) backoff was waited
    log = member.client.get(f"{HOOKS}/{endpoint['id']}/deliveries").json()["content"]
    assert log[0]["attempts"] == 3 and log[0]["statusCode"] == 200 and log[0]["status"] == "delivered"


def test_after_the_last_retry_the_endpoint_is_disabled_and_its_owner_mailed(member, private_hooks, receiver,
                                                                              celery_live_worker):
    needs_postgresql()
    endpoint = register(member, receiver, ["order.created"])
    receiver.answers = [503] * 10
    fill_basket(member, make_objects(member.project, count=1))
    member.client.post(ORDERS_URL, {}, format="json")
    wait_until(lambda: WebhookEndpoint.unscoped_objects.get(pk=endpoint["id"]).disabled_at is not None,
               what="the endpoint to be disabled")
    message = WebhookMessage.unscoped_objects.get(endpoint_id=endpoint["id"])
    assert message.status == MessageStatus.FAILED and message.attempts == 4  # first try + 3 retries
    assert len(receiver.received) == 4
    wait_until(lambda: len(mail.outbox) >= 2, what="the mail")  # order created + endpoint disabled
    [disabled] = [m for m in mail.outbox if "Webhook endpoint disabled" in m.subject]
    assert disabled.to == [member.user.email] and receiver.url in disabled.body
    body = member.client.get(f"{HOOKS}/{endpoint['id']}").json()
    assert body["enabled"] is False and "503" in body["disabledReason"]
    # a disabled endpoint gets nothing more
    with project_scope(member.project):
        assert services.webhook_publish(project=member.project, event_type="order.created", data={},
                                        audience=None) == []


def test_events_reach_only_endpoints_whose_owner_may_read_them(two_projects, private_hooks, receiver,
                                                               run_tasks):
    alpha, beta = two_projects
    owner, admin, bystander = make_member(alpha), make_member(alpha, Role.ADMIN), make_member(alpha)
    stranger = make_member(beta, Role.ADMIN)
    for who in (owner, admin, bystander, stranger):
        register(who, receiver, ["order.created", "order.status_changed"])
    order = order_of(owner, make_objects(alpha, count=1), run=run_tasks)
    with project_scope(alpha), run_tasks():
        order_services.order_expire(project=alpha, order_id=order.pk)
    reached = set(WebhookMessage.unscoped_objects.values_list("endpoint__owner__email", flat=True))
    # the owner and the project's ADMIN; not another member, never another project's ADMIN
    assert reached == {owner.user.email, admin.user.email}
    assert not WebhookMessage.unscoped_objects.filter(project=beta).exists()
    assert all(r.json["data"]["content"]["owner"] == owner.user.email for r in receiver.received)
    assert len(receiver.received) == WebhookMessage.unscoped_objects.count() == 2 * 4


def test_a_rolled_back_change_publishes_nothing(member, private_hooks, receiver, run_tasks):
    register(member, receiver)
    fill_basket(member, make_objects(member.project, count=1))
    with project_scope(member.project):
        try:
            from django.db import transaction

            with transaction.atomic():
                order_services.order_create(project=member.project, owner=member.user, label="gone")
                raise RuntimeError("the request failed after the order was written")
        except RuntimeError:
            pass
    assert not WebhookMessage.unscoped_objects.exists() and not OrderEvent.unscoped_objects.exists()


def test_the_guard_runs_again_when_sending(member, private_hooks, receiver, run_tasks, settings):
    # given an endpoint registered while private networks were allowed
    endpoint = register(member, receiver, ["order.created"])
    # when they no longer are (or the name now resolves to a private address)
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    settings.WEBHOOKS_RETRY_DELAYS = [3600]
    fill_basket(member, make_objects(member.project, count=1))
    with run_tasks():
        member.client.post(ORDERS_URL, {}, format="json")
    # then nothing is sent and the attempt says why
    assert receiver.received == []
    message = WebhookMessage.unscoped_objects.get(endpoint_id=endpoint["id"])
    assert message.status == MessageStatus.PENDING and message.attempts == 1
    assert "https" in message.last_error and message.last_status_code is None


def test_retries_wait_the_backoff_then_deliver(member, private_hooks, receiver, settings):
    """The same story without a worker, on any database: the clock is moved between attempts."""
    settings.WEBHOOKS_RETRY_DELAYS = [5, 300, 1800]
    endpoint = register(member, receiver, ["order.created"])
    receiver.answers = [500, 500]
    fill_basket(member, make_objects(member.project, count=1))
    member.client.post(ORDERS_URL, {}, format="json")  # on_commit callbacks are not run: no task
    message = WebhookMessage.unscoped_objects.get(endpoint_id=endpoint["id"])
    start = message.created_at
    with time_machine.travel(start, tick=False):
        assert services.webhook_message_send(message_id=message.pk) == "retry"
    with time_machine.travel(start + timedelta(seconds=4), tick=False):
        assert services.webhook_message_send(message_id=message.pk) == "not-claimed"  # not due yet
        assert services.webhooks_sweep(now=start + timedelta(seconds=4)) == 0
    with time_machine.travel(start + timedelta(seconds=6), tick=False):
        assert services.webhook_message_send(message_id=message.pk) == "retry"
    with time_machine.travel(start + timedelta(seconds=6 + 299), tick=False):
        assert services.webhook_message_send(message_id=message.pk) == "not-claimed"
    with time_machine.travel(start + timedelta(seconds=6 + 301), tick=False):
        assert services.webhook_message_send(message_id=message.pk) == "delivered"
        assert services.webhook_message_send(message_id=message.pk) == "not-claimed"  # never twice
    assert [r.headers["webhook-id"] for r in receiver.received] == [message.msg_id] * 3
    assert list(WebhookAttempt.unscoped_objects.filter(message=message).values_list("status_code", flat=True)) \
        == [500, 500, 200]
