"""An order's progress: sub-order and order counters recounted from the files' states, the
order finished when nothing is pending, and the files marked as their downloads end."""
from __future__ import annotations

import json
import math
from typing import Iterable

from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from portal.tenancy.models import Project

from . import dispatch
from .history import order_files_available_record
from .models import (ERROR_FILE_STATES, FINAL_FILE_STATES, FINISHED_STATUSES, FileState, Order, OrderDataFile, OrderStatus, SubOrder,
                     SubOrderState)
from .scheduling import suborders_schedule
from .transitions import Action, finished_status, order_lock, order_transition


def _suborders_recount(*, project: Project, order_id: int, sub_order_ids=None) -> None:
    """Recounts the file states of some sub-orders (all of the order's when None)."""
    if sub_order_ids is None:
        files = OrderDataFile.objects.filter(project=project, order_id=order_id)
    else:
        sub_order_ids = list(sub_order_ids)
        if not sub_order_ids:
            return
        # By sub-order only: the (sub_order, position) index, never a scan of the whole order.
        files = OrderDataFile.objects.filter(project=project, sub_order_id__in=sub_order_ids)
    rows = files.values("sub_order_id").order_by().annotate(
        pending=Count("id", filter=Q(state=FileState.PENDING)),
        available=Count("id", filter=Q(state=FileState.AVAILABLE)),
        errors=Count("id", filter=Q(state__in=ERROR_FILE_STATES)),
        final=Sum("size", filter=Q(state__in=FINAL_FILE_STATES)),
    )
    for row in rows:
        SubOrder.objects.filter(project=project, pk=row["sub_order_id"]).update(
            pending_count=row["pending"], available_count=row["available"], error_count=row["errors"],
            final_bytes=row["final"] or 0)


@transaction.atomic
def order_progress_refresh(*, project: Project, order_id: int, sub_order_ids=None) -> Order:
    """Recounts the given sub-orders (all when None), sums the order's counters from its
    sub-orders and finishes the order when nothing is pending.

    percentCompleted = floor(100 x bytes of files in a final state / all bytes).
    """
    order = order_lock(project=project, order_id=order_id)
    _suborders_recount(project=project, order_id=order_id, sub_order_ids=sub_order_ids)
    agg = SubOrder.objects.filter(project=project, order_id=order_id).aggregate(
        total=Sum("files_count"), total_bytes=Sum("files_size"), final_bytes=Sum("final_bytes"),
        pending=Sum("pending_count"), available=Sum("available_count"), errors=Sum("error_count"),
    )
    agg = {key: value or 0 for key, value in agg.items()}
    total_bytes, pending = agg["total_bytes"], agg["pending"]
    if total_bytes:
        percent = math.floor(100 * agg["final_bytes"] / total_bytes)
        if pending and percent == 100:
            percent = 99  # zero-byte files still pending
    else:
        percent = 0 if pending else 100
    if order.built_at is None:
        percent = 0
    changes = dict(percent_completed=percent, available_files_count=agg["available"],
                   files_in_error_count=agg["errors"])
    newly_available = agg["available"] - order.available_files_count
    if any(getattr(order, k) != v for k, v in changes.items()):
        Order.objects.filter(pk=order.pk).update(**changes)
        for key, value in changes.items():
            setattr(order, key, value)
    if newly_available > 0:
        order_files_available_record(project=project, order=order, last_batch=pending == 0)
    if order.built_at is not None and pending == 0 and order.status in (OrderStatus.RUNNING, *FINISHED_STATUSES):
        target = finished_status(files_count=agg["total"], error_count=agg["errors"])
        was_running = order.status == OrderStatus.RUNNING
        if target != order.status:
            order = order_transition(project=project, order_id=order_id, action=Action.FINISH, target=target)
        if was_running:
            dispatch.task_on_commit("order_mail_task", project.pk, order.pk, "ready")
    return order


# --- downloads (called by orders.downloads) --------------------------------------------

