"""Periodic jobs (beat): expiring orders past their date, and re-dispatching stuck work.
Bounded batches, harmless when run twice."""
from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from portal.tenancy.models import Project
from portal.tenancy.scope import project_scope

from . import dispatch
from .models import Order, OrderStatus, SubOrder, SubOrderState
from .services import order_expire
from .staging import staging_stale_after


def orders_expire_sweep(*, batch_size: int = 200, max_batches: int = 50) -> int:
    """Expires orders past their expiration date, in bounded batches; returns how many."""
    expired = 0
    for _ in range(max_batches):
        due = list(Order.unscoped_objects.filter(expiration_date__lte=timezone.now())
                   .exclude(status__in=(OrderStatus.EXPIRED, OrderStatus.DELETED))
                   .select_related("project").order_by("expiration_date", "id")[:batch_size])
        if not due:
            break
        for order in due:
            with project_scope(order.project):
                try:
                    if order_expire(project=order.project, order_id=order.pk) is not None:
                        expired += 1
                except Order.DoesNotExist:
                    pass
    return expired


def orders_stuck_sweep(*, stale_after: timedelta | None = None, batch_size: int = 200) -> int:
    """Re-dispatches sub-orders STAGING with no live worker, and builds that never finished."""
    stale_after = stale_after or staging_stale_after()
    cutoff = timezone.now() - stale_after
    stuck = list(SubOrder.unscoped_objects.filter(state=SubOrderState.STAGING).filter(
        Q(claimed_at__lt=cutoff) | Q(claimed_at__isnull=True, started_at__lt=cutoff))
        .select_related("project").values_list("id", "project_id", "claimed_at", "order_id")[:batch_size])
    dispatched = 0
    projects = {p.pk: p for p in Project.objects.filter(pk__in={row[1] for row in stuck})}
    for sub_id, project_id, claimed_at, order_id in stuck:
        project = projects[project_id]
        with project_scope(project), transaction.atomic():
            # Reset only if nobody heartbeat meanwhile (compare-and-set on the old claim).
            if SubOrder.objects.filter(id=sub_id, state=SubOrderState.STAGING, claimed_at=claimed_at).update(
                    claimed_at=None, started_at=timezone.now()):
                dispatch.task_on_commit("suborder_stage_task", project_id, sub_id)
                dispatched += 1
    unbuilt = Order.unscoped_objects.filter(status=OrderStatus.PENDING, built_at__isnull=True,
                                            creation_date__lt=cutoff).values_list("project_id", "id")[:batch_size]
    for project_id, order_id in unbuilt:
        from . import tasks

        tasks.order_build_task.delay(project_id, order_id)
        dispatched += 1
    return dispatched
