"""Thin Celery tasks: one delivery attempt of a message, and the beat sweep of what is due."""
from celery import shared_task
from django.db import InterfaceError, OperationalError

from . import services

_TASK = dict(acks_late=True, reject_on_worker_lost=True)


@shared_task(name="webhooks.send", autoretry_for=(OperationalError, InterfaceError), retry_backoff=1,
             retry_backoff_max=60, max_retries=8, **_TASK)
def webhook_send_task(message_id: int) -> str:
    return services.webhook_message_send(message_id=message_id)


@shared_task(name="webhooks.sweep", **_TASK)
def webhooks_sweep_task() -> int:
    return services.webhooks_sweep()
