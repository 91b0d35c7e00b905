"""`downloadorder.completed`: published (outbox) in the transaction that completes the order,
with the order as the API shows it, only to endpoints whose owner may read it."""
from __future__ import annotations

import json

from deliveries.downloadorders.models import DownloadOrder, DownloadOrderEvent
from portal.tenancy.models import Role
from portal.webhooks.models import WebhookEndpoint, WebhookMessage
from tests.conftest import make_member

from .conftest import body, create, make_object, raw
from .test_pages import build


def _endpoint(member, events):
    return WebhookEndpoint.unscoped_objects.create(project=member.project, owner=member.user, events=events,
                                                   url="https://hooks.example.org/in", secret="whsec_test")


def test_completed_download_orders_are_published_to_their_readers(member, project):
    mine = _endpoint(member, ["downloadorder.completed"])
    admin_hook = _endpoint(make_member(project, Role.ADMIN), ["downloadorder.completed"])
    colleague_hook = _endpoint(make_member(project), ["downloadorder.completed"])
    deaf = _endpoint(member, ["order.created"])
    obj = make_object(project, files=[raw("a.bin", b"a" * 40)])
    order_id = create(member, body([obj.ip_id], name="published")).json()["order_id"]
    assert not WebhookMessage.unscoped_objects.exists()  # Pending and Processing are not published

    build(DownloadOrder.unscoped_objects.get(pk=order_id))

    messages = {m.endpoint_id: m for m in WebhookMessage.unscoped_objects.all()}
    assert set(messages) == {mine.pk, admin_hook.pk} and colleague_hook.pk not in messages and deaf.pk not in messages
    payload = json.loads(messages[mine.pk].payload)
    assert payload["type"] == "downloadorder.completed"
    assert payload["data"]["order_id"] == order_id and payload["data"]["status"] == "Completed"
    assert payload["data"]["download_location"]["href"]
    event = DownloadOrderEvent.unscoped_objects.filter(download_order_id=order_id, to_status="Completed").get()
    assert event.actor_label  # who: the task or the system
