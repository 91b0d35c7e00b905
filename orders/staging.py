"""The staging worker loop: a claimed STAGING sub-order's ONLINE files made AVAILABLE at once,
its NEARLINE files restored into the order cache one by one, stopping when the order stops."""
from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from portal.catalog.models import StorageTier
from portal.tenancy.models import Project

from . import cache
from .models import FileState, Order, OrderDataFile, OrderStatus, SubOrder, SubOrderState
from .progress import order_progress_refresh
from .scheduling import suborders_schedule
from .transitions import order_lock

STAGING_BATCH = 500


class _ClaimLost(Exception):
    pass


def staging_stale_after() -> timedelta:
    """A claim older than this belongs to a worker that died (ORDER_STAGING_STALE_SECONDS)."""
    return timedelta(seconds=getattr(settings, "ORDER_STAGING_STALE_SECONDS", 300))


def _file_states(files) -> set[str]:
    """The states among a sub-order's files: one aggregate over its rows, found by the
    (sub_order, position) index (at most the project's suborder_max_files). Not `.exists()` per state: with statistics taken while a big order was all
    PENDING, a LIMIT 1 probe was planned as a scan of the whole table that finds nothing."""
    return set(files.order_by().values_list("state", flat=True).distinct())


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
    states = _file_states(OrderDataFile.objects.filter(project=project, sub_order_id=sub_order.pk))
    if FileState.PENDING not in states:
        # Nothing left to stage (the order may even have finished on our last batch): done.
        state = SubOrderState.STAGED if FileState.AVAILABLE in states else SubOrderState.DONE
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
    # Recounted under the order lock, then read back: one read of the sub-order's files, not
    # a look at their states and then a recount.
    order = order_progress_refresh(project=project, order_id=order.pk, sub_order_ids=[sub_order.pk])
    pending, available = SubOrder.objects.filter(id=sub_order.pk).values_list(
        "pending_count", "available_count").get()
    if pending:
        return False
    state = SubOrderState.STAGED if available else SubOrderState.DONE
    SubOrder.objects.filter(id=sub_order.pk, state=SubOrderState.STAGING).update(
        state=state, ended_at=timezone.now(), claimed_at=None)
    suborders_schedule(project=project, owner_id=order.owner_id)
    return True


def _restore_one(*, project: Project, order_file: OrderDataFile) -> None:
    """Restores one NEARLINE file into the order cache; the file ends AVAILABLE or ERROR."""
    from portal.catalog.storage import ORDER_CACHE, Locator, RestoreFailed, restore_nearline

    files = OrderDataFile.objects.filter(project=project, id=order_file.pk, state=FileState.PENDING)
    if order_file.data_file is None:
        files.update(state=FileState.ERROR, error_reason="The file is no longer in the catalog.",
                     state_date=timezone.now())
        return
    relpath = cache.order_file_cache_relpath(project_slug=project.slug, order_id=order_file.order_id,
                                             order_file_id=order_file.pk, filename=order_file.filename)
    try:
        # Written whole and verified, or not at all: the cache only holds whole, verified files.
        restore_nearline(order_file.data_file, area=ORDER_CACHE, key=relpath)
    except (RestoreFailed, OSError) as exc:
        files.update(state=FileState.ERROR, error_reason=str(exc) or exc.__class__.__name__,
                     state_date=timezone.now())
        return
    changed = files.update(state=FileState.AVAILABLE, cache_path=relpath, state_date=timezone.now())
    status = Order.objects.filter(project=project, id=order_file.order_id).values_list("status", flat=True).first()
    if status in (None, OrderStatus.DELETED, OrderStatus.EXPIRED):
        Locator().delete(ORDER_CACHE, relpath)  # freed while we restored
    elif not changed and not OrderDataFile.objects.filter(project=project, id=order_file.pk,
                                                          state=FileState.AVAILABLE, cache_path=relpath).exists():
        # Taken meanwhile; another worker restoring the same file wrote these same bytes: keep them then.
        Locator().delete(ORDER_CACHE, relpath)


def suborder_stage(*, project: Project, sub_order_id: int) -> str:
    """Stages a STAGING sub-order: ONLINE files become AVAILABLE, NEARLINE files are restored.

    Claimed with a compare-and-set on `claimed_at` (a stale claim may be taken over), so a
    redelivered or re-dispatched task never stages alongside a live one. Every file change
    is a conditional update from PENDING, so each file ends in exactly one state. Stops
    (after the current file) when the order no longer runs. Returns what happened.
    """
    now = timezone.now()
    claimable = Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - staging_stale_after())
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
            # In id order (positions follow ids within an order; NULL for files built before
            # positions, where id decides). Not ORDER BY id: with statistics saying the order is
            # all PENDING, PostgreSQL walked the primary key of the whole table for the LIMIT.
            nearline = list(files.filter(state=FileState.PENDING).order_by("position", "id")
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
