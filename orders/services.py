"""Every write to orders: creation, background build, staging, downloads, lifecycle, sweeps.

Locking rule (see transitions.order_lock): the owner row, then the order row, then
sub-order and file rows. Status changes only go through transitions.order_transition.
"""
from __future__ import annotations

import logging
import math
import time
from datetime import timedelta
from pathlib import Path
from typing import Iterable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.utils import timezone
from rest_framework import status as http

from portal.api.errors import ApiError
from portal.catalog.models import Dataset, StorageTier
from portal.tenancy.models import Project
from portal.tenancy.scope import project_scope

from . import cache, codes
from .bulk import insert_order_files_from_query
from .models import (ERROR_FILE_STATES, FINAL_FILE_STATES, DatasetTask, FileState, Order, OrderDataFile,
                     OrderStatus, SubOrder, SubOrderState)
from .transitions import Action, FINISHED_STATUSES, finished_status, order_lock, order_transition

log = logging.getLogger(__name__)

LABEL_MAX_LENGTH = 50
STAGING_BATCH = 500
IN_FLIGHT = (SubOrderState.STAGING, SubOrderState.STAGED)


def _setting(name: str, default):
    return getattr(settings, name, default)


def _on_commit_task(task_name: str, *args) -> None:
    """Enqueue a task of orders.tasks once the current transaction commits."""
    def send():
        from . import tasks

        getattr(tasks, task_name).delay(*args)

    transaction.on_commit(send)


# --- creation -------------------------------------------------------------------------

def _generated_label(*, project: Project, owner) -> str:
    base = timezone.now().strftime("Order of %Y/%m/%d at %H:%M:%S")
    label, n = base, 1
    # Two orders in the same second: keep labels unique per owner.
    while Order.objects.filter(project=project, owner=owner, label=label).exists():
        n += 1
        label = f"{base} ({n})"
    return label


def _validated_label(*, project: Project, owner, label: str | None) -> str:
    label = (label or "").strip()
    if not label:
        return _generated_label(project=project, owner=owner)
    if len(label) > LABEL_MAX_LENGTH:
        raise ApiError(http.HTTP_422_UNPROCESSABLE_ENTITY, codes.TOO_MANY_CHARACTERS_IN_LABEL)
    # DELETED orders keep their label reserved (the row stays).
    if Order.objects.filter(project=project, owner=owner, label=label).exists():
        raise ApiError(http.HTTP_422_UNPROCESSABLE_ENTITY, codes.LABEL_NOT_UNIQUE_FOR_OWNER)
    return label


def _order_insert(*, project: Project, owner, label: str | None, frontend_url: str, selection: list,
                  idempotency_key: str = "") -> Order:
    label = _validated_label(project=project, owner=owner, label=label)
    now = timezone.now()
    try:
        with transaction.atomic():
            order = Order.objects.create(
                project=project, owner=owner, label=label, creation_date=now, status_date=now,
                expiration_date=now + timedelta(days=project.order_lifetime_days),
                frontend_url=frontend_url or "", selection=selection, idempotency_key=idempotency_key or "",
            )
    except IntegrityError as exc:  # a concurrent request took the label
        raise ApiError(http.HTTP_422_UNPROCESSABLE_ENTITY, codes.LABEL_NOT_UNIQUE_FOR_OWNER) from exc
    _on_commit_task("order_build_task", project.pk, order.pk)
    return order


