"""The one state machine of deliveries: which action may move a delivery from which status.

`delivery_transition` is the only code that writes `Delivery.status`. It is a conditional
update (compare-and-set): the row changes only if its status is one the table allows for the
action and it still matches `where` (the worker's claim token, the generation a task was
for...), so a worker, a user and a sweep acting at once never leave a delivery in two states.
It answers whether the row changed; the caller decides what losing the race means.
"""
from __future__ import annotations

import enum

from portal.tenancy.models import Project

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
    """Applies `action` (and the other column `changes`) if the table and `where` allow it."""
    rows = Delivery.objects.filter(project=project, id=delivery_id, status__in=ALLOWED_FROM[action], **(where or {}))
    return bool(rows.update(status=TARGET[action], **changes))
