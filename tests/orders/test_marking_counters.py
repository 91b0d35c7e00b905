"""Marking files DOWNLOADED or DOWNLOAD_ERROR moves their sub-orders' counters by what changed
(no recount: a zip's batch in name order can touch most sub-orders of a big order, and
recounting them read every file of the order per batch). The counters stay what a recount
from the files gives."""
from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import Count, Q

from orders import build, progress, staging
from orders.models import ERROR_FILE_STATES, FileState, OrderDataFile, SubOrder, SubOrderState
from portal.tenancy.scope import project_scope

from .conftest import BY_IDS, make_objects, order_of, reload

pytestmark = pytest.mark.django_db


def _counters(order) -> dict[int, tuple[int, int, int]]:
    return {s.pk: (s.pending_count, s.available_count, s.error_count)
            for s in SubOrder.unscoped_objects.filter(order=order)}


def _recounted(order) -> dict[int, tuple[int, int, int]]:
    rows = (OrderDataFile.unscoped_objects.filter(order=order).values("sub_order_id").order_by()
            .annotate(pending=Count("id", filter=Q(state=FileState.PENDING)),
                      available=Count("id", filter=Q(state=FileState.AVAILABLE)),
                      errors=Count("id", filter=Q(state__in=ERROR_FILE_STATES))))
    return {r["sub_order_id"]: (r["pending"], r["available"], r["errors"]) for r in rows}


@pytest.fixture
def staged(member):
    """An order of 6 files in 3 sub-orders of 2, staged: (project, order, file ids by id)."""
    project = member.project
    project.suborder_max_files, project.user_max_suborders = 2, 3
    project.save(update_fields=["suborder_max_files", "user_max_suborders"])
    order = order_of(member, make_objects(project, count=6))
    with project_scope(project):
        build.order_build(project=project, order_id=order.pk)
        # The owner's sub-orders are staged a few at a time: each one staged starts the next.
        for _ in range(10):
            started = list(SubOrder.objects.filter(order=order, state=SubOrderState.STAGING))
            if not started:
                break
            for sub_order in started:
                staging.suborder_stage(project=project, sub_order_id=sub_order.pk)
        ids = list(OrderDataFile.objects.filter(order=order).order_by("id").values_list("id", flat=True))
    assert len(_counters(order)) == 3 and set(_counters(order).values()) == {(0, 2, 0)}
    return project, reload(order), ids


def test_counters_follow_every_marking_without_a_recount(staged):
    project, order, ids = staged
    executed: list[str] = []

    def wrapper(execute, sql, params, many, context):
        executed.append(sql)
        return execute(sql, params, many, context)

    with project_scope(project):
        with connection.execute_wrapper(wrapper):
            # One batch across the three sub-orders (a zip's batch is in name order).
            assert progress.order_files_mark_downloaded(project=project, order=order,
                                                        file_ids=[ids[0], ids[2], ids[4]]) == 3
        assert _counters(order) == _recounted(order)
        # Every statement on the order files names them by id (no recount of the sub-orders' files).
        on_files = [sql for sql in executed if OrderDataFile._meta.db_table in sql]
        assert on_files and all(BY_IDS.search(sql) for sql in on_files), on_files
        assert [sql for sql in on_files if "UPDATE " in sql]
        assert progress.order_files_mark_download_failed(project=project, order=order,
                                                         file_ids_with_reasons={ids[1]: "reset", ids[3]: "gone"}) == 2
        assert _counters(order) == _recounted(order)
        # The failed one sent again at last; one already DOWNLOADED changes nothing.
        assert progress.order_files_mark_downloaded(project=project, order=order, file_ids=[ids[1], ids[0]]) == 1
        assert _counters(order) == _recounted(order)
        assert progress.order_files_mark_downloaded(project=project, order=order, file_ids=[ids[0]]) == 0
    states = dict(OrderDataFile.unscoped_objects.filter(order=order).values_list("id", "state"))
    assert [states[i] for i in ids] == ["DOWNLOADED", "DOWNLOADED", "DOWNLOADED", "DOWNLOAD_ERROR",
                                        "DOWNLOADED", "AVAILABLE"]
    # Sub-orders with no file AVAILABLE any more are DONE (a DOWNLOAD_ERROR one is not
    # AVAILABLE); the last still holds one.
    subs = dict(OrderDataFile.unscoped_objects.filter(order=order).values_list("id", "sub_order_id"))
    sub_states = dict(SubOrder.unscoped_objects.filter(order=order).values_list("id", "state"))
    assert [sub_states[subs[i]] for i in ids[::2]] == [SubOrderState.DONE, SubOrderState.DONE, SubOrderState.STAGED]
    assert reload(order).available_files_count == 1 and reload(order).files_in_error_count == 1


def test_a_file_marked_before_its_staging_recounted_keeps_counters_at_zero(staged):
    project, order, ids = staged
    sub = OrderDataFile.unscoped_objects.get(id=ids[0]).sub_order_id
    # As while a staging worker has made files AVAILABLE and not recounted yet.
    SubOrder.unscoped_objects.filter(pk=sub).update(pending_count=2, available_count=0)
    with project_scope(project):
        assert progress.order_files_mark_downloaded(project=project, order=order, file_ids=[ids[0]]) == 1
        assert SubOrder.objects.get(pk=sub).available_count == 0  # not -1 (a PositiveIntegerField)
        # The staging's own recount, which always follows, sets them from the files.
        progress.order_progress_refresh(project=project, order_id=order.pk, sub_order_ids=[sub])
    assert _counters(order) == _recounted(order)
