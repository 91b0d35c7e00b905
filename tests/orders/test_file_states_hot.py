"""An order file's state changes (staging, a zip's marking) are HOT updates on PostgreSQL: no
index holds `state`; what used to probe files by state reads the sub-orders' counters."""
from __future__ import annotations

import pytest
from django.db import connection

from orders import build, cache, progress, staging
from orders.models import FileState, OrderDataFile, SubOrder
from orders.selectors import order_files_all_downloadable
from portal.catalog import storage
from portal.catalog.models import DataFile, StorageTier
from portal.tenancy.scope import project_scope

from .conftest import make_objects, order_of, reload

pytestmark = pytest.mark.django_db

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="HOT updates are PostgreSQL's")


def _table() -> str:
    return OrderDataFile._meta.db_table


@postgresql_only
def test_no_index_of_the_order_files_holds_the_state_and_pages_keep_room():
    with connection.cursor() as cursor:
        # Key columns, INCLUDE columns, expressions and predicates alike block HOT.
        cursor.execute(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = %s::regclass", [_table()])
        definitions = cursor.fetchall()
        cursor.execute("SELECT reloptions FROM pg_class WHERE oid = %s::regclass", [_table()])
        options = cursor.fetchone()[0]
    assert definitions and not [d for d in definitions if "state" in d[1]], definitions
    assert "fillfactor=30" in options


@postgresql_only
def test_staging_and_marking_are_hot_updates(member):
    project = member.project
    order = order_of(member, make_objects(project, count=6))
    with project_scope(project):
        build.order_build(project=project, order_id=order.pk)
        files = list(OrderDataFile.objects.filter(order=order).values_list("id", flat=True))
        [sub] = SubOrder.objects.filter(order=order)
        with connection.cursor() as cursor:
            # This transaction's own counts (the test runs in one): no lag of the statistics.
            cursor.execute("SELECT pg_stat_get_xact_tuples_updated(%s::regclass), "
                           "pg_stat_get_xact_tuples_hot_updated(%s::regclass)", [_table(), _table()])
            before = cursor.fetchone()
            staging.suborder_stage(project=project, sub_order_id=sub.pk)
            progress.order_files_mark_downloaded(project=project, order=reload(order), file_ids=files)
            cursor.execute("SELECT pg_stat_get_xact_tuples_updated(%s::regclass), "
                           "pg_stat_get_xact_tuples_hot_updated(%s::regclass)", [_table(), _table()])
            after = cursor.fetchone()
    updated, hot = after[0] - before[0], after[1] - before[1]
    assert updated == 2 * len(files) and hot == updated
    assert set(OrderDataFile.unscoped_objects.filter(order=order).values_list("state", flat=True)) == {"DOWNLOADED"}
    assert SubOrder.unscoped_objects.get(pk=sub.pk).state == "DONE"


@pytest.fixture
def freed_caches(member):
    """Frees the order caches of the orders the test lists (ids are reused by later tests)."""
    orders = []
    yield orders
    for order in orders:
        cache.order_cache_free(project_slug=member.project.slug, order_id=order.pk)


def test_all_downloadable_follows_the_sub_order_counters(member, run_tasks, freed_caches):
    project = member.project
    objects = make_objects(project, count=3, tier=StorageTier.NEARLINE)
    storage.data_file_path(DataFile.unscoped_objects.filter(data_object=objects[0]).get()).unlink()
    order = order_of(member, objects)
    freed_caches.append(order)
    with project_scope(project):
        build.order_build(project=project, order_id=order.pk)
        assert not order_files_all_downloadable(project=project, order=order)  # all pending
        ok = order_of(member, make_objects(project, count=2, label="ok"), run=run_tasks)
        assert order_files_all_downloadable(project=project, order=ok)
        first = OrderDataFile.objects.filter(order=ok).order_by("id").values_list("id", flat=True).first()
        progress.order_files_mark_downloaded(project=project, order=ok, file_ids=[first])
        assert order_files_all_downloadable(project=project, order=ok)  # DOWNLOADED stays downloadable
        progress.order_files_mark_download_failed(project=project, order=ok, file_ids_with_reasons={
            OrderDataFile.objects.filter(order=ok, state=FileState.AVAILABLE).values_list("id", flat=True).get(): "x"})
        assert not order_files_all_downloadable(project=project, order=ok)
    with project_scope(project), run_tasks():
        for sub in SubOrder.objects.filter(order=order):
            SubOrder.objects.filter(pk=sub.pk).update(state="STAGING")
            staging.suborder_stage(project=project, sub_order_id=sub.pk)
        assert OrderDataFile.objects.filter(order=order, state=FileState.ERROR).count() == 1
        assert not order_files_all_downloadable(project=project, order=order)  # one in ERROR
