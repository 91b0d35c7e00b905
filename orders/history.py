"""An order's history (OrderEvent rows) and the webhooks published from it.

`order_event_record` is the only writer of OrderEvent. The state machine
(`transitions.order_transition`) calls it for every status change, the services for the
notable steps (created, files available, waiting for the user, extended, expiring), always
inside the transaction of the change: the row and the webhook messages (outbox) commit or
roll back with it, so a change made by a request, a worker or a sweep is told exactly once.
"""
from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from portal import audit
from portal.tenancy.models import Membership, Project, Role
from portal.webhooks import events as webhook_events
from portal.webhooks.services import webhook_publish

from .models import Order, OrderEvent, OrderEventKind, OrderStatus

# While files keep arriving (a long nearline restore), "files available" is told at most this often.
FILES_AVAILABLE_MIN_INTERVAL = timedelta(seconds=60)

_WEBHOOK_EVENT = {
    OrderEventKind.CREATED: webhook_events.ORDER_CREATED,
    OrderEventKind.STATUS_CHANGED: webhook_events.ORDER_STATUS_CHANGED,
    OrderEventKind.FILES_AVAILABLE: webhook_events.ORDER_FILES_AVAILABLE,
    OrderEventKind.WAITING_FOR_USER: webhook_events.ORDER_WAITING_FOR_USER,
    OrderEventKind.EXPIRING: webhook_events.ORDER_EXPIRING,
}


def order_readers(*, project: Project, owner_id: int) -> set[int]:
    """Who may read an order through the API: its owner and the project's ADMINs."""
    admins = Membership.objects.filter(project=project, role=Role.ADMIN).values_list("user_id", flat=True)
    return {owner_id, *admins}


def _order_as_api_shows_it(*, project: Project, order_id: int) -> dict:
    from .serializers import order_body

    order = Order.unscoped_objects.select_related("owner").prefetch_related("dataset_tasks")\
        .get(project=project, pk=order_id)
    return order_body(order, is_admin=False)


def order_event_record(*, project: Project, order_id: int, owner_id: int, kind: str, from_status: str = "",
                       to_status: str = "", reason: str = "") -> OrderEvent:
    """Writes one history row (who: the current actor) and publishes its webhook, if any."""
    actor = audit.current_actor()
    event = OrderEvent.unscoped_objects.create(
        project=project, order_id=order_id, at=timezone.now(), kind=kind, from_status=from_status or "",
        to_status=to_status or "", reason=(reason or "")[:500], actor_id=actor.user_id,
        actor_label=actor.label[:254])
    types = [_WEBHOOK_EVENT[kind]] if kind in _WEBHOOK_EVENT else []
    if kind == OrderEventKind.STATUS_CHANGED and to_status == OrderStatus.EXPIRED:
        types.append(webhook_events.ORDER_EXPIRED)
    for event_type in types:
        webhook_publish(project=project, event_type=event_type,
                        data=lambda: _order_as_api_shows_it(project=project, order_id=order_id),
                        audience=lambda: order_readers(project=project, owner_id=owner_id))
    return event


def order_files_available_record(*, project: Project, order: Order, last_batch: bool) -> OrderEvent | None:
    """Records that more of the order's files are available: at once for the first and the last
    batch, otherwise at most once per FILES_AVAILABLE_MIN_INTERVAL."""
    if not last_batch:
        last = (OrderEvent.unscoped_objects.filter(project=project, order_id=order.pk,
                                                   kind=OrderEventKind.FILES_AVAILABLE)
                .order_by("-id").values_list("at", flat=True).first())
        if last is not None and timezone.now() - last < FILES_AVAILABLE_MIN_INTERVAL:
            return None
    return order_event_record(project=project, order_id=order.pk, owner_id=order.owner_id,
                              kind=OrderEventKind.FILES_AVAILABLE,
                              reason=f"{order.available_files_count} file(s) available")
