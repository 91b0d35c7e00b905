"""A download order's history (DownloadOrderEvent rows) and where its webhook is published.

`download_order_event_record` is the only writer of DownloadOrderEvent; the state machine
calls it inside the transaction of the change, so a change is told exactly once.

Webhooks (`downloadorder.completed`, SPEC section 7) are being added on another branch
(`hooks`: `portal.webhooks.services.webhook_publish`, `portal.webhooks.events`). When they are
on main, publish here, in the same transaction (the outbox commits with the change):

    if to_status == DownloadOrderStatus.COMPLETED:
        webhook_publish(project=project, event_type=webhook_events.DOWNLOADORDER_COMPLETED,
                        data=lambda: bodies.download_order_body(<the order, reloaded>, project_slug=project.slug),
                        audience=lambda: {owner_id, *project ADMIN ids})
"""
from __future__ import annotations

import logging

from django.utils import timezone

from portal.tenancy.models import Project

from .models import DownloadOrderEvent

log = logging.getLogger(__name__)


def download_order_event_record(*, project: Project, download_order_id: int, from_status: str, to_status: str,
                                reason: str = "") -> DownloadOrderEvent:
    event = DownloadOrderEvent.objects.create(project=project, download_order_id=download_order_id,
                                              at=timezone.now(), from_status=from_status or "",
                                              to_status=to_status, reason=(reason or "")[:500])
    log.info("download order %s of %s: %s -> %s", download_order_id, project.slug, from_status, to_status)
    return event
