"""Download test helpers: staged orders with real files (built through the orders services)."""
from __future__ import annotations

import pytest

from orders.models import Order, OrderDataFile
from tests.orders.conftest import make_objects, order_of, reload  # noqa: F401

API = "/api/v1/rs-order"


def order_files(order) -> list[OrderDataFile]:
    return list(OrderDataFile.unscoped_objects.filter(order_id=order.pk).order_by("id"))


def states(order) -> dict[int, str]:
    return {f.pk: f.state for f in order_files(order)}


def body_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.fixture
def staged_order(member, run_tasks) -> Order:
    """A DONE order of 3 ONLINE files, all AVAILABLE."""
    return reload(order_of(member, make_objects(member.project, count=3, files=(("RAWDATA", 300),)), run=run_tasks))