@transaction.atomic
def order_create(*, project: Project, owner, label: str | None = None, frontend_url: str = "",
                 idempotency_key: str = "") -> Order | None:
    """Creates a PENDING order from the owner's basket and empties the basket.

    Returns None when the owner has no basket. The files are resolved by a background
    build (orders.tasks.order_build_task) enqueued on commit. With an idempotency key
    already used by this owner, returns that first order unchanged.
    """
    from basket.selectors import basket_for_owner
    from basket.services import basket_empty, basket_snapshot

    if idempotency_key:
        existing = Order.objects.filter(project=project, owner=owner, idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    basket = basket_for_owner(project=project, owner=owner)
    if basket is None:
        return None
    selection = basket_snapshot(basket=basket)
    order = _order_insert(project=project, owner=owner, label=label, frontend_url=frontend_url,
                          selection=selection, idempotency_key=idempotency_key)
    basket_empty(basket=basket)
    return order


@transaction.atomic
def order_restart(*, project: Project, order_id: int, label: str | None = None, frontend_url: str = "") -> Order:
    """A new order of the same owner with the same frozen selection (the old one is unchanged)."""
    order = order_transition(project=project, order_id=order_id, action=Action.RESTART)
    return _order_insert(project=project, owner=order.owner, label=label,
                         frontend_url=frontend_url or order.frontend_url, selection=order.selection)


# --- build (background) -----------------------------------------------------------------

def _entry_value(entry: dict, *names, default=None):
    for name in names:
        if entry.get(name) not in (None, ""):
            return entry[name]
    return default


class BuildRaced(RuntimeError):
    """The catalog changed while an order was being built (the build is rolled back)."""


def dataset_task_build(*, project: Project, order: Order, dataset: Dataset | None, dataset_ip_id: str,
                       dataset_label: str, files, objects_count: int | None = None,
                       selection: dict | None = None) -> DatasetTask:
    """Makes one dataset task, its sub-orders and its files from a DataFile queryset.

    Splits greedily in (data object, file) order: a new sub-order starts when the current
    one would exceed the project's max files or max bytes. Only the sizes come to Python;
    the rows are copied inside the database (one INSERT ... SELECT, no per-file query).
    """
    task = DatasetTask.objects.create(project=project, order=order, dataset=dataset, dataset_label=dataset_label,
                                      dataset_ip_id=dataset_ip_id, selection=selection or {})
    max_files, max_bytes = project.suborder_max_files, project.suborder_max_bytes
    chunks: list[list[int]] = []  # [files, bytes] per sub-order
    count = size_in_chunk = 0
    for size in files.order_by("data_object_id", "id").values_list("size", flat=True).iterator(chunk_size=20_000):
        if not chunks or count >= max_files or (count and size_in_chunk + size > max_bytes):
            chunks.append([0, 0])
            count = size_in_chunk = 0
        count += 1
        size_in_chunk += size
        chunks[-1][0], chunks[-1][1] = count, size_in_chunk
    sub_orders = SubOrder.objects.bulk_create([
        SubOrder(project=project, order=order, dataset_task=task, owner_id=order.owner_id, files_count=n,
                 files_size=b, pending_count=n) for n, b in chunks])
    ranges, first = [], 1
    for sub_order, (n, _) in zip(sub_orders, chunks):
        ranges.append((first, first + n - 1, sub_order.pk))
        first += n
    total_files, total_size = sum(n for n, _ in chunks), sum(b for _, b in chunks)
    inserted = insert_order_files_from_query(project_id=project.pk, order_id=order.pk, files=files, ranges=ranges,
                                             state=FileState.PENDING, now=timezone.now())
    if inserted != total_files:  # the catalog changed between the two reads: build again
        raise BuildRaced(f"expected {total_files} files, copied {inserted}")
    if objects_count is None:
        objects_count = files.order_by().values("data_object_id").distinct().count()
    DatasetTask.objects.filter(pk=task.pk).update(objects_count=objects_count, files_count=total_files,
                                                  files_size=total_size)
    return task


def _build_from_selection(*, project: Project, order: Order) -> None:
    from basket.selectors import snapshot_dataset_files, snapshot_dataset_objects_count

    for entry in order.selection or []:
        dataset_id = _entry_value(entry, "datasetId", "dataset_id", "dataset")
        dataset = Dataset.objects.filter(project=project, pk=dataset_id).first() if isinstance(dataset_id, int) \
            else None
        ip_id = _entry_value(entry, "datasetIpid", "datasetIpId", "dataset_ip_id", "ipId",
                             default=dataset.ip_id if dataset else "")
        label = _entry_value(entry, "datasetLabel", "dataset_label", "label",
                             default=dataset.label if dataset else ip_id)
        if dataset is None and ip_id:
            dataset = Dataset.objects.filter(project=project, ip_id=ip_id).first()
        files = snapshot_dataset_files(project=project, dataset_entry=entry)
        objects_count = snapshot_dataset_objects_count(project=project, dataset_entry=entry)
        dataset_task_build(project=project, order=order, dataset=dataset, dataset_ip_id=ip_id or str(dataset_id),
                           dataset_label=label or "", files=files, objects_count=objects_count, selection=entry)


def order_build(*, project: Project, order_id: int, resolver=None) -> bool:
    """Resolves the order's frozen selection into files and sub-orders, then starts it.

    One transaction: a worker killed mid-way leaves nothing behind and the redelivered task
    builds again. Idempotent: a built order is left alone; a concurrent duplicate run fails
    on the dataset task's unique constraint and gives up. Returns whether it built.
    `resolver(project=, order=)` replaces the basket resolution (tests, bench).
    """
    order = Order.objects.filter(project=project, id=order_id).first()
    if order is None or order.built_at is not None:
        return False
    try:
        with transaction.atomic():
            (resolver or _build_from_selection)(project=project, order=order)
            order_build_finish(project=project, order_id=order_id)
    except IntegrityError:
        if Order.objects.filter(project=project, id=order_id, built_at__isnull=False).exists():
            return False
        raise
    except Order.DoesNotExist:  # removed while building
        return False
    return True


@transaction.atomic
def order_build_finish(*, project: Project, order_id: int) -> Order:
    """Totals, built_at, PENDING -> RUNNING (a paused order stays paused), sub-orders scheduled."""
    order = order_lock(project=project, order_id=order_id)
    if order.built_at is not None:
        return order
    totals = DatasetTask.objects.filter(project=project, order_id=order_id).aggregate(
        files=Sum("files_count"), size=Sum("files_size"))
    order.built_at = timezone.now()
    order.files_count, order.files_size = totals["files"] or 0, totals["size"] or 0
    if order.files_count == 0:
        order.message = codes.EMPTY_BASKET_MESSAGE
    Order.objects.filter(pk=order.pk).update(built_at=order.built_at, files_count=order.files_count,
                                             files_size=order.files_size, message=order.message)
    order_transition(project=project, order_id=order_id, action=Action.START, refuse=False)
    # Sub-orders were made with their counters (all files pending): nothing to recount.
    order = order_progress_refresh(project=project, order_id=order_id, sub_order_ids=())
    suborders_schedule(project=project, owner_id=order.owner_id)
    _on_commit_task("order_mail_task", project.pk, order.pk, "created")
    return order


# --- progress ---------------------------------------------------------------------------

def _suborders_recount(*, project: Project, order_id: int, sub_order_ids=None) -> None:
    """Recounts the file states of some sub-orders (all of the order's when None)."""
    if sub_order_ids is None:
        files = OrderDataFile.objects.filter(project=project, order_id=order_id)
    else:
        sub_order_ids = list(sub_order_ids)
        if not sub_order_ids:
            return
        # By sub-order only: the (sub_order, state) index, never a scan of the whole order.
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
    if any(getattr(order, k) != v for k, v in changes.items()):
        Order.objects.filter(pk=order.pk).update(**changes)
        for key, value in changes.items():
            setattr(order, key, value)
    if order.built_at is not None and pending == 0 and order.status in (OrderStatus.RUNNING, *FINISHED_STATUSES):
        target = finished_status(files_count=agg["total"], error_count=agg["errors"])
        was_running = order.status == OrderStatus.RUNNING
        if target != order.status:
            order = order_transition(project=project, order_id=order_id, action=Action.FINISH, target=target)
        if was_running:
            _on_commit_task("order_mail_task", project.pk, order.pk, "ready")
    return order


# --- scheduling -------------------------------------------------------------------------

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
                _on_commit_task("suborder_stage_task", project.pk, sub_id)
    in_flight += len(started)
    blocked = in_flight >= limit and mine.filter(state=SubOrderState.STAGED).exists()
    waiting_orders = set(
        mine.filter(state=SubOrderState.WAITING, order__status=OrderStatus.RUNNING)
        .values_list("order_id", flat=True).distinct()) if blocked else set()
    orders = Order.objects.filter(project=project, owner_id=owner_id)
    orders.filter(waiting_for_user=True).exclude(id__in=waiting_orders).update(waiting_for_user=False)
    if waiting_orders:
        orders.filter(id__in=waiting_orders, waiting_for_user=False).update(waiting_for_user=True)
    return started


# --- staging ----------------------------------------------------------------------------

class _ClaimLost(Exception):
    pass


def _staging_stale_after() -> timedelta:
    return timedelta(seconds=_setting("ORDER_STAGING_STALE_SECONDS", 300))


def _heartbeat(sub_order_id: int, claim):
    """Extends our claim; raises _ClaimLost if another worker took the sub-order over."""
    now = timezone.now()
    if not SubOrder.objects.filter(id=sub_order_id, state=SubOrderState.STAGING, claimed_at=claim).update(
            claimed_at=now):
        raise _ClaimLost()
    return now


@transaction.atomic
def _suborder_release_if_stopped(*, project: Project, sub_order: SubOrder) -> str | None:
    """Under the order lock: if the order no longer runs, the sub-order goes back to WAITING.

    Checking under the lock means a resume either sees the sub-order WAITING (and starts it)
    or we see the order RUNNING again (and carry on): it is never left behind. Returns None
    (carry on), "stopped" or "staged" (nothing was left to stage).
    """
    try:
        order = order_lock(project=project, order_id=sub_order.order_id)
    except Order.DoesNotExist:
        return "removed"
    if order.status == OrderStatus.RUNNING:
        return None
    outcome = "stopped"
    files = OrderDataFile.objects.filter(project=project, sub_order_id=sub_order.pk)
    if not files.filter(state=FileState.PENDING).exists():
        # Nothing left to stage (the order may even have finished on our last batch): done.
        state = SubOrderState.STAGED if files.filter(state=FileState.AVAILABLE).exists() else SubOrderState.DONE
        SubOrder.objects.filter(id=sub_order.pk, state=SubOrderState.STAGING).update(
            state=state, ended_at=timezone.now(), claimed_at=None)
        outcome = "staged"
    else:
        SubOrder.objects.filter(id=sub_order.pk, state=SubOrderState.STAGING).update(
            state=SubOrderState.WAITING, claimed_at=None, started_at=None)
    order_progress_refresh(project=project, order_id=order.pk, sub_order_ids=[sub_order.pk])
    suborders_schedule(project=project, owner_id=order.owner_id)
    return outcome


@transaction.atomic
def _suborder_finish(*, project: Project, sub_order: SubOrder) -> bool:
    """STAGING -> STAGED (files to download) or DONE (none available); returns False if
    files are pending again (keep staging)."""
    try:
        order = order_lock(project=project, order_id=sub_order.order_id)
    except Order.DoesNotExist:
        return True
    files = OrderDataFile.objects.filter(project=project, sub_order_id=sub_order.pk)
    if files.filter(state=FileState.PENDING).exists():
        return False
    state = SubOrderState.STAGED if files.filter(state=FileState.AVAILABLE).exists() else SubOrderState.DONE
    SubOrder.objects.filter(id=sub_order.pk, state=SubOrderState.STAGING).update(
        state=state, ended_at=timezone.now(), claimed_at=None)
    order_progress_refresh(project=project, order_id=order.pk, sub_order_ids=[sub_order.pk])
    suborders_schedule(project=project, owner_id=order.owner_id)
    return True


def _restore_one(*, project: Project, order_file: OrderDataFile) -> None:
    """Restores one NEARLINE file into the order cache; the file ends AVAILABLE or ERROR."""
    from portal.catalog.storage import RestoreFailed, restore_nearline

    files = OrderDataFile.objects.filter(project=project, id=order_file.pk, state=FileState.PENDING)
    if order_file.data_file is None:
        files.update(state=FileState.ERROR, error_reason="The file is no longer in the catalog.",
                     state_date=timezone.now())
        return
    relpath = cache.order_file_cache_relpath(project_slug=project.slug, order_id=order_file.order_id,
                                             order_file_id=order_file.pk, filename=order_file.filename)
    target = Path(settings.ORDER_CACHE_DIR) / relpath
    try:
        # Writes to a temporary name and renames: the cache only holds whole, verified files.
        restore_nearline(order_file.data_file, target)
    except (RestoreFailed, OSError) as exc:
        files.update(state=FileState.ERROR, error_reason=str(exc) or exc.__class__.__name__,
                     state_date=timezone.now())
        return
    changed = files.update(state=FileState.AVAILABLE, cache_path=relpath, state_date=timezone.now())
    status = Order.objects.filter(project=project, id=order_file.order_id).values_list("status", flat=True).first()
    if not changed or status in (None, OrderStatus.DELETED, OrderStatus.EXPIRED):
        target.unlink(missing_ok=True)  # freed (or taken) while we restored


def suborder_stage(*, project: Project, sub_order_id: int) -> str:
    """Stages a STAGING sub-order: ONLINE files become AVAILABLE, NEARLINE files are restored.

    Claimed with a compare-and-set on `claimed_at` (a stale claim may be taken over), so a
    redelivered or re-dispatched task never stages alongside a live one. Every file change
    is a conditional update from PENDING, so each file ends in exactly one state. Stops
    (after the current file) when the order no longer runs. Returns what happened.
    """
    now = timezone.now()
    claimable = Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - _staging_stale_after())
    if not SubOrder.objects.filter(Q(id=sub_order_id, state=SubOrderState.STAGING) & claimable).update(
            claimed_at=now):
        return "not-claimed"
    claim = now
    sub_order = SubOrder.objects.get(id=sub_order_id)
    files = OrderDataFile.objects.filter(project=project, sub_order_id=sub_order_id)
    last_refresh = time.monotonic()
    try:
        while True:
            status = Order.objects.filter(project=project, id=sub_order.order_id).values_list(
                "status", flat=True).first()
            if status != OrderStatus.RUNNING:
                outcome = _suborder_release_if_stopped(project=project, sub_order=sub_order)
                if outcome is not None:
                    return outcome
            # ONLINE files need no I/O: one statement makes all of them AVAILABLE.
            files.filter(state=FileState.PENDING, tier=StorageTier.ONLINE).update(
                state=FileState.AVAILABLE, state_date=timezone.now())
            nearline = list(files.filter(state=FileState.PENDING).order_by("id")
                            .values_list("id", flat=True)[:STAGING_BATCH])
            if not nearline:
                if _suborder_finish(project=project, sub_order=sub_order):
                    return "staged"
                continue
            for index, file_id in enumerate(nearline):
                if index:  # pausing stops us after the current file
                    status = Order.objects.filter(project=project, id=sub_order.order_id).values_list(
                        "status", flat=True).first()
                    if status != OrderStatus.RUNNING:
                        break
                order_file = files.select_related("data_file").filter(id=file_id, state=FileState.PENDING).first()
                if order_file is not None:
                    _restore_one(project=project, order_file=order_file)
                claim = _heartbeat(sub_order_id, claim)
                # Restores are slow: show progress while the batch is still going.
                if time.monotonic() - last_refresh > 2:
                    order_progress_refresh(project=project, order_id=sub_order.order_id,
                                           sub_order_ids=[sub_order_id])
                    last_refresh = time.monotonic()
            claim = _heartbeat(sub_order_id, claim)
    except _ClaimLost:
        return "claim-lost"
    except Order.DoesNotExist:
        return "removed"
    except Exception:
        # Give the claim back so the retried task (or the next delivery) can take it at once.
        SubOrder.objects.filter(id=sub_order_id, state=SubOrderState.STAGING, claimed_at=claim).update(
            claimed_at=None)
        raise


