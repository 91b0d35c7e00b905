"""A real worker process killed with SIGKILL in the middle of staging a large order loses
nothing: after a new worker starts (and the stuck-staging sweep runs, as beat would), every
file ends in exactly one state and the order completes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from basket.services import SelectionRequest, basket_add_selection
from orders import services, sweeps
from orders.models import FileState, Order, OrderDataFile, OrderStatus, SubOrder, SubOrderState
from portal.catalog.models import StorageTier
from portal.tenancy.scope import project_scope

from tests.conftest import database_url, wait_until

from .conftest import bulk_catalog, reload

ROOT = Path(__file__).resolve().parents[2]
OBJECTS = 1500


def _start_worker(log: Path) -> subprocess.Popen:
    env = dict(os.environ,
               DATABASE_URL=database_url(),  # the test database, not the configured one
               CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
               ORDERLY_DATA_DIR=str(settings.DATA_DIR),
               ORDERLY_NEARLINE_DELAY_SECONDS="0.004",
               DJANGO_SETTINGS_MODULE="portal.settings.test")
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool=solo", "--loglevel=WARNING",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)


def _states(order) -> dict[str, int]:
    out: dict[str, int] = {}
    for state in OrderDataFile.unscoped_objects.filter(order=order).values_list("state", flat=True):
        out[state] = out.get(state, 0) + 1
    return out


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_staging_loses_nothing(member, tmp_path):
    if connection.vendor != "postgresql" or not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip("needs PostgreSQL and Redis shared with a worker process")
    from portal.celery import app

    app.control.purge()
    project = member.project
    project.suborder_max_files, project.user_max_suborders = 300, 10
    project.save()
    dataset = bulk_catalog(project, objects=OBJECTS, tier=StorageTier.NEARLINE, label="Tape scenes")
    with project_scope(project):
        basket_add_selection(project=project, owner=member.user,
                             selection=SelectionRequest(query='dataset:"Tape scenes"'))
        # committed at once: the build task goes to the broker
        order = services.order_create(project=project, owner=member.user, label="big")
    log = tmp_path / "worker.log"

    first = _start_worker(log)
    try:
        # given a worker in the middle of staging
        wait_until(lambda: 50 < OrderDataFile.unscoped_objects.filter(order=order, state=FileState.AVAILABLE).count(),
              120, "staging to start")
    finally:
        # when it is killed without warning
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    killed_at = _states(order)
    assert killed_at.get(FileState.PENDING, 0) > 0, f"staging had already finished: {killed_at}"
    assert SubOrder.unscoped_objects.filter(order=order, state=SubOrderState.STAGING).exists()

    second = _start_worker(log)
    try:
        # then beat's stuck-staging sweep hands the orphaned sub-order to the new worker
        time.sleep(1.5)
        with project_scope(project):
            assert sweeps.orders_stuck_sweep(stale_after=timedelta(seconds=1)) >= 1
        wait_until(lambda: reload(order).status == OrderStatus.DONE, 240, "the order to complete")
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(timeout=30)

    order = reload(order)
    states = _states(order)
    # every file exactly once, in one final state
    assert sum(states.values()) == OBJECTS == order.files_count
    assert states == {FileState.AVAILABLE: OBJECTS}
    assert OrderDataFile.unscoped_objects.filter(order=order).values("data_file_id").distinct().count() == OBJECTS
    assert order.percent_completed == 100 and order.available_files_count == OBJECTS
    subs = list(SubOrder.unscoped_objects.filter(order=order).values_list(
        "id", "state", "files_count", "started_at", "claimed_at", "ended_at"))
    assert {s[1] for s in subs} == {SubOrderState.STAGED}, (subs, log.read_text()[-3000:])
    # every staged file is whole in the order cache
    for path in OrderDataFile.unscoped_objects.filter(order=order).values_list("cache_path", flat=True)[:50]:
        assert (Path(settings.ORDER_CACHE_DIR) / path).stat().st_size == 64
