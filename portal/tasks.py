"""Base classes of the project's Celery tasks.

`OrderlyTask`: acknowledged late and given back when a worker is lost (every task is
idempotent). `ProjectTask`: work in one project, retried with backoff on transient database
errors; its first argument is the project id, and the task body runs inside that project's
scope and receives the `Project` (nothing runs when the project is gone), as pretix's
`EventTask` does for events.
"""
from __future__ import annotations

from celery import Task
from django.db import InterfaceError, OperationalError

from portal.tenancy.models import Project
from portal.tenancy.scope import project_scope


class OrderlyTask(Task):
    abstract = True
    acks_late = True
    reject_on_worker_lost = True


class ProjectTask(OrderlyTask):
    abstract = True
    # A lost connection or a busy SQLite file: the services are idempotent, so run again.
    autoretry_for = (OperationalError, InterfaceError)
    retry_backoff = 1
    retry_backoff_max = 60
    retry_jitter = True
    max_retries = 8

    def __call__(self, project_id: int, *args, **kwargs):
        project = Project.objects.filter(pk=project_id).first()
        if project is None:
            return None
        with project_scope(project):
            return super().__call__(project, *args, **kwargs)
