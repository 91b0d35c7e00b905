"""The one state machine of download orders: a table of allowed moves and one mutator.

`download_order_transition` is the only code that writes `DownloadOrder.status`: a
conditional update (compare-and-set) that also moves `modified_at` (the `Last-Modified` of
the resource) and records the change in the order's history in the same transaction.
"""
from __future__ import annotations

import enum

from django.db import transaction
from django.utils import timezone

from portal.tenancy.models import Project

from . import history
from .models import DownloadOrder, DownloadOrderStatus

S = DownloadOrderStatus


class Action(str, enum.Enum):
    PROCESS = "process"    # a worker took the package (also when it is prepared again)
    COMPLETE = "complete"  # the zip is ready
    FAIL = "fail"          # nothing could be delivered, or the preparation failed
    REBUILD = "rebuild"    # an admin (or a user asking the delivery again) starts it over


ALLOWED_FROM: dict[Action, frozenset[str]] = {
    Action.PROCESS: frozenset({S.PENDING, S.PROCESSING, S.COMPLETED, S.FAILED}),
    Action.COMPLETE: frozenset({S.PROCESSING}),
    Action.FAIL: frozenset({S.PENDING, S.PROCESSING}),
    Action.REBUILD: frozenset(S.values),
}

TARGET: dict[Action, str] = {
    Action.PROCESS: S.PROCESSING,
    Action.COMPLETE: S.COMPLETED,
    Action.FAIL: S.FAILED,
    Action.REBUILD: S.PENDING,
}


@transaction.atomic
def download_order_transition(*, project: Project, download_order_id: int, action: Action, reason: str = "",
                              user=None, **changes) -> bool:
    """Applies `action` if the table allows it from the current status; answers whether the row
    changed. A move to the status it already has changes nothing and records nothing."""
    row = (DownloadOrder.objects.select_for_update().filter(project=project, id=download_order_id)
           .values("status").first())
    if row is None or row["status"] not in ALLOWED_FROM[action]:
        return False
    target = TARGET[action]
    if row["status"] == target and not changes:
        return False
    if user is not None:
        changes["modified_by"] = user
    DownloadOrder.objects.filter(project=project, id=download_order_id).update(status=target,
                                                                              modified_at=timezone.now(), **changes)
    if row["status"] != target:
        history.download_order_event_record(project=project, download_order_id=download_order_id,
                                            from_status=row["status"], to_status=target, reason=reason)
    return True