# --- downloads (called by orders.downloads) --------------------------------------------

def _after_downloads(*, project: Project, order: Order, sub_order_ids: set[int]) -> None:
    still_available = OrderDataFile.objects.filter(sub_order_id=OuterRef("pk"), state=FileState.AVAILABLE)
    SubOrder.objects.filter(project=project, order_id=order.pk, state=SubOrderState.STAGED,
                            id__in=sub_order_ids).exclude(Exists(still_available)).update(
        state=SubOrderState.DONE, ended_at=timezone.now())
    order_progress_refresh(project=project, order_id=order.pk, sub_order_ids=sub_order_ids)
    suborders_schedule(project=project, owner_id=order.owner_id)


@transaction.atomic
def order_files_mark_downloaded(*, project: Project, order: Order, file_ids: Iterable[int]) -> int:
    """Files fully sent become DOWNLOADED; sub-orders with nothing left to fetch are DONE and
    the owner's next sub-orders start. Returns how many files changed."""
    locked = order_lock(project=project, order_id=order.pk)
    files = OrderDataFile.objects.filter(project=project, order_id=locked.pk, id__in=list(file_ids),
                                         state__in=(FileState.AVAILABLE, FileState.DOWNLOAD_ERROR))
    sub_order_ids = set(files.values_list("sub_order_id", flat=True).distinct())
    changed = files.update(state=FileState.DOWNLOADED, error_reason="", state_date=timezone.now())
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
        files = OrderDataFile.objects.filter(project=project, order_id=locked.pk, id__in=ids,
                                             state=FileState.AVAILABLE)
        sub_order_ids.update(files.values_list("sub_order_id", flat=True).distinct())
        changed += files.update(state=FileState.DOWNLOAD_ERROR, error_reason=reason, state_date=now)
    if changed:
        _after_downloads(project=project, order=locked, sub_order_ids=sub_order_ids)
    return changed


