"""The one state machine of orders: which action is allowed from which status.

`order_transition` is the only code that assigns `Order.status`. It locks the order's
owner row, then the order row (always in that order, everywhere, so concurrent requests and
workers never deadlock), checks the table and changes the status. Services call it inside
their own transaction and apply side effects on the locked row it returns. The same table
drives the HATEOAS `links` of every order body, so what the API offers and what it allows
never drift.
"""
from __future__ import annotations

import enum

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from portal.errors import Refused
from portal.tenancy.models import Project

from . import codes
from .history import order_event_record
from .models import Order, OrderEventKind, OrderStatus

S = OrderStatus


class Action(str, enum.Enum):
    # Asked for by people (REGARDS API, admin console).
    PAUSE = "pause"
    RESUME = "resume"
    DELETE = "delete"
    REMOVE = "remove"
    RETRY = "retry"
    RESTART = "restart"
    DOWNLOAD = "download"  # no status change: whether files may be fetched
    EXTEND = "extend"      # no status change: moves the expiration date
    # Done by the system.
    START = "start"        # files resolved, sub-orders built
    FINISH = "finish"      # every file in a final state (target computed from the counts)
    EXPIRE = "expire"


_EVERY_STATUS = frozenset(S.values)

ALLOWED_FROM: dict[Action, frozenset[str]] = {
    Action.PAUSE: frozenset({S.PENDING, S.RUNNING}),
    Action.RESUME: frozenset({S.PAUSED}),
    # Finished orders are as still as paused ones; their links offer delete (SPEC links).
    Action.DELETE: frozenset({S.PAUSED, S.DONE, S.DONE_WITH_WARNING, S.FAILED}),
    Action.REMOVE: _EVERY_STATUS - {S.RUNNING},
    Action.RETRY: frozenset({S.DONE_WITH_WARNING, S.FAILED}),
    Action.RESTART: frozenset({S.DONE, S.DONE_WITH_WARNING, S.FAILED}),
    Action.DOWNLOAD: frozenset({S.RUNNING, S.PAUSED, S.DONE, S.DONE_WITH_WARNING, S.FAILED}),
    Action.EXTEND: _EVERY_STATUS - {S.EXPIRED, S.DELETED},
    Action.START: frozenset({S.PENDING}),
    # From a final status too: a failed download turns DONE into DONE_WITH_WARNING.
    Action.FINISH: frozenset({S.RUNNING, S.DONE, S.DONE_WITH_WARNING, S.FAILED}),
    Action.EXPIRE: _EVERY_STATUS - {S.EXPIRED, S.DELETED},
}

REFUSAL_CODE: dict[Action, str] = {
    Action.PAUSE: codes.ORDER_MUST_BE_PENDING_OR_RUNNING,
    Action.RESUME: codes.ONLY_PAUSED_ORDER_CAN_BE_RESUMED,
    Action.DELETE: codes.ORDER_MUST_BE_PAUSED_BEFORE_BEING_DELETED,
    Action.REMOVE: codes.ORDER_MUST_NOT_BE_RUNNING,
    Action.RETRY: codes.ORDER_MUST_BE_DONE_WITH_WARNING_OR_FAILED,
    Action.RESTART: codes.ORDER_MUST_BE_DONE_OR_DONE_WITH_WARNING_OR_FAILED,
    Action.EXTEND: codes.ORDER_MUST_NOT_BE_EXPIRED_OR_DELETED,
}

# Status an action leads to; None: no change (restart, download, remove deletes the row),
# or computed (resume, finish).
TARGET: dict[Action, str | None] = {
    Action.PAUSE: S.PAUSED,
    Action.DELETE: S.DELETED,
    Action.RETRY: S.RUNNING,
    Action.START: S.RUNNING,
    Action.EXPIRE: S.EXPIRED,
}



class OrderActionRefused(Refused):
    """The order's status does not allow the action; `code` names the rule (REGARDS answers 401)."""


def is_allowed(order: Order, action: Action) -> bool:
    return order.status in ALLOWED_FROM[action]


