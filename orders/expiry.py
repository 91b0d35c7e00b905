"""Honest expiry: `extend` moves an order's expiration date, and owners are warned a day
before an order with files they have not downloaded expires (SPEC section 7)."""
from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from portal.errors import Invalid
from portal.tenancy.models import Project
from portal.tenancy.scope import project_scope

from . import codes
from .history import order_event_record
from .models import FileState, Order, OrderDataFile, OrderEventKind, OrderStatus
from .transitions import Action, OrderActionRefused, order_transition

WARN_BEFORE = timedelta(hours=24)
# Files the owner has not fetched yet (still coming, ready, or a download that failed).
NOT_DOWNLOADED_STATES = (FileState.PENDING, FileState.AVAILABLE, FileState.DOWNLOAD_ERROR)


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


@transaction.atomic
def order_extend(*, project: Project, order_id: int, days: int | None = None) -> Order:
    """Moves the expiration date to now + `days` (default: the project's order lifetime).

    Refused (ORDER_MUST_NOT_BE_EXPIRED_OR_DELETED) for an EXPIRED or DELETED order, or one
    already past its date; Invalid (EXTENSION_BEYOND_MAXIMUM_LIFETIME) past creation + the
    project's maximum lifetime. The pre-expiry warning may come again before the new date.
    """
    order = order_transition(project=project, order_id=order_id, action=Action.EXTEND)
    now = timezone.now()
    if order.expiration_date <= now:  # the expiry sweep has not run yet: it is expired all the same
        raise OrderActionRefused(codes.ORDER_MUST_NOT_BE_EXPIRED_OR_DELETED)
    days = project.order_lifetime_days if days is None else days
    new_date = now + timedelta(days=days)
    latest = order.creation_date + timedelta(days=project.order_max_lifetime_days)
    if new_date > latest:
        raise Invalid(codes.EXTENSION_BEYOND_MAXIMUM_LIFETIME,
                      f"An order of this project lives at most {project.order_max_lifetime_days} days: "
                      f"it may be extended until {_utc(latest)}.", latestExpirationDate=latest.isoformat())
    old_date = order.expiration_date
    Order.objects.filter(project=project, pk=order.pk).update(expiration_date=new_date, expiry_warned_at=None)
    order.expiration_date, order.expiry_warned_at = new_date, None
    order_event_record(project=project, order_id=order.pk, owner_id=order.owner_id, kind=OrderEventKind.EXTENDED,
                       reason=f"Expiration moved from {_utc(old_date)} to {_utc(new_date)}.")
    return order


def orders_expiring_sweep(*, now: datetime | None = None, batch_size: int = 200) -> int:
    """Warns once (a mail and an `order.expiring` event) about each order that expires within
    24 hours and still has files not downloaded. Idempotent: the warning is claimed with a
    compare-and-set on the order's expiry date, so a concurrent `extend` or a second run
    sends nothing more. Returns how many orders were warned."""
    from . import mails

    now = now or timezone.now()
    not_downloaded = OrderDataFile.unscoped_objects.filter(order_id=OuterRef("pk"), state__in=NOT_DOWNLOADED_STATES)
    due = list(Order.unscoped_objects.filter(expiry_warned_at__isnull=True, expiration_date__gt=now,
                                             expiration_date__lte=now + WARN_BEFORE)
               .exclude(status__in=(OrderStatus.EXPIRED, OrderStatus.DELETED))
               .filter(Exists(not_downloaded)).select_related("project", "owner")
               .order_by("expiration_date", "id")[:batch_size])
    warned = 0
    for order in due:
        with project_scope(order.project), transaction.atomic():
            if not Order.objects.filter(pk=order.pk, expiry_warned_at__isnull=True,
                                        expiration_date=order.expiration_date).update(expiry_warned_at=now):
                continue
            order_event_record(project=order.project, order_id=order.pk, owner_id=order.owner_id,
                               kind=OrderEventKind.EXPIRING,
                               reason=f"Expires at {_utc(order.expiration_date)}.")
            transaction.on_commit(lambda order=order: mails.send_order_mail(order, "expiring"), robust=True)
            warned += 1
    return warned
