"""The public `orderToken`: a signed (not stored) token bound to one order of one project.

It carries the order id and the project slug, signed with SECRET_KEY under its own salt,
and is only honoured until the order's expiration date, so nothing secret is stored.
"""
from __future__ import annotations

from django.core import signing
from django.utils import timezone

from portal.errors import NotAuthenticated
from portal.tenancy.models import Project

from .downloads import codes
from .models import Order, OrderStatus

_SALT = "orderly.orders.orderToken"


class OrderTokenInvalid(NotAuthenticated):
    """Bad signature, another project, unknown or removed order."""

    def __init__(self, message: str):
        super().__init__(codes.ORDER_TOKEN_INVALID, message)


class OrderTokenExpired(OrderTokenInvalid):
    """A genuine token of an order past its expiration date (or expired/deleted)."""

    def __init__(self, message: str):
        NotAuthenticated.__init__(self, codes.ORDER_EXPIRED, message)


def order_token_for(order: Order) -> str:
    return signing.dumps({"o": order.pk, "p": order.project.slug},
                         salt=_SALT, compress=True)


def order_from_token(*, project: Project, token: str) -> Order:
    try:
        payload = signing.loads(token or "", salt=_SALT)
    except signing.BadSignature as exc:
        raise OrderTokenInvalid("Bad order token.") from exc
    if not isinstance(payload, dict) or payload.get("p") != project.slug or not isinstance(payload.get("o"), int):
        raise OrderTokenInvalid("This token is not valid for this project.")
    order = Order.unscoped_objects.filter(project=project, pk=payload["o"]).select_related("owner").first()
    if order is None:
        raise OrderTokenInvalid("Unknown order.")
    if order.expiration_date <= timezone.now() or order.status in (OrderStatus.EXPIRED, OrderStatus.DELETED):
        raise OrderTokenExpired("This order has expired.")
    return order
