"""The order's history: one OrderEvent per status change and notable step, written with the
change (who or which task, from, to, why)."""
from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from orders import progress, services
from orders.history import order_files_available_record
from orders.models import FileState, Order, OrderDataFile, OrderEvent
from portal.tenancy.scope import project_scope

from .conftest import ORDERS_URL, make_objects, order_of

pytestmark = pytest.mark.django_db


def _history(order):
    return list(OrderEvent.unscoped_objects.filter(order_id=order.pk).values_list(
        "kind", "from_status", "to_status", "reason", "actor_label"))


def test_waiting_for_the_user_and_each_batch_of_files_are_recorded_once(member, run_tasks):
    project = member.project
    project.suborder_max_files, project.user_max_suborders = 1, 1
    project.save()
    order = order_of(member, make_objects(project, count=2), run=run_tasks)
    kinds = [row[0] for row in _history(order)]
    assert kinds == ["created", "status_changed", "files_available", "waiting_for_user"]
    available = OrderDataFile.unscoped_objects.filter(order=order, state=FileState.AVAILABLE).values_list("id",
                                                                                                        flat=True)
    with project_scope(project), run_tasks():
        progress.order_files_mark_downloaded(project=project, order=order, file_ids=list(available))
    kinds = [row[0] for row in _history(order)]
    assert kinds == ["created", "status_changed", "files_available", "waiting_for_user", "files_available",
                     "status_changed"]
    assert _history(order)[-1][1:3] == ("RUNNING", "DONE")


def test_people_are_named_by_email_and_refusals_leave_no_trace(member, run_tasks):
    order = order_of(member, make_objects(member.project, count=1), run=run_tasks)
    before = _history(order)
    assert member.client.put(f"{ORDERS_URL}/pause/{order.pk}").status_code == 401  # DONE cannot pause
    assert _history(order) == before
    assert member.client.delete(f"{ORDERS_URL}/{order.pk}").status_code == 200
    assert _history(order)[-1] == ("status_changed", "DONE", "DELETED", "delete", member.user.email)


def test_files_available_is_told_at_most_once_a_minute_while_staging_goes_on(member, run_tasks):
    order = order_of(member, make_objects(member.project, count=1), run=run_tasks)
    order = Order.unscoped_objects.get(pk=order.pk)
    told = OrderEvent.unscoped_objects.filter(order_id=order.pk, kind="files_available")
    assert told.count() == 1
    with project_scope(member.project):
        assert order_files_available_record(project=member.project, order=order, last_batch=False) is None
        assert order_files_available_record(project=member.project, order=order, last_batch=True) is not None
        with time_machine.travel(timezone.now() + timedelta(seconds=61)):
            assert order_files_available_record(project=member.project, order=order, last_batch=False)
    assert told.count() == 3

