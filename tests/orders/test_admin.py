"""Admin console: orders scoped to the projects one administers, actions through the services."""
import pytest
from django.test import Client

from orders.models import OrderStatus
from portal.tenancy.models import Role
from tests.conftest import make_member

from .conftest import make_objects, order_of, reload

pytestmark = pytest.mark.django_db


@pytest.fixture
def console(project):
    admin = make_member(project, Role.ADMIN)
    admin.user.is_staff = True
    admin.user.save()
    client = Client()
    client.force_login(admin.user)
    return client


def test_orders_are_listed_per_project_and_filterable(console, member, other_project):
    mine = order_of(member, make_objects(member.project, count=1), label="alpha order")
    stranger = make_member(other_project)
    theirs = order_of(stranger, make_objects(other_project, count=1), label="beta order")
    listing = console.get("/admin/orders/order/", {"status__exact": "PENDING", "q": "order"})
    assert listing.status_code == 200
    assert b"alpha order" in listing.content and b"beta order" not in listing.content
    assert console.get(f"/admin/orders/order/{theirs.pk}/change/").status_code in (302, 404)
    assert console.get(f"/admin/orders/order/{mine.pk}/change/").status_code == 200


def test_pause_resume_and_expire_actions(console, member, run_tasks):
    order = order_of(member, make_objects(member.project, count=1))

    def act(action):
        with run_tasks():
            response = console.post("/admin/orders/order/", {"action": action, "_selected_action": [order.pk]})
        assert response.status_code == 302

    act("pause_orders")
    assert reload(order).status == OrderStatus.PAUSED
    act("pause_orders")  # refused by the state machine: unchanged, reported
    assert reload(order).status == OrderStatus.PAUSED
    act("resume_orders")
    assert reload(order).status == OrderStatus.DONE
    act("expire_orders")
    assert reload(order).status == OrderStatus.EXPIRED
