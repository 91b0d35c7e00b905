"""Every write to deliveries: prepare requests, freeing, cache eviction and limits, sweeps.

Status changes go through `transitions.delivery_transition` (conditional updates), so a
worker, a user and a sweep acting at once never leave a delivery in two states; the building
itself is in `preparation`.
"""
from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from portal.catalog import storage
from portal.errors import LimitExceeded, NotFound
from portal.tenancy.models import Project
from portal.tenancy.scope import project_scope

from . import codes, selectors
from .models import ACTIVE_STATUSES, Delivery, DeliveryArtifact, DeliveryRequestKey, DeliveryStatus
from .transitions import Action, delivery_transition

log = logging.getLogger(__name__)

GIB = 1024**3


# --- the cache (the DELIVERY_CACHE area of storage.Locator: local disk or object storage) --------

def delivery_key(*, project_slug: str, delivery_id: int) -> str:
    return f"{project_slug}/{delivery_id}"


def delivery_dir(*, project_slug: str, delivery_id: int) -> Path:
    """Where a delivery's files are when the delivery cache is on local disk."""
    return Path(settings.DELIVERY_CACHE_DIR) / delivery_key(project_slug=project_slug, delivery_id=delivery_id)


def artifact_key(*, project_slug: str, artifact: DeliveryArtifact) -> str:
    """Where an artifact's bytes are in the DELIVERY_CACHE area of `storage.Locator`."""
    return f"{project_slug}/{artifact.delivery_id}/{artifact.path}"


def generation_key(*, project_slug: str, delivery_id: int, generation: int) -> str:
    """Each preparation writes under its own folder, so freeing an old one never touches a new one."""
    return f"{delivery_key(project_slug=project_slug, delivery_id=delivery_id)}/g{generation}"


def _remove_generation_on_commit(project: Project, delivery_id: int, generation: int) -> None:
    key = generation_key(project_slug=project.slug, delivery_id=delivery_id, generation=generation)
    transaction.on_commit(lambda: remove_tree(key))


def remove_tree(key: str) -> None:
    """Frees a generation's files (and, on local disk, the delivery folder once it is empty)."""
    locator = storage.Locator()
    locator.delete(storage.DELIVERY_CACHE, key)
    if locator.is_local(storage.DELIVERY_CACHE):
        try:
            os.rmdir(os.path.dirname(locator.path(storage.DELIVERY_CACHE, key)))
        except OSError:
            pass


def _enqueue(project: Project, delivery: Delivery) -> None:
    from . import tasks

    project_id, delivery_id, generation = project.pk, delivery.pk, delivery.generation
    transaction.on_commit(lambda: tasks.delivery_prepare_task.delay(project_id, delivery_id, generation))


# --- prepare ---------------------------------------------------------------------------------

def _reset_for_preparation(project: Project, delivery: Delivery, *, user, item_type: str) -> Delivery:
    """Back to pending under a new generation (the lock is held): the old files and artifacts go."""
    old_generation = delivery.generation
    DeliveryArtifact.objects.filter(project=project, delivery=delivery).delete()
    delivery_transition(
        project=project, delivery_id=delivery.pk, action=Action.PREPARE_AGAIN,
        generation=F("generation") + 1, progress=0, bytes_prepared=0,
        bytes_to_prepare=0, size=0, expires_at=None, error_code="", error_message="", claim_token="",
        heartbeat_at=None, done_at=None, item_type=item_type, created_by=user, updated_at=timezone.now())
    _remove_generation_on_commit(project, delivery.pk, old_generation)
    delivery.refresh_from_db()
    _enqueue(project, delivery)
    return delivery


@transaction.atomic
def delivery_prepare(*, project: Project, user, target: selectors.Target, item_type: str = "",
                     idempotency_key: str = "", force: bool = False) -> Delivery:
    """Starts preparing the target's package, or returns the delivery as it is when it is already
    prepared or under way. A delivery in `error` or `delete` (or any, with `force`) is prepared
    again. With `idempotency_key`, a repeated request returns the first request's delivery."""
    if idempotency_key:
        known = (DeliveryRequestKey.objects.filter(project=project, user=user, key=idempotency_key)
                 .select_related("delivery").first())
        if known is not None:
            return known.delivery
    delivery = Delivery.objects.select_for_update().filter(project=project, catalog_id=target.catalog_id).first()
    if delivery is None:
        try:
            with transaction.atomic():
                delivery = Delivery.objects.create(project=project, catalog_id=target.catalog_id,
                                                   target_kind=target.kind, item_type=item_type, created_by=user)
            _enqueue(project, delivery)
        except IntegrityError:  # someone created it meanwhile: theirs stands
            delivery = Delivery.objects.select_for_update().get(project=project, catalog_id=target.catalog_id)
    elif force or delivery.status in (DeliveryStatus.ERROR, DeliveryStatus.DELETE):
        delivery = _reset_for_preparation(project, delivery, user=user, item_type=item_type)
    if idempotency_key:
        DeliveryRequestKey.objects.get_or_create(project=project, user=user, key=idempotency_key,
                                                 defaults={"delivery": delivery})
    return delivery


# --- freeing ---------------------------------------------------------------------------------

