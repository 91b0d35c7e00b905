"""Mails to order owners (Django email backend): created (with the public metalink link),
ready, and the weekday reminder for files waiting to be downloaded."""
from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.core.mail import send_mail

from .models import Order
from .tokens import order_token_for


def public_metalink_url(order: Order) -> str:
    query = urlencode({"orderToken": order_token_for(order), "scope": order.project.slug})
    return f"{settings.PORTAL_BASE_URL}/api/v1/rs-order/user/orders/metalink/download?{query}"


def _expiry(order: Order) -> str:
    return order.expiration_date.strftime("%Y-%m-%d %H:%M UTC")


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
    else:
        raise ValueError(kind)
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [order.owner.email])
