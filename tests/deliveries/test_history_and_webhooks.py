"""A delivery's status changes are recorded (who or which task, from, to, why) and `done` /
`error` are published to the webhooks of members who may read the delivery."""
from __future__ import annotations

import pytest
from standardwebhooks.webhooks import Webhook

from deliveries.models import DeliveryEvent
from portal.catalog import storage
from portal.catalog.models import DataFile, DataType
from portal.tenancy.models import Role
from portal.webhooks.models import WebhookMessage
from tests.conftest import make_member
from tests.orders.conftest import make_objects, order_of
from tests.webhooks.conftest import private_hooks, receiver  # noqa: F401  (fixtures)

from .conftest import delivery_row, make_object, prepare, status_of

pytestmark = pytest.mark.django_db


def _register(member, receiver) -> str:
    response = member.client.post("/api/v1/webhooks", {"url": receiver.url,
                                                       "events": ["delivery.done", "delivery.error"]}, format="json")
    assert response.status_code == 201
    return response.json()["secret"]


def test_done_is_recorded_and_sent_to_every_member_for_a_catalog_item(project, member, private_hooks, receiver,
                                                                      run_tasks, other_project):
    colleague, stranger = make_member(project), make_member(other_project, Role.ADMIN)
    secret = _register(member, receiver)
    _register(colleague, receiver)
    _register(stranger, receiver)
    obj = make_object(project)
    prepare(member, obj.ip_id, run_tasks)
    delivery = delivery_row(project, obj.ip_id)
    # every status change, by the task that made it
    assert list(DeliveryEvent.unscoped_objects.filter(delivery=delivery).values_list(
        "from_status", "to_status", "actor_label")) == [("pending", "start", "task deliveries.prepare"),
                                                        ("start", "inProgress", "task deliveries.prepare"),
                                                        ("inProgress", "done", "task deliveries.prepare")]
    # a catalog item is readable by every member of its project, never by another project's
    assert sorted(WebhookMessage.unscoped_objects.values_list("endpoint__owner__email", flat=True)) == sorted(
        [member.user.email, colleague.user.email])
    mine = next(r for r in receiver.received if r.headers["webhook-id"] in set(
        WebhookMessage.unscoped_objects.filter(endpoint__owner=member.user).values_list("msg_id", flat=True)))
    payload = Webhook(secret).verify(mine.body, mine.headers)
    assert payload["type"] == "delivery.done"
    assert payload["data"] == status_of(member, obj.ip_id).json()  # the delivery as the API shows it


def test_error_is_recorded_and_an_orders_delivery_reaches_only_the_orders_readers(project, member, admin_member,
                                                                                  private_hooks, receiver,
                                                                                  run_tasks):
    colleague = make_member(project)
    for who in (member, admin_member, colleague):
        _register(who, receiver)
    order = order_of(member, make_objects(project, count=1), run=run_tasks)
    data_file = DataFile.unscoped_objects.filter(project=project, data_type=DataType.RAWDATA).first()
    path = storage.data_file_path(data_file)
    path.write_bytes(b"X" + path.read_bytes()[1:])  # the copy will not verify
    prepare(member, f"order-{order.pk}", run_tasks)
    delivery = delivery_row(project, f"order-{order.pk}")
    event = DeliveryEvent.unscoped_objects.filter(delivery=delivery).last()
    assert event.to_status == "error" and event.reason.startswith("DELIVERY.notVerified")
    # a user freeing it is recorded with their email (no webhook for `delete`)
    assert member.client.delete(f"/api/v1/delivery/preparedDelivery/order-{order.pk}").status_code == 200
    freed = DeliveryEvent.unscoped_objects.filter(delivery=delivery).last()
    assert (freed.from_status, freed.to_status, freed.actor_label) == ("error", "delete", member.user.email)
    assert sorted(WebhookMessage.unscoped_objects.values_list("endpoint__owner__email", flat=True)) == sorted(
        [member.user.email, admin_member.user.email])
    assert {r.type for r in receiver.received} == {"delivery.error"} and len(receiver.received) == 2
    assert all(r.json["data"]["error"]["errorCode"] == "DELIVERY.notVerified" for r in receiver.received)