def _free(project: Project, delivery: Delivery, *, action: Action = Action.FREE) -> bool:
    """Status `delete`, artifacts gone, files removed after commit. False when nothing changed."""
    # Clearing the claim makes a worker still at it stop at its next progress report.
    if not delivery_transition(project=project, delivery_id=delivery.pk, action=action, claim_token="", progress=0,
                               bytes_prepared=0, expires_at=None, updated_at=timezone.now()):
        return False
    DeliveryArtifact.objects.filter(project=project, delivery_id=delivery.pk).delete()
    _remove_generation_on_commit(project, delivery.pk, delivery.generation)
    return True


@transaction.atomic
def delivery_delete(*, project: Project, delivery: Delivery) -> Delivery:
    """Frees a delivery (status `delete`); harmless when already freed."""
    _free(project, delivery)
    delivery.refresh_from_db()
    return delivery


@transaction.atomic
def cache_evict(*, project: Project, catalog_id: str | None = None, before: datetime | None = None,
                size: int | None = None) -> list[str]:
    """Frees deliveries by catalog id (any status), done ones prepared before a date, or the
    oldest done ones until `size` bytes are freed. Returns the catalog ids freed."""
    freed: list[str] = []
    if catalog_id is not None:
        delivery = Delivery.objects.filter(project=project, catalog_id=catalog_id).first()
        if delivery is None:
            raise NotFound(codes.NOT_FOUND, f"No delivery for {catalog_id!r}.")
        if _free(project, delivery):
            freed.append(delivery.catalog_id)
        return freed
    candidates = selectors.evictable_deliveries(project=project)
    if before is not None:
        candidates = candidates.filter(done_at__lt=before)
    goal = size
    for delivery in candidates.only("id", "catalog_id", "generation", "bytes_to_prepare").iterator():
        if goal is not None and goal <= 0:
            break
        if _free(project, delivery, action=Action.EVICT):
            freed.append(delivery.catalog_id)
            if goal is not None:
                goal -= delivery.bytes_to_prepare
    return freed


def cache_make_room(*, project: Project, delivery_id: int, needed: int) -> bool:
    """Inside the caller's transaction, with the project row locked: evicts the oldest done
    deliveries until `needed` bytes fit. Evicts nothing and answers False when they never would."""
    capacity = project.delivery_cache_capacity_bytes
    free = capacity - selectors.cache_used_bytes(project=project, exclude_id=delivery_id)
    if needed <= free:
        return True
    victims, gained = [], 0
    for delivery in selectors.evictable_deliveries(project=project).exclude(id=delivery_id).only(
            "id", "catalog_id", "generation", "bytes_to_prepare").iterator():
        victims.append(delivery)
        gained += delivery.bytes_to_prepare
        if needed <= free + gained:
            break
    if needed > free + gained:
        return False
    for delivery in victims:
        _free(project, delivery, action=Action.EVICT)
    log.info("delivery cache of %s: evicted %s to make room", project.slug, [d.catalog_id for d in victims])
    return True


@transaction.atomic
def cache_config_update(*, project: Project, max_capacity_bytes: int) -> Project:
    """Sets the project's delivery cache limit; a limit below what is held now is refused."""
    locked = Project.objects.select_for_update().get(pk=project.pk)
    used = selectors.cache_used_bytes(project=locked)
    if max_capacity_bytes < used:
        raise LimitExceeded(codes.INVALID,
                            f"maxCapacityInGB {max_capacity_bytes / GIB:.3f} is below the {used / GIB:.3f} GB "
                            "in use: delete deliveries first (DELETE /api/v1/delivery/cache/delete).",
                            usedBytes=used)
    locked.delivery_cache_capacity_bytes = max_capacity_bytes
    locked.save(update_fields=["delivery_cache_capacity_bytes"])
    project.delivery_cache_capacity_bytes = max_capacity_bytes
    return locked


# --- sweeps (beat) ---------------------------------------------------------------------------

def deliveries_expire_sweep(*, batch_size: int = 200, max_batches: int = 50) -> int:
    """Done deliveries past `expires_at` become `delete`, in bounded batches; returns how many."""
    expired = 0
    for _ in range(max_batches):
        due = list(Delivery.unscoped_objects.filter(status=DeliveryStatus.DONE, expires_at__lte=timezone.now())
                   .select_related("project").order_by("expires_at", "id")[:batch_size])
        if not due:
            break
        for delivery in due:
            with project_scope(delivery.project), transaction.atomic():
                expired += _free(delivery.project, delivery, action=Action.EVICT)
    return expired


def deliveries_stuck_sweep(*, stale_after: timedelta | None = None, batch_size: int = 200) -> int:
    """Dispatches again deliveries whose worker stopped reporting (or that no worker took)."""
    stale_after = stale_after or timedelta(seconds=getattr(settings, "DELIVERY_STALE_SECONDS", 600))
    cutoff = timezone.now() - stale_after
    stuck = list(Delivery.unscoped_objects.filter(status__in=ACTIVE_STATUSES).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, updated_at__lt=cutoff))
        .select_related("project")[:batch_size])
    dispatched = 0
    for delivery in stuck:
        with project_scope(delivery.project), transaction.atomic():
            # Compare-and-set on the old heartbeat: a worker that reported meanwhile keeps it.
            if Delivery.objects.filter(id=delivery.pk, generation=delivery.generation, status__in=ACTIVE_STATUSES,
                                       heartbeat_at=delivery.heartbeat_at).update(heartbeat_at=timezone.now()):
                _enqueue(delivery.project, delivery)
                dispatched += 1
    return dispatched
