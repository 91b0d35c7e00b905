"""Thin Celery tasks: take ids, activate the project scope, call a service.

All are idempotent and acknowledged late: a worker killed mid-task loses nothing, the task
runs again (redelivery, or the stuck-staging beat job) and resumes from the files' states.
"""
from celery import shared_task
from django.db import InterfaceError, OperationalError

from portal.tenancy.models import Project
from portal.tenancy.scope import project_scope

from . import expiry, services

_TASK = dict(acks_late=True, reject_on_worker_lost=True)
# Work that touches the database is retried with backoff on transient database errors
# (a lost connection, a busy SQLite file); the services are idempotent.
_DB_TASK = dict(_TASK, autoretry_for=(OperationalError, InterfaceError), retry_backoff=1, retry_backoff_max=60,
                retry_jitter=True, max_retries=8)


def _project(project_id: int) -> Project | None:
    return Project.objects.filter(pk=project_id).first()


@shared_task(name="orders.build", **_DB_TASK)
def order_build_task(project_id: int, order_id: int) -> None:
    project = _project(project_id)
    if project is not None:
        with project_scope(project):
            services.order_build(project=project, order_id=order_id)


@shared_task(name="orders.stage_suborder", **_DB_TASK)
def suborder_stage_task(project_id: int, sub_order_id: int) -> str | None:
    project = _project(project_id)
    if project is None:
        return None
    with project_scope(project):
        return services.suborder_stage(project=project, sub_order_id=sub_order_id)


@shared_task(name="orders.mail", **_DB_TASK)
def order_mail_task(project_id: int, order_id: int, kind: str) -> None:
    project = _project(project_id)
    if project is not None:
        with project_scope(project):
            services.order_notify(project=project, order_id=order_id, kind=kind)


@shared_task(name="orders.expire_sweep", **_TASK)
def orders_expire_sweep_task() -> int:
    return services.orders_expire_sweep()


@shared_task(name="orders.stuck_sweep", **_TASK)
def orders_stuck_sweep_task() -> int:
    return services.orders_stuck_sweep()


@shared_task(name="orders.expiring_sweep", **_TASK)
def orders_expiring_sweep_task() -> int:
    return expiry.orders_expiring_sweep()


@shared_task(name="orders.remind_sweep", **_TASK)
def orders_remind_sweep_task() -> int:
    return services.orders_remind_sweep()
