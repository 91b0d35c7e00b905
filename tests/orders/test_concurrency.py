"""Concurrent pause/resume, staging workers and downloads never leave an order inconsistent
(PostgreSQL: real row locks, several connections)."""
from __future__ import annotations

import random
import threading
import time

import pytest
from django.db import connection, connections

from orders import build, dispatch, progress, services, staging
from orders.models import FileState, Order, OrderDataFile, OrderStatus, SubOrder, SubOrderState
from orders.transitions import OrderActionRefused
from portal.catalog.models import StorageTier
from portal.tenancy.scope import project_scope

from .conftest import bare_order, bulk_catalog, dataset_resolver, reload


def _thread(target, errors):
    def run():
        try:
            target()
        except Exception as exc:  # surfaced by the test
            errors.append(exc)
        finally:
            connections.close_all()
    return threading.Thread(target=run)


@pytest.mark.django_db(transaction=True)
def test_racing_pause_resume_workers_and_downloads_keeps_the_order_consistent(member, monkeypatch, settings):
    if connection.vendor != "postgresql":
        pytest.skip("row locks are exercised on PostgreSQL")
    settings.NEARLINE_RESTORE_DELAY_SECONDS = 0.001
    project = member.project
    project.suborder_max_files, project.user_max_suborders = 10, 2
    project.save()
    dataset = bulk_catalog(project, objects=120, tier=StorageTier.NEARLINE)
    order = bare_order(project, member.user)
    # Workers are the threads below: tasks are not sent to a broker.
    monkeypatch.setattr(dispatch, "task_on_commit", lambda *args: None)
    with project_scope(project):
        build.order_build(project=project, order_id=order.pk, resolver=dataset_resolver(dataset))

    stop = threading.Event()
    errors: list[Exception] = []
    max_in_flight = [0]
    outcomes: list[str] = []

    def worker():
        with project_scope(project):
            while not stop.is_set():
                ids = list(SubOrder.objects.filter(order=order, state=SubOrderState.STAGING)
                           .values_list("id", flat=True))
                for sub_id in ids:
                    outcomes.append(staging.suborder_stage(project=project, sub_order_id=sub_id))
                time.sleep(0.001)

    def toggler():
        with project_scope(project):
            for _ in range(60):
                try:
                    if random.random() < 0.5:
                        services.order_pause(project=project, order_id=order.pk)
                    else:
                        services.order_resume(project=project, order_id=order.pk)
                except OrderActionRefused:
                    pass
                time.sleep(random.random() * 0.01)
            try:
                services.order_resume(project=project, order_id=order.pk)
            except OrderActionRefused:
                pass

    def downloader():
        with project_scope(project):
            while not stop.is_set():
                ids = list(OrderDataFile.objects.filter(order=order, state=FileState.AVAILABLE)
                           .values_list("id", flat=True)[:7])
                if ids:
                    progress.order_files_mark_downloaded(project=project, order=order, file_ids=ids)
                time.sleep(0.002)

    def monitor():
        with project_scope(project):
            while not stop.is_set():
                in_flight = SubOrder.objects.filter(owner=member.user, state__in=(
                    SubOrderState.STAGING, SubOrderState.STAGED)).count()
                max_in_flight[0] = max(max_in_flight[0], in_flight)
                time.sleep(0.001)

    toggle = _thread(toggler, errors)
    others = [_thread(worker, errors), _thread(worker, errors), _thread(downloader, errors), _thread(monitor, errors)]
    for thread in [toggle, *others]:
        thread.start()
    toggle.join(timeout=60)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        current = reload(order)
        if current.status == OrderStatus.DONE and not OrderDataFile.unscoped_objects.filter(
                order=order, state=FileState.AVAILABLE).exists():
            break
        time.sleep(0.05)
    stop.set()
    for thread in others:
        thread.join(timeout=30)

    assert errors == []
    order = reload(order)
    states = list(OrderDataFile.unscoped_objects.filter(order=order).values_list("state", flat=True))
    # every file in exactly one, final state; the order finished with consistent counters
    assert len(states) == 120 and set(states) == {FileState.DOWNLOADED}
    assert order.status == OrderStatus.DONE and order.percent_completed == 100
    assert order.available_files_count == 0 and order.files_in_error_count == 0
    assert not order.waiting_for_user
    assert set(SubOrder.unscoped_objects.filter(order=order).values_list("state", flat=True)) == {SubOrderState.DONE}
    # the per-user limit held throughout
    assert 1 <= max_in_flight[0] <= 2
    # each of the 12 sub-orders finished staging exactly once, however often it was stopped
    assert outcomes.count("staged") == 12
