"""Per-user sub-order slots: which WAITING sub-orders start staging, and who waits for the user."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from portal.tenancy.models import Project

from . import dispatch
from .history import order_event_record
from .models import Order, OrderEventKind, OrderStatus, SubOrder, SubOrderState

IN_FLIGHT = (SubOrderState.STAGING, SubOrderState.STAGED)


@transaction.atomic
def suborders_schedule(*, project: Project, owner=None, owner_id: int | None = None) -> list[int]:
    """Starts the owner's next WAITING sub-orders within the per-user limit.

    A user has at most `project.user_max_suborders` sub-orders STAGING or STAGED (staged,
    not downloaded yet) across all their orders. Orders whose next sub-order is held back
    by ready, undownloaded ones get waitingForUser. Returns the started sub-order ids.
    """
    owner_id = owner_id if owner_id is not None else owner.pk
    list(get_user_model().objects.select_for_update().filter(pk=owner_id).values_list("pk"))
    limit = Project.objects.filter(pk=project.pk).values_list("user_max_suborders", flat=True).first() or 0
    mine = SubOrder.objects.filter(project=project, owner_id=owner_id)
    in_flight = mine.filter(state__in=IN_FLIGHT).count()
    started: list[int] = []
    free = max(0, limit - in_flight)
    if free:
        candidates = list(mine.filter(state=SubOrderState.WAITING, order__status=OrderStatus.RUNNING)
                          .order_by("order__creation_date", "order_id", "id").values_list("id", flat=True)[:free])
        now = timezone.now()
        for sub_id in candidates:
            if mine.filter(id=sub_id, state=SubOrderState.WAITING).update(
                    state=SubOrderState.STAGING, started_at=now, claimed_at=None, ended_at=None):
                started.append(sub_id)
                dispatch.task_on_commit("suborder_stage_task", project.pk, sub_id)
    in_flight += len(started)
    blocked = in_flight >= limit and mine.filter(state=SubOrderState.STAGED).exists()
    waiting_orders = set(
        mine.filter(state=SubOrderState.WAITING, order__status=OrderStatus.RUNNING)
        .values_list("order_id", flat=True).distinct()) if blocked else set()
    orders = Order.objects.filter(project=project, owner_id=owner_id)
    orders.filter(waiting_for_user=True).exclude(id__in=waiting_orders).update(waiting_for_user=False)
    if waiting_orders:
        newly_waiting = list(orders.filter(id__in=waiting_orders, waiting_for_user=False).values_list("id", flat=True))
        orders.filter(id__in=newly_waiting).update(waiting_for_user=True)
        for order_id in newly_waiting:
            order_event_record(project=project, order_id=order_id, owner_id=owner_id,
                               kind=OrderEventKind.WAITING_FOR_USER,
                               reason="Download the files that are ready so the next ones can be prepared.")
    return started