# --- lifecycle --------------------------------------------------------------------------

def _free_order(*, project: Project, order: Order) -> None:
    """Releases the order's sub-order slots and (after commit) its cached files."""
    SubOrder.objects.filter(project=project, order_id=order.pk).exclude(state=SubOrderState.DONE).update(
        state=SubOrderState.DONE, ended_at=timezone.now(), claimed_at=None)
    slug, order_id = project.slug, order.pk
    transaction.on_commit(lambda: cache.order_cache_free(project_slug=slug, order_id=order_id))
    suborders_schedule(project=project, owner_id=order.owner_id)


@transaction.atomic
def order_pause(*, project: Project, order_id: int) -> Order:
    """PENDING/RUNNING -> PAUSED; staging workers stop after their current file."""
    return order_transition(project=project, order_id=order_id, action=Action.PAUSE)


@transaction.atomic
def order_resume(*, project: Project, order_id: int) -> Order:
    """PAUSED -> RUNNING (or PENDING if its build has not finished) and staging goes on."""
    order = order_lock(project=project, order_id=order_id)
    target = OrderStatus.RUNNING if order.built_at else OrderStatus.PENDING
    order = order_transition(project=project, order_id=order_id, action=Action.RESUME, target=target)
    if order.built_at is None:
        _on_commit_task("order_build_task", project.pk, order.pk)
        return order
    order = order_progress_refresh(project=project, order_id=order_id)
    suborders_schedule(project=project, owner_id=order.owner_id)
    return order


