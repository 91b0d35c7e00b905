"""Expiry sweep, mails (created / ready / weekday reminder) and the public orderToken."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone as dt_timezone
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone

from orders import mails, sweeps
from orders.models import FileState, Order, OrderDataFile, OrderStatus
from orders.tokens import OrderTokenExpired, OrderTokenInvalid, order_from_token, order_token_for
from portal.catalog.models import StorageTier
from portal.tenancy.scope import project_scope

from .conftest import ORDERS_URL, make_objects, order_of, reload, sub_states

pytestmark = pytest.mark.django_db


def test_expiration_date_is_creation_plus_project_lifetime(member, run_tasks):
    member.project.order_lifetime_days = 5
    member.project.save()
    order = order_of(member, make_objects(member.project, count=1))
    assert order.expiration_date - order.creation_date == timedelta(days=5)


def test_expiry_sweep_expires_frees_and_is_idempotent(member, run_tasks):
    project = member.project
    old = order_of(member, make_objects(project, count=2, tier=StorageTier.NEARLINE, label="old"), run=run_tasks)
    fresh = order_of(member, make_objects(project, count=1, label="fresh"), run=run_tasks)
    cache_dir = Path(settings.ORDER_CACHE_DIR) / project.slug / str(old.pk)
    assert cache_dir.exists()
    Order.unscoped_objects.filter(pk=old.pk).update(expiration_date=timezone.now() - timedelta(minutes=1))

    with run_tasks():
        assert sweeps.orders_expire_sweep(batch_size=1) == 1
    assert reload(old).status == OrderStatus.EXPIRED and not cache_dir.exists()
    assert set(sub_states(old)) == {"DONE"}
    assert reload(fresh).status == OrderStatus.DONE
    # a second run changes nothing
    with run_tasks():
        assert sweeps.orders_expire_sweep() == 0
    body = member.client.get(f"{ORDERS_URL}/{old.pk}").json()
    assert body["content"]["status"] == "EXPIRED"
    assert [link["rel"] for link in body["links"]] == ["self", "list"]


def test_creation_mail_carries_a_public_metalink_link_with_a_working_token(member, run_tasks):
    order = order_of(member, make_objects(member.project, count=2), label="mailed", run=run_tasks)
    created = [m for m in mail.outbox if "created" in m.subject]
    ready = [m for m in mail.outbox if "ready" in m.subject]
    assert len(created) == 1 and len(ready) == 1
    assert created[0].to == [member.user.email]
    link = next(word for word in created[0].body.split() if "metalink/download" in word)
    assert link.startswith(f"{settings.PORTAL_BASE_URL}/api/v1/rs-order/user/orders/metalink/download?")
    query = parse_qs(urlparse(link).query)
    assert query["scope"] == [member.project.slug]
    assert order_from_token(project=member.project, token=query["orderToken"][0]).pk == order.pk
    # mails are sent once even if their task runs again
    with project_scope(member.project):
        assert mails.order_notify(project=member.project, order_id=order.pk, kind="created") is False
    assert len(mail.outbox) == 2


def test_order_token_is_bound_to_its_order_and_project(member, other_project, run_tasks):
    order = order_of(member, make_objects(member.project, count=1))
    token = order_token_for(order)
    assert order_from_token(project=member.project, token=token).pk == order.pk
    with pytest.raises(OrderTokenInvalid):
        order_from_token(project=other_project, token=token)
    with pytest.raises(OrderTokenInvalid):
        order_from_token(project=member.project, token=token[:-2] + "xx")
    with pytest.raises(OrderTokenInvalid):
        order_from_token(project=member.project, token="")
    Order.unscoped_objects.filter(pk=order.pk).update(expiration_date=timezone.now() - timedelta(seconds=1))
    with pytest.raises(OrderTokenExpired):
        order_from_token(project=member.project, token=token)


def _available_since(order, when):
    OrderDataFile.unscoped_objects.filter(order=order, state=FileState.AVAILABLE).update(state_date=when)


def test_weekday_reminder_for_files_waiting_72_hours(member, run_tasks):
    order = order_of(member, make_objects(member.project, count=2), run=run_tasks)
    Order.unscoped_objects.filter(pk=order.pk).update(expiration_date=timezone.now() + timedelta(days=10))
    wednesday = datetime(2026, 3, 4, 8, 0, tzinfo=dt_timezone.utc)
    saturday = datetime(2026, 3, 7, 8, 0, tzinfo=dt_timezone.utc)
    mail.outbox.clear()

    _available_since(order, wednesday - timedelta(hours=71))
    assert mails.orders_remind_sweep(now=wednesday) == 0       # not 72 h yet
    _available_since(order, wednesday - timedelta(hours=73))
    assert mails.orders_remind_sweep(now=saturday) == 0        # weekend
    assert mails.orders_remind_sweep(now=wednesday) == 1
    assert mails.orders_remind_sweep(now=wednesday + timedelta(hours=1)) == 0  # once a day
    assert mails.orders_remind_sweep(now=wednesday + timedelta(days=1)) == 1
    assert len(mail.outbox) == 2 and "waiting" in mail.outbox[0].subject
    assert mail.outbox[0].to == [member.user.email]
    assert "metalink/download?orderToken=" in mail.outbox[0].body
