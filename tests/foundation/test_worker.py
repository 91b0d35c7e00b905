import time

import pytest
from django.db import transaction

from portal.tenancy.models import Project

from .tasks_for_tests import create_marker_project


def _wait_for(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.worker
def test_task_enqueued_on_commit_runs_on_a_live_worker(celery_live_worker):
    # given a task enqueued inside a transaction, only once it commits
    with transaction.atomic():
        transaction.on_commit(lambda: create_marker_project.delay("from-worker"))
        # when the transaction is still open, nothing has been sent yet
        assert not Project.objects.filter(slug="from-worker").exists()
    # then the worker (another thread, its own DB connection) writes the row
    assert _wait_for(lambda: Project.objects.filter(slug="from-worker").exists())


@pytest.mark.worker
def test_task_of_a_rolled_back_transaction_is_never_sent(celery_live_worker):
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            transaction.on_commit(lambda: create_marker_project.delay("never"))
            raise RuntimeError("rollback")
    # a control task sent afterwards proves the worker was consuming meanwhile
    create_marker_project.delay("control")
    assert _wait_for(lambda: Project.objects.filter(slug="control").exists())
    assert not Project.objects.filter(slug="never").exists()
