"""Thin Celery tasks of deliveries: take ids, call a service (`ProjectTask` enters the scope).

Preparing is idempotent and acknowledged late: a task delivered twice claims the delivery
again (compare-and-set with a fresh token) and starts its preparation over.
"""
from celery import shared_task
from django.db import InterfaceError, OperationalError

from portal.tasks import OrderlyTask, ProjectTask

from . import preparation, services


@shared_task(name="deliveries.prepare", base=ProjectTask)
def delivery_prepare_task(project, delivery_id: int, generation: int) -> str | None:
    try:
        return preparation.delivery_build(project=project, delivery_id=delivery_id, generation=generation)
    except (OperationalError, InterfaceError):
        raise  # transient: retried with backoff, the claim is taken again
    except Exception as exc:
        # One place marks an unexpected failure, so the delivery never stays in progress.
        preparation.delivery_fail_unexpectedly(project=project, delivery_id=delivery_id, generation=generation,
                                               message=f"{type(exc).__name__}: {exc}")
        raise


@shared_task(name="deliveries.expire_sweep", base=OrderlyTask)
def deliveries_expire_sweep_task() -> int:
    return services.deliveries_expire_sweep()


@shared_task(name="deliveries.stuck_sweep", base=OrderlyTask)
def deliveries_stuck_sweep_task() -> int:
    return services.deliveries_stuck_sweep()
