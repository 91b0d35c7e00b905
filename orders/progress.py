"""An order's progress: sub-order and order counters recounted from the files' states, the
order finished when nothing is pending, and the files marked as their downloads end."""
from __future__ import annotations

import json
import math
from typing import Iterable

from django.db import connection, transaction
from django.db.models import Case, Count, F, Q, Sum, Value, When
from django.db.models.functions import Greatest
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

def _after_downloads(*, project: Project, order: Order, counted: _CounterChanges) -> None:
    """Under the order lock: the changed sub-orders' counters moved by what changed, the
    order's summed again, the STAGED sub-orders with no file AVAILABLE any more DONE (by
    their counter: no state index to probe the files by, and a STAGED sub-order has no
    staging running), the owner's next sub-orders started.

    Moved, not recounted: a zip marks its files in name order, so each batch of a big order
    can touch most of its sub-orders, and recounting them read every file of the order per
    batch. A counter is kept at zero or more: a file staged a moment ago may be marked before
    its staging recounted its sub-order, and that recount (which always follows) sets the
    counters from the files again."""
    changes = counted.by_sub_order
    if not changes:
        return
    SubOrder.objects.filter(project=project, order_id=order.pk, id__in=list(changes)).update(
        available_count=_moved("available_count", {sub: a for sub, (a, _) in changes.items()}),
        error_count=_moved("error_count", {sub: e for sub, (_, e) in changes.items()}))
    order_progress_refresh(project=project, order_id=order.pk, sub_order_ids=())  # no recount: summed again
    SubOrder.objects.filter(project=project, order_id=order.pk, state=SubOrderState.STAGED,
                            id__in=list(changes), available_count=0).update(
        state=SubOrderState.DONE, ended_at=timezone.now())
    suborders_schedule(project=project, owner_id=order.owner_id)


def _moved(field: str, deltas: dict[int, int]):
    """`field` plus its sub-order's delta, at least zero (one CASE for the batch's sub-orders)."""
    whens = [When(pk=sub, then=Value(delta)) for sub, delta in deltas.items() if delta]
    if not whens:
        return F(field)
    return Greatest(F(field) + Case(*whens, default=Value(0)), Value(0))


class _CounterChanges:
    """What a marking changed, per sub-order: (AVAILABLE delta, error delta)."""

    def __init__(self):
        self.by_sub_order: dict[int, tuple[int, int]] = {}
        self.files = 0

    def add(self, changed: dict[int, int], *, available: int, errors: int) -> None:
        """`changed`: how many files changed per sub-order; each moved the counters by
        `available` and `errors`."""
        for sub, count in changed.items():
            a, e = self.by_sub_order.get(sub, (0, 0))
            self.by_sub_order[sub] = (a + available * count, e + errors * count)
        self.files += sum(changed.values())


def _mark_files(*, project: Project, order_id: int, file_ids: Iterable[int], from_state: str, state: str,
                error_reason: str, now) -> dict[int, int]:
    """Files of the order among `file_ids` in `from_state` get `state`; returns how many
    changed in each sub-order.

    The primary key is the only index the statement offers (the other conditions are written
    as expressions no index matches). Given an indexable order condition, SQLite always and
    PostgreSQL when its statistics did not describe the new order walked the order's
    `(order, position)` index and filtered it by id: every file of the order for each batch,
    quadratic over a zip of it (a million-file zip spent most of its time there). Every
    condition is still checked on the row being updated. No index holds `state`: the update
    is HOT on PostgreSQL (same page, no index entry)."""
    ids = [int(i) for i in file_ids]
    if not ids:
        return {}
    if connection.vendor == "postgresql":
        wanted, ids_param = "id = ANY(%s::bigint[])", ids
    else:  # one JSON parameter: Django preparing ten thousand IN parameters cost more than the update
        wanted, ids_param = "id IN (SELECT value FROM json_each(%s))", json.dumps(ids)
    table = connection.ops.quote_name(OrderDataFile._meta.db_table)
    where = f"WHERE {wanted} AND project_id + 0 = %s AND order_id + 0 = %s AND state || '' = %s"
    where_params = [ids_param, project.pk, order_id, str(from_state)]
    update = f"UPDATE {table} SET state = %s, error_reason = %s, state_date = %s {where}"
    update_params = [str(state), error_reason, connection.ops.adapt_datetimefield_value(now), *where_params]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"WITH changed AS ({update} RETURNING sub_order_id) "
                           f"SELECT sub_order_id, COUNT(*) FROM changed GROUP BY sub_order_id", update_params)
            return dict(cursor.fetchall())
        # SQLite: the rows counted by sub-order first (the transaction holds the write lock:
        # the update changes exactly these), then the update without RETURNING. Python's
        # sqlite3 lets go of the GIL and takes it back at every row it steps through, and a
        # zip marks its files in a thread beside the stream that needs the GIL.
        cursor.execute(f"SELECT sub_order_id, COUNT(*) FROM {table} {where} GROUP BY sub_order_id", where_params)
        counts = dict(cursor.fetchall())
        cursor.execute(update, update_params)
        return counts


@transaction.atomic
def order_files_mark_downloaded(*, project: Project, order: Order, file_ids: Iterable[int]) -> int:
    """Files fully sent become DOWNLOADED; sub-orders with nothing left to fetch are DONE and
    the owner's next sub-orders start. Returns how many files changed."""
    locked = order_lock(project=project, order_id=order.pk)
    ids, now, counted = list(file_ids), timezone.now(), _CounterChanges()
    sent = _mark_files(project=project, order_id=locked.pk, file_ids=ids, from_state=FileState.AVAILABLE,
                       state=FileState.DOWNLOADED, error_reason="", now=now)
    counted.add(sent, available=-1, errors=0)
    if counted.files < len(ids):  # some were not AVAILABLE: a failed download sent again at last
        retried = _mark_files(project=project, order_id=locked.pk, file_ids=ids, from_state=FileState.DOWNLOAD_ERROR,
                              state=FileState.DOWNLOADED, error_reason="", now=now)
        counted.add(retried, available=0, errors=-1)
    _after_downloads(project=project, order=locked, counted=counted)
    return counted.files


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
    now, counted = timezone.now(), _CounterChanges()
    for reason, ids in by_reason.items():
        failed = _mark_files(project=project, order_id=locked.pk, file_ids=ids, from_state=FileState.AVAILABLE,
                             state=FileState.DOWNLOAD_ERROR, error_reason=reason, now=now)
        counted.add(failed, available=-1, errors=1)
    _after_downloads(project=project, order=locked, counted=counted)
    return counted.files
