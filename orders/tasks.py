"""Thin Celery tasks: take ids, call a service (`ProjectTask` loads the project and enters its scope).

All are idempotent and acknowledged late: a worker killed mid-task loses nothing, the task
runs again (redelivery, or the stuck-staging beat job) and resumes from the files' states.
"""
from celery import shared_task

from portal.tasks import OrderlyTask, ProjectTask

from . import build, expiry, mails, staging, sweeps


@shared_task(name="orders.build", base=ProjectTask)
def order_build_task(project, order_id: int) -> None:
    build.order_build(project=project, order_id=order_id)


@shared_task(name="orders.stage_suborder", base=ProjectTask)
def suborder_stage_task(project, sub_order_id: int) -> str | None:
    return staging.suborder_stage(project=project, sub_order_id=sub_order_id)


@shared_task(name="orders.mail", base=ProjectTask)
def order_mail_task(project, order_id: int, kind: str) -> None:
    mails.order_notify(project=project, order_id=order_id, kind=kind)


@shared_task(name="orders.expire_sweep", base=OrderlyTask)
def orders_expire_sweep_task() -> int:
    return sweeps.orders_expire_sweep()


@shared_task(name="orders.stuck_sweep", base=OrderlyTask)
def orders_stuck_sweep_task() -> int:
    return sweeps.orders_stuck_sweep()


@shared_task(name="orders.expiring_sweep", base=OrderlyTask)
def orders_expiring_sweep_task() -> int:
    return expiry.orders_expiring_sweep()


@shared_task(name="orders.remind_sweep", base=OrderlyTask)
def orders_remind_sweep_task() -> int:
    return mails.orders_remind_sweep()