def finished_status(*, files_count: int, error_count: int) -> str:
    """Status of an order whose files are all in a final state."""
    if files_count == 0:
        return S.DONE_WITH_WARNING  # nothing to give: the user is told why in `message`
    if error_count == 0:
        return S.DONE
    if error_count >= files_count:
        return S.FAILED
    return S.DONE_WITH_WARNING


def order_lock(*, project: Project, order_id: int) -> Order:
    """Locks the owner row then the order row; raises Order.DoesNotExist."""
    owner_id = (Order.unscoped_objects.filter(project=project, id=order_id)
                .values_list("owner_id", flat=True).first())
    if owner_id is None:
        raise Order.DoesNotExist(f"No order {order_id} in project {project.slug}")
    # The owner row serialises every change to one user's orders and sub-order slots.
    list(get_user_model().objects.select_for_update().filter(pk=owner_id).values_list("pk"))
    return Order.unscoped_objects.select_for_update(of=("self",)).get(project=project, id=order_id)


def order_transition(*, project: Project, order_id: int, action: Action, target: str | None = None,
                     refuse: bool = True) -> Order | None:
    """Locks the order and applies `action`; returns the locked order. A status change is
    recorded in the order's history (and published to webhooks) in the same transaction.

    A status the table does not allow raises OrderActionRefused (with the action's code), or returns None when `refuse` is False (system actions racing with people).
    `target` is required for the computed actions (RESUME, FINISH).
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("order_transition must run inside transaction.atomic")
    order = order_lock(project=project, order_id=order_id)
    if order.status not in ALLOWED_FROM[action]:
        if not refuse:
            return None
        raise OrderActionRefused(REFUSAL_CODE.get(action, codes.ORDER_TRANSITION_NOT_ALLOWED))
    new_status = target or TARGET.get(action)
    if new_status and new_status != order.status:
        from_status = order.status
        order.status = new_status
        order.status_date = timezone.now()
        Order.unscoped_objects.filter(pk=order.pk).update(status=order.status, status_date=order.status_date)
        order_event_record(project=project, order_id=order.pk, owner_id=order.owner_id,
                           kind=OrderEventKind.STATUS_CHANGED, from_status=from_status, to_status=new_status,
                           reason=action.value)
    return order


# --- links ------------------------------------------------------------------------------

_PREFIX = "/api/v1/rs-order/user/orders"
# rel -> (action whose table row offers it, path template)
_LINKED_ACTIONS: list[tuple[str, Action, str]] = [
    ("pause", Action.PAUSE, _PREFIX + "/pause/{id}"),
    ("resume", Action.RESUME, _PREFIX + "/resume/{id}"),
    ("delete", Action.DELETE, _PREFIX + "/{id}"),
    ("remove", Action.REMOVE, _PREFIX + "/remove/{id}"),
    ("restart", Action.RESTART, _PREFIX + "/{id}/restart"),
    ("retry", Action.RETRY, _PREFIX + "/{id}/retry"),
    ("extend", Action.EXTEND, _PREFIX + "/{id}/extend"),
    ("download", Action.DOWNLOAD, _PREFIX + "/{id}/download"),
]


def _offered(order: Order, action: Action, *, is_admin: bool) -> bool:
    if not is_allowed(order, action):
        return False
    if action is Action.REMOVE:
        # Remove is allowed from many statuses but only offered where SPEC lists it.
        return order.status == S.DELETED and is_admin
    if action is Action.DOWNLOAD:
        return order.available_files_count > 0
    return True


def order_links(order: Order, *, is_admin: bool) -> list[dict]:
    base = settings.PORTAL_BASE_URL
    links = [{"rel": "self", "href": f"{base}{_PREFIX}/{order.pk}"},
             {"rel": "list", "href": f"{base}{_PREFIX}"}]
    for rel, action, template in _LINKED_ACTIONS:
        if _offered(order, action, is_admin=is_admin):
            links.append({"rel": rel, "href": base + template.format(id=order.pk)})
    return links
