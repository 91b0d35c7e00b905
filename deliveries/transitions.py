"""The one state machine of deliveries: which action may move a delivery from which status.

`delivery_transition` is the only code that writes `Delivery.status`. It is a conditional
update (compare-and-set): the row changes only if its status is one the table allows for the
action and it still matches `where` (the worker's claim token, the generation a task was
for...), so a worker, a user and a sweep acting at once never leave a delivery in two states.
It answers whether the row changed; the caller decides what losing the race means.
"""
from __future__ import annotations

import enum

from django.db import transaction

from portal.tenancy.models import Project

from .history import delivery_event_record

from .models import ACTIVE_STATUSES, Delivery, DeliveryStatus

S = DeliveryStatus


class Action(str, enum.Enum):
    PREPARE_AGAIN = "prepare_again"  # a user, or an admin's rebuild: a new generation, pending
    CLAIM = "claim"                  # a worker takes the preparation (or takes over a lost one)
    RESERVE = "reserve"              # cache space reserved: files are being copied
    FINISH = "finish"                # package written, artifacts recorded
    FAIL = "fail"                    # preparation failed (the code says why)
    FREE = "free"                    # deleted by a user or an admin
    EVICT = "evict"                  # a done delivery freed to make room, or past its expiry


ALLOWED_FROM: dict[Action, frozenset[str]] = {
    Action.PREPARE_AGAIN: frozenset(S.values),
    Action.CLAIM: frozenset(ACTIVE_STATUSES),
    Action.RESERVE: frozenset({S.START, S.IN_PROGRESS}),
    Action.FINISH: frozenset({S.IN_PROGRESS}),
    Action.FAIL: frozenset(ACTIVE_STATUSES),
    Action.FREE: frozenset(S.values) - {S.DELETE},
    Action.EVICT: frozenset({S.DONE}),
}

TARGET: dict[Action, str] = {
    Action.PREPARE_AGAIN: S.PENDING,
    Action.CLAIM: S.START,
    Action.RESERVE: S.IN_PROGRESS,
    Action.FINISH: S.DONE,
    Action.FAIL: S.ERROR,
    Action.FREE: S.DELETE,
    Action.EVICT: S.DELETE,
}


def delivery_transition(*, project: Project, delivery_id: int, action: Action, where: dict | None = None,
                        **changes) -> bool:
    """Applies `action` (and the other column `changes`) if the table and `where` allow it.

    A change is recorded in the delivery's history (and `done` / `error` published to webhooks)
    in the same transaction."""
    rows = Delivery.objects.filter(project=project, id=delivery_id, status__in=ALLOWED_FROM[action], **(where or {}))
    with transaction.atomic():
        from_status = rows.select_for_update().values_list("status", flat=True).first()
        if from_status is None or not rows.update(status=TARGET[action], **changes):
            return False
        reason = action.value
        if changes.get("error_code"):
            reason = f"{changes['error_code']}: {changes.get('error_message', '')}"
        delivery_event_record(project=project, delivery_id=delivery_id, from_status=from_status,
                              to_status=TARGET[action], reason=reason)
    return True