@transaction.atomic
def order_delete(*, project: Project, order_id: int) -> Order:
    """-> DELETED: the row stays (its label stays taken), staged files are freed."""
    order = order_transition(project=project, order_id=order_id, action=Action.DELETE)
    _free_order(project=project, order=order)
    return order


@transaction.atomic
def order_remove(*, project: Project, order_id: int) -> None:
    """Deletes the order, its files and its cache (not while RUNNING; PENDING is paused first)."""
    order = order_lock(project=project, order_id=order_id)
    if order.status == OrderStatus.PENDING:
        order = order_transition(project=project, order_id=order_id, action=Action.PAUSE)
    order = order_transition(project=project, order_id=order_id, action=Action.REMOVE)
    owner_id = order.owner_id
    OrderDataFile.objects.filter(project=project, order_id=order.pk).delete()  # one DELETE: no cascades
    SubOrder.objects.filter(project=project, order_id=order.pk).delete()
    DatasetTask.objects.filter(project=project, order_id=order.pk).delete()
    slug = project.slug
    transaction.on_commit(lambda: cache.order_cache_free(project_slug=slug, order_id=order_id))
    Order.objects.filter(project=project, pk=order.pk).delete()
    suborders_schedule(project=project, owner_id=owner_id)


@transaction.atomic
def order_retry(*, project: Project, order_id: int) -> Order:
    """DONE_WITH_WARNING/FAILED -> RUNNING: files in ERROR or DOWNLOAD_ERROR are staged again."""
    order = order_transition(project=project, order_id=order_id, action=Action.RETRY)
    retried = OrderDataFile.objects.filter(project=project, order_id=order.pk,
                                           state__in=(FileState.ERROR, FileState.DOWNLOAD_ERROR))
    sub_ids = set(retried.values_list("sub_order_id", flat=True).distinct())
    retried.update(state=FileState.PENDING, error_reason="", cache_path="", state_date=timezone.now())
    SubOrder.objects.filter(project=project, id__in=sub_ids).exclude(state=SubOrderState.STAGING).update(
        state=SubOrderState.WAITING, ended_at=None, started_at=None, claimed_at=None)
    Order.objects.filter(pk=order.pk).update(ready_mail_at=None)
    order = order_progress_refresh(project=project, order_id=order_id, sub_order_ids=sub_ids)
    suborders_schedule(project=project, owner_id=order.owner_id)
    return order


