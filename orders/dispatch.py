"""Enqueueing the orders' Celery tasks once the current transaction commits."""
from __future__ import annotations

from django.db import transaction


def task_on_commit(task_name: str, *args) -> None:
    """Enqueue a task of orders.tasks once the current transaction commits."""
    def send():
        from . import tasks

        getattr(tasks, task_name).delay(*args)

    transaction.on_commit(send)
