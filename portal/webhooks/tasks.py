"""Thin Celery tasks: one delivery attempt of a message, and the beat sweep of what is due."""
from celery import shared_task
from django.db import InterfaceError, OperationalError

from portal.tasks import OrderlyTask

from . import services


@shared_task(name="webhooks.send", base=OrderlyTask, autoretry_for=(OperationalError, InterfaceError),
             retry_backoff=1, retry_backoff_max=60, max_retries=8)
def webhook_send_task(message_id: int) -> str:
    return services.webhook_message_send(message_id=message_id)


@shared_task(name="webhooks.sweep", base=OrderlyTask)
def webhooks_sweep_task() -> int:
    return services.webhooks_sweep()
