"""A download order's history (DownloadOrderEvent rows) and the `downloadorder.completed` webhook.

`download_order_event_record` is the only writer of DownloadOrderEvent; the state machine
calls it inside the transaction of the change, so the row and the webhook message (outbox)
commit or roll back with it: a change is told exactly once.
"""
from __future__ import annotations

from django.db.models import Prefetch
from django.utils import timezone

from orders.history import order_readers
from portal import audit
from portal.tenancy.models import Project
from portal.webhooks import events as webhook_events
from portal.webhooks.services import webhook_publish

from .. import codes as delivery_codes
from ..models import DeliveryArtifact
from .bodies import download_order_body
from .models import DownloadOrder, DownloadOrderEvent, DownloadOrderStatus


def _as_api_shows_it(*, project: Project, download_order_id: int) -> dict:
    archives = DeliveryArtifact.unscoped_objects.filter(item_key=delivery_codes.ARCHIVE_ITEM_KEY)
    order = (DownloadOrder.unscoped_objects.select_related("owner", "modified_by", "delivery")
             .prefetch_related(Prefetch("delivery__artifacts", queryset=archives))
             .get(project=project, pk=download_order_id))
    return download_order_body(order, project_slug=project.slug)


def download_order_event_record(*, project: Project, download_order_id: int, from_status: str, to_status: str,
                                reason: str = "") -> DownloadOrderEvent:
    """Writes one history row (who: the current actor); a move to Completed is published."""
    actor = audit.current_actor()
    event = DownloadOrderEvent.objects.create(
        project=project, download_order_id=download_order_id, at=timezone.now(), from_status=from_status or "",
        to_status=to_status, reason=(reason or "")[:500], actor_id=actor.user_id, actor_label=actor.label[:254])
    if to_status == DownloadOrderStatus.COMPLETED:
        owner_id = (DownloadOrder.unscoped_objects.filter(project=project, pk=download_order_id)
                    .values_list("owner_id", flat=True).get())
        webhook_publish(project=project, event_type=webhook_events.DOWNLOADORDER_COMPLETED,
                        data=lambda: _as_api_shows_it(project=project, download_order_id=download_order_id),
                        audience=lambda: order_readers(project=project, owner_id=owner_id))
    return event
