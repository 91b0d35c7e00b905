"""A batch of an order's files named by id is found by the primary key, never by walking the
order's `(order, position)` index: that walk reads every file of the order for each batch,
quadratic over a million-file zip (its DOWNLOADED marking, a resumed zip's checks). Checked
on the plans of the statements each function runs, on SQLite and on PostgreSQL."""
from __future__ import annotations

from contextlib import contextmanager

import pytest
from django.db import connection

from orders import build, progress, staging
from orders.downloads import selectors as download_selectors
from orders.models import FileState, OrderDataFile, SubOrder
from portal.tenancy.scope import project_scope

from .conftest import BY_IDS, make_objects, order_of, reload

pytestmark = pytest.mark.django_db

@contextmanager
def _statements_by_ids():
    """(sql, params) of every statement on the order files that names files by id."""
    seen: list[tuple[str, object]] = []

    def wrapper(execute, sql, params, many, context):
        if not many and OrderDataFile._meta.db_table in sql and BY_IDS.search(sql):
            seen.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield seen


def _plan(sql: str, params) -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Tiny test tables are scanned whole anyway: without that choice, the planner shows
            # which index the statement lets it use.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN " + sql, params)
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        return " ".join(str(column) for row in cursor.fetchall() for column in row)


def _assert_by_primary_key(statements) -> None:
    assert statements, "no statement named files by id"
    for sql, params in statements:
        plan = _plan(sql, params)
        assert "orderfile_order_position" not in plan, (sql, plan)
        assert "PRIMARY KEY" in plan or "_pkey" in plan, (sql, plan)


@pytest.fixture
def staged_files(member):
    project = member.project
    order = order_of(member, make_objects(project, count=4))
    with project_scope(project):
        build.order_build(project=project, order_id=order.pk)
        for sub_order in SubOrder.objects.filter(order=order):
            staging.suborder_stage(project=project, sub_order_id=sub_order.pk)
        ids = list(OrderDataFile.objects.filter(order=order).order_by("id").values_list("id", flat=True))
    return project, reload(order), ids


def test_marking_downloaded_and_failed_updates_by_primary_key(staged_files):
    project, order, ids = staged_files
    with project_scope(project), _statements_by_ids() as statements:
        assert progress.order_files_mark_downloaded(project=project, order=order, file_ids=ids[:2]) == 2
        assert progress.order_files_mark_download_failed(project=project, order=order,
                                                         file_ids_with_reasons={ids[2]: "gone"}) == 1
    states = dict(OrderDataFile.unscoped_objects.filter(id__in=ids).values_list("id", "state"))
    assert [states[i] for i in ids] == [FileState.DOWNLOADED, FileState.DOWNLOADED, FileState.DOWNLOAD_ERROR,
                                        FileState.AVAILABLE]
    assert OrderDataFile.unscoped_objects.get(id=ids[2]).error_reason == "gone"
    _assert_by_primary_key(statements)


def test_zip_source_and_candidate_batches_read_by_primary_key(staged_files, member):
    project, order, ids = staged_files
    other = order_of(member, make_objects(project, count=1))
    with project_scope(project):
        build.order_build(project=project, order_id=other.pk)
        for sub_order in SubOrder.objects.filter(order=other):
            staging.suborder_stage(project=project, sub_order_id=sub_order.pk)
        [foreign] = OrderDataFile.objects.filter(order=other).values_list("id", flat=True)
        with _statements_by_ids() as statements:
            sources = download_selectors.zip_source_rows(project=project, order=order, file_ids=[*ids, foreign])
            candidates = list(download_selectors.zip_candidate_rows(project=project, order=order,
                                                                    file_ids=[*ids, foreign]))
    assert OrderDataFile.unscoped_objects.get(id=foreign).state == FileState.AVAILABLE
    # Only the order's own files: an AVAILABLE file of another order named in the batch is not one of them.
    assert sorted(row[0] for row in sources) == ids
    assert [row[0] for row in candidates] == ids
    _assert_by_primary_key(statements)
