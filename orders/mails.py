"""Mails to order owners (Django email backend): created (with the public metalink link),
ready, and the weekday reminder for files waiting to be downloaded."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from portal.tenancy.models import Project

from .models import FINISHED_STATUSES, FileState, Order, OrderDataFile, OrderStatus
from .transitions import ALLOWED_FROM, Action
from .tokens import order_token_for


def public_metalink_url(order: Order) -> str:
    query = urlencode({"orderToken": order_token_for(order), "scope": order.project.slug})
    return f"{settings.PORTAL_BASE_URL}/api/v1/rs-order/user/orders/metalink/download?{query}"


def _expiry(order: Order) -> str:
    return order.expiration_date.strftime("%Y-%m-%d %H:%M UTC")


def order_page_url(order: Order) -> str:
    return f"{settings.PORTAL_BASE_URL}/projects/{order.project.slug}/orders/{order.pk}/"


def extend_instructions(order: Order) -> str:
    """How to keep an order longer (mail and order page)."""
    if order.status not in ALLOWED_FROM[Action.EXTEND]:
        return ""
    api = f"{settings.PORTAL_BASE_URL}/api/v1/rs-order/user/orders/{order.pk}/extend?scope={order.project.slug}"
    return (f"To keep it longer, press \"Extend\" on the order page ({order_page_url(order)}), or call "
            f"PUT {api} with an optional body {{\"days\": n}} (at most "
            f"{order.project.order_max_lifetime_days} days after the order's creation).")


def send_order_mail(order: Order, kind: str) -> None:
    link = public_metalink_url(order)
    if kind == "created":
        subject = f"[{order.project.label}] Order \"{order.label}\" created"
        body = (f"Your order \"{order.label}\" (#{order.pk}) was created and is being prepared.\n\n"
                f"Download every file with a download manager using this metalink (no login needed):\n{link}\n\n"
                f"The order expires on {_expiry(order)}.\n")
    elif kind == "ready":
        subject = f"[{order.project.label}] Order \"{order.label}\" is ready"
        body = (f"Your order \"{order.label}\" (#{order.pk}) is {order.status}: "
                f"{order.available_files_count} file(s) available, {order.files_in_error_count} in error.\n\n"
                f"Metalink: {link}\n\nThe order expires on {_expiry(order)}.\n")
    elif kind == "reminder":
        subject = f"[{order.project.label}] Files of order \"{order.label}\" are waiting for you"
        body = (f"{order.available_files_count} file(s) of your order \"{order.label}\" (#{order.pk}) have been "
                f"available for more than 3 days and are not downloaded yet. Further files of your orders "
                f"wait until these are downloaded.\n\nMetalink: {link}\n\n"
                f"The order expires on {_expiry(order)}.\n")
    elif kind == "expiring":
        subject = f"[{order.project.label}] Order \"{order.label}\" expires in less than a day"
        body = (f"Your order \"{order.label}\" (#{order.pk}) expires on {_expiry(order)} and has files you have "
                f"not downloaded yet. After that date its files are freed and can no longer be downloaded.\n\n"
                f"{extend_instructions(order)}\n\nMetalink: {link}\n")
    else:
        raise ValueError(kind)
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [order.owner.email])


# --- when they go ----------------------------------------------------------------------

def order_notify(*, project: Project, order_id: int, kind: str) -> bool:
    """Sends the `created` or `ready` mail once (claimed with a compare-and-set)."""
    field = {"created": "created_mail_at", "ready": "ready_mail_at"}[kind]
    # The order may have moved on before the mail task ran: never announce a deleted or
    # expired order, nor a "ready" one that is not finished any more.
    statuses = FINISHED_STATUSES if kind == "ready" else set(OrderStatus) - {OrderStatus.DELETED, OrderStatus.EXPIRED}
    if not Order.objects.filter(project=project, id=order_id, status__in=statuses,
                                **{f"{field}__isnull": True}).update(**{field: timezone.now()}):
        return False
    order = Order.objects.select_related("owner", "project").get(project=project, id=order_id)
    send_order_mail(order, kind)
    return True


def orders_remind_sweep(*, now=None, waited: timedelta = timedelta(hours=72), batch_size: int = 500) -> int:
    """On weekdays, reminds owners of orders whose available files have waited 72 hours
    (at most once a day per order)."""
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
            send_order_mail(order, "reminder")
            sent += 1
    return sent
