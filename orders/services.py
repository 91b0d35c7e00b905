"""Writes of an order's life as people ask for it: creation (from the basket), pause, resume,
delete, remove, retry, restart, expiry.

The other jobs have their own rooms: `build` (resolving the files in the background),
`progress` (counters, finishing, download bookkeeping), `scheduling` (per-user sub-order
slots), `staging` (the worker loop), `sweeps` (beat jobs), `mails`.

Locking rule (see transitions.order_lock): the owner row, then the order row, then
sub-order and file rows. Status changes only go through transitions.order_transition.
"""
from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from portal.errors import Invalid
from portal.tenancy.models import Project

from . import cache, codes, dispatch
from .history import order_event_record
from .models import (DatasetTask, FileState, Order, OrderDataFile, OrderEventKind, OrderStatus, SubOrder,
                     SubOrderState)
from .progress import order_progress_refresh
from .scheduling import suborders_schedule
from .transitions import Action, order_lock, order_transition

LABEL_MAX_LENGTH = 50


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
        raise Invalid(codes.TOO_MANY_CHARACTERS_IN_LABEL)
    # DELETED orders keep their label reserved (the row stays).
    if Order.objects.filter(project=project, owner=owner, label=label).exists():
        raise Invalid(codes.LABEL_NOT_UNIQUE_FOR_OWNER)
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
        raise Invalid(codes.LABEL_NOT_UNIQUE_FOR_OWNER) from exc
    order_event_record(project=project, order_id=order.pk, owner_id=owner.pk, kind=OrderEventKind.CREATED,
                       to_status=order.status)
    dispatch.task_on_commit("order_build_task", project.pk, order.pk)
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
        dispatch.task_on_commit("order_build_task", project.pk, order.pk)
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
