"""`extend` (PUT /user/orders/{id}/extend) and the warning a day before an order with files not
downloaded expires (one mail, one `order.expiring` event), tested with a moved clock."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from orders import expiry, services
from orders.models import FileState, OrderDataFile, OrderEvent, OrderStatus
from portal.tenancy.models import Role
from portal.tenancy.scope import project_scope
from portal.webhooks.models import WebhookEndpoint, WebhookMessage
from tests.conftest import make_member

from .conftest import ORDERS_URL, make_objects, order_of, reload

pytestmark = pytest.mark.django_db


def _extend(member, order_id, body=None):
    return member.client.put(f"{ORDERS_URL}/{order_id}/extend", body or {}, format="json")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_extend_moves_the_expiry_to_now_plus_the_lifetime_or_the_days_asked(member, run_tasks):
    order = order_of(member, make_objects(member.project, count=1), run=run_tasks)
    links = {link["rel"]: link["href"] for link in member.client.get(f"{ORDERS_URL}/{order.pk}").json()["links"]}
    assert links["extend"].endswith(f"/api/v1/rs-order/user/orders/{order.pk}/extend")
    with time_machine.travel(order.creation_date + timedelta(days=2), tick=False):
        response = _extend(member, order.pk)
        assert response.status_code == 200, response.content
        assert reload(order).expiration_date == timezone.now() + timedelta(days=3)
        assert _parse(response.json()["content"]["expirationDate"]) == reload(order).expiration_date.replace(
            microsecond=reload(order).expiration_date.microsecond // 1000 * 1000)
        response = _extend(member, order.pk, {"days": 10})
        assert reload(order).expiration_date == timezone.now() + timedelta(days=10)
    event = OrderEvent.unscoped_objects.filter(order_id=order.pk, kind="extended").last()
    assert event.actor_label == member.user.email and "Expiration moved" in event.reason


def test_extend_never_goes_past_the_projects_maximum_lifetime(member, run_tasks):
    order = order_of(member, make_objects(member.project, count=1), run=run_tasks)
    with time_machine.travel(order.creation_date + timedelta(days=2), tick=False):
        assert _extend(member, order.pk, {"days": 12}).status_code == 200  # until day 14
    with time_machine.travel(order.creation_date + timedelta(days=13), tick=False):
        assert _extend(member, order.pk, {"days": 17}).status_code == 200  # exactly day 30
        response = _extend(member, order.pk, {"days": 18})
    assert response.status_code == 422 and response.json() == {"messages": ["EXTENSION_BEYOND_MAXIMUM_LIFETIME"]}
    assert reload(order).expiration_date == order.creation_date + timedelta(days=30)
    # an ADMIN raises the project's maximum: allowed again
    member.project.order_max_lifetime_days = 40
    member.project.save()
    with time_machine.travel(order.creation_date + timedelta(days=13), tick=False):
        assert _extend(member, order.pk, {"days": 18}).status_code == 200


@pytest.mark.parametrize("body", [{"days": 0}, {"days": -3}, {"days": "many"}])
def test_bad_days_are_400(member, run_tasks, body):
    order = order_of(member, make_objects(member.project, count=1), run=run_tasks)
    response = _extend(member, order.pk, body)
    assert response.status_code == 400 and response.json()["messages"]


def test_expired_and_deleted_orders_cannot_be_extended(member, run_tasks):
    expired = order_of(member, make_objects(member.project, count=1), run=run_tasks, label="old")
    deleted = order_of(member, make_objects(member.project, count=1), run=run_tasks, label="gone")
    late = order_of(member, make_objects(member.project, count=1), run=run_tasks, label="late")
    with project_scope(member.project):
        services.order_expire(project=member.project, order_id=expired.pk)
        services.order_delete(project=member.project, order_id=deleted.pk)
    for order in (expired, deleted):
        response = _extend(member, order.pk)
        assert response.status_code == 401
        assert response.json() == {"messages": ["ORDER_MUST_NOT_BE_EXPIRED_OR_DELETED"]}
        links = member.client.get(f"{ORDERS_URL}/{order.pk}").json()["links"]
        assert "extend" not in {link["rel"] for link in links}
    # past its date but not swept yet: expired all the same
    with time_machine.travel(late.expiration_date + timedelta(minutes=1), tick=False):
        assert _extend(member, late.pk).json() == {"messages": ["ORDER_MUST_NOT_BE_EXPIRED_OR_DELETED"]}


def test_only_the_owner_or_an_admin_extends(project, member, admin_member, run_tasks):
    order = order_of(member, make_objects(project, count=1), run=run_tasks)
    other = make_member(project)
    assert _extend(other, order.pk).status_code == 403
    assert _extend(admin_member, order.pk).status_code == 200
    assert _extend(member, 999_999).status_code == 404


def test_extend_of_another_projects_order_is_unknown(two_projects, run_tasks):
    alpha, beta = two_projects
    owner = make_member(alpha)
    order = order_of(owner, make_objects(alpha, count=1), run=run_tasks)
    intruder = make_member(beta, Role.ADMIN)
    assert _extend(intruder, order.pk).status_code == 404
    assert reload(order).expiration_date == order.expiration_date


def _hook(member, events=("order.expiring",)):
    return WebhookEndpoint.unscoped_objects.create(project=member.project, owner=member.user,
                                                   url="http://127.0.0.1:9/", events=list(events),
                                                   secret="whsec_c2VjcmV0c2VjcmV0c2VjcmV0")


def test_one_warning_a_day_before_an_order_with_files_not_downloaded_expires(member, run_tasks):
    _hook(member)
    waiting = order_of(member, make_objects(member.project, count=2), run=run_tasks, label="waiting")
    fetched = order_of(member, make_objects(member.project, count=1), run=run_tasks, label="fetched")
    OrderDataFile.unscoped_objects.filter(order_id=fetched.pk).update(state=FileState.DOWNLOADED)
    mail.outbox.clear()
    # two days before: nothing yet
    with time_machine.travel(waiting.expiration_date - timedelta(days=2), tick=False):
        assert expiry.orders_expiring_sweep() == 0
    # less than a day before: one mail, one event, one webhook message, for the order with files left
    with time_machine.travel(waiting.expiration_date - timedelta(hours=23), tick=False):
        with run_tasks():
            assert expiry.orders_expiring_sweep() == 1
        assert expiry.orders_expiring_sweep() == 0  # idempotent
    with time_machine.travel(waiting.expiration_date - timedelta(hours=1), tick=False):
        assert expiry.orders_expiring_sweep() == 0
    [warning] = mail.outbox
    assert warning.to == [member.user.email] and "expires in less than a day" in warning.subject
    assert f"/projects/{member.project.slug}/orders/{waiting.pk}/" in warning.body
    assert f"PUT http://127.0.0.1:8000/api/v1/rs-order/user/orders/{waiting.pk}/extend" in warning.body
    assert list(OrderEvent.unscoped_objects.filter(kind="expiring").values_list("order_id", flat=True)) == [waiting.pk]
    assert list(WebhookMessage.unscoped_objects.values_list("event_type", flat=True)) == ["order.expiring"]


def test_extending_rearms_the_warning_for_the_new_date(member, run_tasks):
    order = order_of(member, make_objects(member.project, count=1), run=run_tasks)
    first_warning = order.expiration_date - timedelta(hours=12)
    with time_machine.travel(first_warning, tick=False):
        with run_tasks():
            assert expiry.orders_expiring_sweep() == 1
        assert _extend(member, order.pk, {"days": 3}).status_code == 200
        assert expiry.orders_expiring_sweep() == 0
    with time_machine.travel(first_warning + timedelta(days=2, hours=13), tick=False):
        with run_tasks():
            assert expiry.orders_expiring_sweep() == 1
    assert len([m for m in mail.outbox if "less than a day" in m.subject]) == 2


def test_deleted_orders_are_not_warned(member, run_tasks):
    order = order_of(member, make_objects(member.project, count=1), run=run_tasks)
    with project_scope(member.project):
        services.order_delete(project=member.project, order_id=order.pk)
    assert reload(order).status == OrderStatus.DELETED
    with time_machine.travel(order.expiration_date - timedelta(hours=2), tick=False):
        assert expiry.orders_expiring_sweep() == 0


def test_the_order_page_says_how_to_extend_and_offers_the_button(member, run_tasks, client):
    order = order_of(member, make_objects(member.project, count=1), run=run_tasks)
    client.force_login(member.user)
    page_url = f"/projects/{member.project.slug}/orders/{order.pk}/"
    html = client.get(page_url).content.decode()
    assert 'data-rel="extend">' in html and 'id="expiry-notice"' not in html  # 3 days left: no notice yet
    with time_machine.travel(order.expiration_date - timedelta(hours=5), tick=False):
        html = client.get(page_url).content.decode()
        assert 'id="expiry-notice"' in html and "Extend" in html and f"/orders/{order.pk}/extend" in html
        response = client.post(f"{page_url}extend")
        assert response.status_code == 302
        assert reload(order).expiration_date == timezone.now() + timedelta(days=3)
    html = client.get(page_url).content.decode()
    assert 'id="order-history"' in html and "Extended" in html and "Expiration moved" in html
