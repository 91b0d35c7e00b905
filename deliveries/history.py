"""A delivery's history (DeliveryEvent rows) and the `delivery.done` / `delivery.error` webhooks.

`delivery_event_record` is the only writer of DeliveryEvent; the state machine
(`transitions.delivery_transition`) calls it in the transaction of every status change, so the
webhook message (outbox) commits with the change.
"""
from __future__ import annotations

from django.utils import timezone

from portal import audit
from portal.tenancy.models import Project
from portal.webhooks import events as webhook_events
from portal.webhooks.services import webhook_publish

from .models import Delivery, DeliveryEvent, DeliveryStatus

_WEBHOOK_EVENT = {DeliveryStatus.DONE: webhook_events.DELIVERY_DONE,
                  DeliveryStatus.ERROR: webhook_events.DELIVERY_ERROR}


def _readers(*, project: Project, delivery_id: int) -> set[int] | None:
    """An order's delivery: the order's readers; a catalog item's: every member (None)."""
    from orders.history import order_readers
    from orders.models import Order

    from .selectors import ORDER, order_id_of

    delivery = Delivery.unscoped_objects.only("target_kind", "catalog_id").get(project=project, pk=delivery_id)
    if delivery.target_kind != ORDER:
        return None
    owner_id = Order.unscoped_objects.filter(project=project, pk=order_id_of(delivery.catalog_id) or 0)\
        .values_list("owner_id", flat=True).first()
    return set() if owner_id is None else order_readers(project=project, owner_id=owner_id)


def _delivery_as_api_shows_it(*, project: Project, delivery_id: int) -> dict:
    from .apis import delivery_body

    delivery = Delivery.unscoped_objects.prefetch_related("artifacts").get(project=project, pk=delivery_id)
    return delivery_body(delivery, project_slug=project.slug)


def delivery_event_record(*, project: Project, delivery_id: int, from_status: str, to_status: str,
                          reason: str = "") -> DeliveryEvent:
    actor = audit.current_actor()
    event = DeliveryEvent.unscoped_objects.create(
        project=project, delivery_id=delivery_id, at=timezone.now(), from_status=from_status or "",
        to_status=to_status, reason=(reason or "")[:500], actor_id=actor.user_id, actor_label=actor.label[:254])
    if to_status in _WEBHOOK_EVENT:
        webhook_publish(project=project, event_type=_WEBHOOK_EVENT[to_status],
                        data=lambda: _delivery_as_api_shows_it(project=project, delivery_id=delivery_id),
                        audience=lambda: _readers(project=project, delivery_id=delivery_id))
    return event