@transaction.atomic
def order_expire(*, project: Project, order_id: int) -> Order | None:
    """-> EXPIRED and staged files freed; None if already expired/deleted (harmless twice)."""
    order = order_transition(project=project, order_id=order_id, action=Action.EXPIRE, refuse=False)
    if order is None:
        return None
    _free_order(project=project, order=order)
    return order


# --- sweeps (beat) ----------------------------------------------------------------------

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
    stale_after = stale_after or _staging_stale_after()
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
                _on_commit_task("suborder_stage_task", project_id, sub_id)
                dispatched += 1
    unbuilt = Order.unscoped_objects.filter(status=OrderStatus.PENDING, built_at__isnull=True,
                                            creation_date__lt=cutoff).values_list("project_id", "id")[:batch_size]
    for project_id, order_id in unbuilt:
        from . import tasks

        tasks.order_build_task.delay(project_id, order_id)
        dispatched += 1
    return dispatched


# --- mail -------------------------------------------------------------------------------

def order_notify(*, project: Project, order_id: int, kind: str) -> bool:
    """Sends the `created` or `ready` mail once (claimed with a compare-and-set)."""
    from . import mails

    field = {"created": "created_mail_at", "ready": "ready_mail_at"}[kind]
    # The order may have moved on before the mail task ran: never announce a deleted or
    # expired order, nor a "ready" one that is not finished any more.
    statuses = FINISHED_STATUSES if kind == "ready" else set(OrderStatus) - {OrderStatus.DELETED, OrderStatus.EXPIRED}
    if not Order.objects.filter(project=project, id=order_id, status__in=statuses,
                                **{f"{field}__isnull": True}).update(**{field: timezone.now()}):
        return False
    order = Order.objects.select_related("owner", "project").get(project=project, id=order_id)
    mails.send_order_mail(order, kind)
    return True


def orders_remind_sweep(*, now=None, waited: timedelta = timedelta(hours=72), batch_size: int = 500) -> int:
    """On weekdays, reminds owners of orders whose available files have waited 72 hours
    (at most once a day per order)."""
    from . import mails

    now = now or timezone.now()
    if now.weekday() >= 5:
        return 0
    old_available = OrderDataFile.unscoped_objects.filter(
        order_id=OuterRef("pk"), state=FileState.AVAILABLE, state_date__lte=now - waited)
    due = (Order.unscoped_objects.filter(available_files_count__gt=0)
           .exclude(status__in=(OrderStatus.EXPIRED, OrderStatus.DELETED, OrderStatus.PENDING))
           .filter(Q(reminded_at__isnull=True) | Q(reminded_at__lt=now - timedelta(hours=20)))
           .filter(Exists(old_available)).select_related("owner", "project").order_by("id")[:batch_size])
    sent = 0
    for order in due:
        if Order.unscoped_objects.filter(id=order.pk, reminded_at=order.reminded_at).update(reminded_at=now):
            mails.send_order_mail(order, "reminder")
            sent += 1
    return sent
