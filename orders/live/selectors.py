"""Reads of the live order stream: one light progress query, and the files made available since."""
from __future__ import annotations

from datetime import datetime

from portal.tenancy.models import Project

from ..downloads.selectors import DOWNLOADABLE_STATES
from ..models import Order, OrderDataFile

PROGRESS_FIELDS = ("id", "status", "status_date", "percent_completed", "available_files_count",
                   "files_in_error_count", "waiting_for_user")


def order_progress_row(*, project: Project, order_id: int) -> dict | None:
    """The order's progress columns (one indexed query), or None once it was removed."""
    return Order.objects.filter(project=project, id=order_id).values(*PROGRESS_FIELDS).first()


def order_files_available_since(*, project: Project, order_id: int, since: datetime, limit: int) -> list[tuple]:
    """(id, filename, size, state, state_date) of files downloadable and changed since `since`."""
    return list(OrderDataFile.objects.filter(project=project, order_id=order_id, state__in=DOWNLOADABLE_STATES,
                                             state_date__gte=since)
                .order_by("state_date", "id").values_list("id", "filename", "size", "state", "state_date")[:limit])
