"""Thin Celery tasks of deliveries: take ids, activate the project scope, call a service.

Preparing is idempotent and acknowledged late: a task delivered twice claims the delivery
again (compare-and-set with a fresh token) and starts its preparation over.
"""
from celery import shared_task
from django.db import InterfaceError, OperationalError

from portal.tenancy.models import Project
from portal.tenancy.scope import project_scope

from . import preparation, services

_TASK = dict(acks_late=True, reject_on_worker_lost=True)
_DB_TASK = dict(_TASK, autoretry_for=(OperationalError, InterfaceError), retry_backoff=1, retry_backoff_max=60,
                retry_jitter=True, max_retries=8)


@shared_task(name="deliveries.prepare", **_DB_TASK)
def delivery_prepare_task(project_id: int, delivery_id: int, generation: int) -> str | None:
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return None
    with project_scope(project):
        try:
            return preparation.delivery_build(project=project, delivery_id=delivery_id, generation=generation)
        except (OperationalError, InterfaceError):
            raise  # transient: retried with backoff, the claim is taken again
        except Exception as exc:
            # One place marks an unexpected failure, so the delivery never stays in progress.
            preparation.delivery_fail_unexpectedly(project=project, delivery_id=delivery_id, generation=generation,
                                                   message=f"{type(exc).__name__}: {exc}")
            raise


@shared_task(name="deliveries.expire_sweep", **_TASK)
def deliveries_expire_sweep_task() -> int:
    return services.deliveries_expire_sweep()


@shared_task(name="deliveries.stuck_sweep", **_TASK)
def deliveries_stuck_sweep_task() -> int:
    return services.deliveries_stuck_sweep()