def _after_downloads(*, project: Project, order: Order, sub_order_ids: set[int]) -> None:
    """Under the order lock: the changed sub-orders recounted, the STAGED ones with no file
    AVAILABLE any more DONE (by their fresh counter: no state index to probe the files by,
    and a STAGED sub-order has no staging running), the owner's next sub-orders started."""
    order_progress_refresh(project=project, order_id=order.pk, sub_order_ids=sub_order_ids)
    SubOrder.objects.filter(project=project, order_id=order.pk, state=SubOrderState.STAGED,
                            id__in=sub_order_ids, available_count=0).update(
        state=SubOrderState.DONE, ended_at=timezone.now())
    suborders_schedule(project=project, owner_id=order.owner_id)


def _mark_files(*, project: Project, order_id: int, file_ids: Iterable[int], from_states, state: str,
                error_reason: str, now) -> list[int]:
    """Files of the order among `file_ids` in one of `from_states` get `state`; returns the
    sub-order of each changed file (one per file).

    The primary key is the only index the statement offers (the other conditions are written
    as expressions no index matches). Given an indexable order condition, SQLite always and
    PostgreSQL when its statistics did not describe the new order walked the order's
    `(order, position)` index and filtered it by id: every file of the order for each batch,
    quadratic over a zip of it (a million-file zip spent most of its time there). Every
    condition is still checked on the row being updated. No index holds `state`: the update
    is HOT on PostgreSQL (same page, no index entry)."""
    ids = [int(i) for i in file_ids]
    if connection.vendor == "postgresql":
        wanted, ids_param = "id = ANY(%s::bigint[])", ids
    else:  # one JSON parameter: Django preparing ten thousand IN parameters cost more than the update
        wanted, ids_param = "id IN (SELECT value FROM json_each(%s))", json.dumps(ids)
    table = connection.ops.quote_name(OrderDataFile._meta.db_table)
    states = ", ".join(["%s"] * len(from_states))
    sql = (f"UPDATE {table} SET state = %s, error_reason = %s, state_date = %s "
           f"WHERE {wanted} AND project_id + 0 = %s AND order_id + 0 = %s "
           f"AND state || '' IN ({states}) RETURNING sub_order_id")
    params = [str(state), error_reason, connection.ops.adapt_datetimefield_value(now), ids_param, project.pk,
              order_id, *map(str, from_states)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


@transaction.atomic
def order_files_mark_downloaded(*, project: Project, order: Order, file_ids: Iterable[int]) -> int:
    """Files fully sent become DOWNLOADED; sub-orders with nothing left to fetch are DONE and
    the owner's next sub-orders start. Returns how many files changed."""
    locked = order_lock(project=project, order_id=order.pk)
    changed_sub_orders = _mark_files(project=project, order_id=locked.pk, file_ids=file_ids,
                                     from_states=(FileState.AVAILABLE, FileState.DOWNLOAD_ERROR),
                                     state=FileState.DOWNLOADED, error_reason="", now=timezone.now())
    changed, sub_order_ids = len(changed_sub_orders), set(changed_sub_orders)
    if changed:
        _after_downloads(project=project, order=locked, sub_order_ids=sub_order_ids)
    return changed


@transaction.atomic
def order_files_mark_download_failed(*, project: Project, order: Order, file_ids_with_reasons) -> int:
    """Files that could not be sent become DOWNLOAD_ERROR (retryable) with their reason.

    `file_ids_with_reasons`: a dict {file_id: reason} or pairs (file_id, reason).
    """
    locked = order_lock(project=project, order_id=order.pk)
    pairs = file_ids_with_reasons.items() if isinstance(file_ids_with_reasons, dict) else file_ids_with_reasons
    by_reason: dict[str, list[int]] = {}
    for file_id, reason in pairs:
        by_reason.setdefault(str(reason or "Download failed"), []).append(file_id)
    changed = 0
    now = timezone.now()
    sub_order_ids: set[int] = set()
    for reason, ids in by_reason.items():
        changed_sub_orders = _mark_files(project=project, order_id=locked.pk, file_ids=ids,
                                         from_states=(FileState.AVAILABLE,), state=FileState.DOWNLOAD_ERROR,
                                         error_reason=reason, now=now)
        changed += len(changed_sub_orders)
        sub_order_ids.update(changed_sub_orders)
    if changed:
        _after_downloads(project=project, order=locked, sub_order_ids=sub_order_ids)
    return changed
