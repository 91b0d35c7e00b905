"""Creation, background build, staging, scheduling and progress of orders."""
from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from django.conf import settings

from orders import build, progress, services, staging, sweeps
from orders.models import DatasetTask, FileState, Order, OrderDataFile, OrderStatus, SubOrder
from portal.catalog import storage
from portal.catalog.models import DataFile, DataType, StorageTier
from portal.tenancy.scope import project_scope

from .conftest import ORDERS_URL, file_states, fill_basket, make_objects, order_of, reload, sub_states

pytestmark = pytest.mark.django_db


def test_creation_answers_201_pending_at_once_and_empties_the_basket(member, django_capture_on_commit_callbacks):
    objects = make_objects(member.project, count=3)
    fill_basket(member, objects)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = member.client.post(ORDERS_URL, {"label": "my first", "onSuccessUrl": "/back"}, format="json")

    assert response.status_code == 201
    body = response.json()
    content = body["content"]
    assert content["status"] == "PENDING" and content["label"] == "my first"
    assert content["owner"] == member.user.email and content["percentCompleted"] == 0
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", content["creationDate"])
    assert [link["rel"] for link in body["links"]] == ["self", "list", "pause", "extend"]
    # the build is enqueued, only on commit
    assert len(callbacks) == 1
    # the basket is emptied
    assert member.client.get("/api/v1/rs-order/order/basket").json()["content"]["datasetSelections"] == []
    order = reload(Order(pk=content["id"]))
    assert order.frontend_url == "/back" and len(order.selection) == 1


def test_build_resolves_files_and_starts_the_order(member):
    objects = make_objects(member.project, count=3, files=((DataType.RAWDATA, 100), (DataType.QUICKLOOK_SD, 10)))
    order = order_of(member, objects)
    with project_scope(member.project):
        assert build.order_build(project=member.project, order_id=order.pk) is True
        # a second run (redelivered task) changes nothing
        assert build.order_build(project=member.project, order_id=order.pk) is False
    order = reload(order)
    assert order.status == OrderStatus.RUNNING and order.built_at is not None
    # RAWDATA only by default
    assert (order.files_count, order.files_size) == (3, 300)
    [task] = DatasetTask.unscoped_objects.filter(order=order)
    assert (task.objects_count, task.files_count, task.files_size) == (3, 3, 300)
    assert OrderDataFile.unscoped_objects.filter(order=order, state=FileState.PENDING).count() == 3
    # the first sub-order is staging, under the user's limit
    assert sub_states(order) == ["STAGING"]


def test_full_flow_with_tasks_gives_a_done_order(member, run_tasks):
    objects = make_objects(member.project, count=4)
    fill_basket(member, objects)
    with run_tasks():
        response = member.client.post(ORDERS_URL, {}, format="json")
    assert response.status_code == 201
    order_id = response.json()["content"]["id"]

    body = member.client.get(f"{ORDERS_URL}/{order_id}").json()
    content = body["content"]
    assert content["status"] == "DONE"
    assert (content["percentCompleted"], content["availableFilesCount"], content["filesInErrorCount"]) == (100, 4, 0)
    assert re.fullmatch(r"Order of \d{4}/\d\d/\d\d at \d\d:\d\d:\d\d", content["label"])
    assert content["datasetTasks"][0]["filesCount"] == 4 and content["datasetTasks"][0]["objectsCount"] == 4
    rels = [link["rel"] for link in body["links"]]
    assert rels == ["self", "list", "delete", "restart", "extend", "download"]


def test_empty_basket_gives_201_then_done_with_warning(member, run_tasks):
    objects = make_objects(member.project, count=1)
    fill_basket(member, objects)
    member.client.delete("/api/v1/rs-order/order/basket/dataset/"
                         + str(member.client.get("/api/v1/rs-order/order/basket").json()["content"]
                               ["datasetSelections"][0]["id"]))
    with run_tasks():
        response = member.client.post(ORDERS_URL, {}, format="json")
    assert response.status_code == 201
    content = member.client.get(f"{ORDERS_URL}/{response.json()['content']['id']}").json()["content"]
    assert content["status"] == "DONE_WITH_WARNING"
    assert content["message"]


def test_no_basket_is_204(member):
    response = member.client.post(ORDERS_URL, {}, format="json")
    assert response.status_code == 204
    with project_scope(member.project):
        assert not Order.objects.exists()


def test_label_rules(member, run_tasks):
    objects = make_objects(member.project, count=1)
    fill_basket(member, objects)
    too_long = member.client.post(ORDERS_URL, {"label": "x" * 51}, format="json")
    assert too_long.status_code == 422 and too_long.json() == {"messages": ["TOO_MANY_CHARACTERS_IN_LABEL"]}
    assert member.client.post(ORDERS_URL, {"label": "x" * 50}, format="json").status_code == 201
    fill_basket(member, objects)
    reused = member.client.post(ORDERS_URL, {"label": "x" * 50}, format="json")
    assert reused.status_code == 422 and reused.json() == {"messages": ["LABEL_NOT_UNIQUE_FOR_OWNER"]}


def test_label_of_a_deleted_order_stays_taken(member, run_tasks):
    objects = make_objects(member.project, count=1)
    order = order_of(member, objects, label="keep", run=run_tasks)
    assert member.client.delete(f"{ORDERS_URL}/{order.pk}").status_code == 200
    assert reload(order).status == OrderStatus.DELETED
    fill_basket(member, objects)
    reused = member.client.post(ORDERS_URL, {"label": "keep"}, format="json")
    assert reused.status_code == 422 and reused.json() == {"messages": ["LABEL_NOT_UNIQUE_FOR_OWNER"]}


def test_idempotency_key_returns_the_first_order(member):
    objects = make_objects(member.project, count=1)
    fill_basket(member, objects)
    first = member.client.post(ORDERS_URL, {}, format="json", HTTP_IDEMPOTENCY_KEY="abc-1")
    second = member.client.post(ORDERS_URL, {}, format="json", HTTP_IDEMPOTENCY_KEY="abc-1")
    assert first.status_code == second.status_code == 201
    assert first.json()["content"]["id"] == second.json()["content"]["id"]
    with project_scope(member.project):
        assert Order.objects.count() == 1


def test_sub_orders_respect_max_files_and_bytes_and_never_cross_datasets(member):
    project = member.project
    project.suborder_max_files, project.suborder_max_bytes, project.user_max_suborders = 2, 250, 10
    project.save()
    a = make_objects(project, count=5, files=((DataType.RAWDATA, 100),), label="A")
    b = make_objects(project, count=1, files=((DataType.RAWDATA, 100),), label="B")
    order = order_of(member, a + b)
    with project_scope(project):
        build.order_build(project=project, order_id=order.pk)
    subs = list(SubOrder.unscoped_objects.filter(order=order).order_by("id").values_list(
        "dataset_task__dataset_label", "files_count", "files_size"))
    # 5 files of dataset A by 2 (bytes allow 2 x 100), then B alone
    assert subs == [("A", 2, 200), ("A", 2, 200), ("A", 1, 100), ("B", 1, 100)]
    with project_scope(project):
        for sub in SubOrder.objects.filter(order=order):
            assert sub.files.count() == sub.files_count
            assert set(sub.files.values_list("data_file__data_object__dataset__label", flat=True)) == \
                {sub.dataset_task.dataset_label}


def test_user_limit_holds_next_sub_orders_until_the_user_downloads(member, run_tasks):
    project = member.project
    project.suborder_max_files, project.user_max_suborders = 1, 1
    project.save()
    objects = make_objects(project, count=3)
    order = order_of(member, objects, run=run_tasks)

    order = reload(order)
    assert sub_states(order) == ["STAGED", "WAITING", "WAITING"]
    assert order.status == OrderStatus.RUNNING and order.waiting_for_user is True
    assert (order.available_files_count, order.percent_completed) == (1, 33)

    for expected in (["DONE", "STAGED", "WAITING"], ["DONE", "DONE", "STAGED"]):
        available = list(OrderDataFile.unscoped_objects.filter(order=order, state=FileState.AVAILABLE)
                         .values_list("id", flat=True))
        with project_scope(project), run_tasks():
            progress.order_files_mark_downloaded(project=project, order=order, file_ids=available)
        assert sub_states(order) == expected
    order = reload(order)
    assert order.status == OrderStatus.DONE and order.waiting_for_user is False
    assert file_states(order) == {"DOWNLOADED": 2, "AVAILABLE": 1}


def test_user_limit_spans_all_orders_of_the_user(member, run_tasks):
    project = member.project
    project.suborder_max_files, project.user_max_suborders = 1, 2
    project.save()
    first = order_of(member, make_objects(project, count=2, label="one"), run=run_tasks)
    second = order_of(member, make_objects(project, count=2, label="two"), run=run_tasks)
    assert sub_states(first) == ["STAGED", "STAGED"]
    assert sub_states(second) == ["WAITING", "WAITING"]
    assert reload(second).waiting_for_user is True and reload(first).waiting_for_user is False
    with project_scope(project), run_tasks():
        progress.order_files_mark_download_failed(
            project=project, order=first,
            file_ids_with_reasons={f: "connection reset" for f in OrderDataFile.unscoped_objects.filter(
                order=first).values_list("id", flat=True)[:1]})
    assert sub_states(first) == ["DONE", "STAGED"]
    assert sub_states(second) == ["STAGED", "WAITING"]
    first = reload(first)
    assert first.status == OrderStatus.DONE_WITH_WARNING and first.files_in_error_count == 1


def test_nearline_files_are_restored_into_the_project_order_cache(member, run_tasks):
    objects = make_objects(member.project, count=2, tier=StorageTier.NEARLINE)
    order = order_of(member, objects, run=run_tasks)
    order = reload(order)
    assert order.status == OrderStatus.DONE
    cache_root = Path(settings.ORDER_CACHE_DIR) / member.project.slug / str(order.pk)
    for ofile in OrderDataFile.unscoped_objects.filter(order=order).select_related("data_file"):
        assert ofile.state == FileState.AVAILABLE and ofile.cache_path
        path = Path(settings.ORDER_CACHE_DIR) / ofile.cache_path
        assert path.parent == cache_root
        assert path.read_bytes() == storage.data_file_path(ofile.data_file).read_bytes()


def test_nearline_failures_end_in_error_with_a_reason(member, run_tasks):
    objects = make_objects(member.project, count=3, tier=StorageTier.NEARLINE)
    # one file lost on the tape
    lost = DataFile.unscoped_objects.filter(data_object=objects[0]).get()
    storage.data_file_path(lost).unlink()
    order = order_of(member, objects, run=run_tasks)
    order = reload(order)
    assert order.status == OrderStatus.DONE_WITH_WARNING
    assert (order.files_in_error_count, order.available_files_count, order.percent_completed) == (1, 2, 100)
    failed = OrderDataFile.unscoped_objects.get(order=order, state=FileState.ERROR)
    assert failed.data_file_id == lost.pk and "missing" in failed.error_reason


def test_every_file_failing_gives_failed(member, run_tasks, settings):
    settings.NEARLINE_RESTORE_FAILURE_RATE = 1.0
    order = order_of(member, make_objects(member.project, count=2, tier=StorageTier.NEARLINE), run=run_tasks)
    order = reload(order)
    assert order.status == OrderStatus.FAILED and order.files_in_error_count == 2
    assert file_states(order) == {"ERROR": 2}
    assert sub_states(order) == ["DONE"]  # nothing to download: the slot is free


def test_percent_completed_is_floor_of_final_bytes(member):
    objects = make_objects(member.project, count=3, files=((DataType.RAWDATA, 1),))
    objects += make_objects(member.project, count=1, files=((DataType.RAWDATA, 2),), dataset=objects[0].dataset)
    order = order_of(member, objects)
    project = member.project
    with project_scope(project):
        build.order_build(project=project, order_id=order.pk)
        first = OrderDataFile.objects.filter(order=order, size=1).first()
        OrderDataFile.objects.filter(pk=first.pk).update(state=FileState.AVAILABLE)
        refreshed = progress.order_progress_refresh(project=project, order_id=order.pk)
    assert refreshed.percent_completed == math.floor(100 * 1 / 5) == 20
    assert refreshed.status == OrderStatus.RUNNING


def test_pausing_stops_staging_and_resuming_continues(member, run_tasks):
    project = member.project
    objects = make_objects(project, count=3, tier=StorageTier.NEARLINE)
    order = order_of(member, objects)
    with project_scope(project):
        build.order_build(project=project, order_id=order.pk)
        services.order_pause(project=project, order_id=order.pk)
        [sub] = SubOrder.objects.filter(order=order)
        # the staging task runs after the pause: it stops and frees its slot
        assert staging.suborder_stage(project=project, sub_order_id=sub.pk) == "stopped"
    assert sub_states(order) == ["WAITING"] and file_states(order) == {"PENDING": 3}
    assert reload(order).status == OrderStatus.PAUSED
    with project_scope(project), run_tasks():
        services.order_resume(project=project, order_id=order.pk)
    assert reload(order).status == OrderStatus.DONE and file_states(order) == {"AVAILABLE": 3}


def test_stuck_staging_is_dispatched_again(member, run_tasks):
    from datetime import timedelta

    from django.utils import timezone

    project = member.project
    order = order_of(member, make_objects(project, count=2))
    with project_scope(project):
        build.order_build(project=project, order_id=order.pk)
        [sub] = SubOrder.objects.filter(order=order)
        # a worker claimed it long ago and died
        SubOrder.objects.filter(pk=sub.pk).update(claimed_at=timezone.now() - timedelta(hours=1))
        # a fresh claim is not stolen by another delivery of the task
        assert sweeps.orders_stuck_sweep(stale_after=timedelta(hours=2)) == 0
    with run_tasks():
        assert sweeps.orders_stuck_sweep(stale_after=timedelta(minutes=5)) == 1
    assert reload(order).status == OrderStatus.DONE and sub_states(order) == ["STAGED"]


def test_a_sub_order_whose_last_files_finished_the_order_still_ends_staged(member):
    """The order can finish (progress refresh) before the staging loop closes its sub-order."""
    project = member.project
    order = order_of(member, make_objects(project, count=2))
    with project_scope(project):
        build.order_build(project=project, order_id=order.pk)
        [sub] = SubOrder.objects.filter(order=order)
        OrderDataFile.objects.filter(order=order).update(state=FileState.AVAILABLE)
        assert progress.order_progress_refresh(project=project, order_id=order.pk).status == OrderStatus.DONE
        staging.suborder_stage(project=project, sub_order_id=sub.pk)
    assert sub_states(order) == ["STAGED"]


def test_split_is_greedy_in_object_order(member):
    project = member.project
    project.suborder_max_files, project.suborder_max_bytes, project.user_max_suborders = 10, 300, 10
    project.save()
    dataset = None
    objects = []
    for size in (100, 200, 50, 300, 10):
        [obj] = make_objects(project, count=1, files=((DataType.RAWDATA, size),), dataset=dataset)
        dataset = obj.dataset
        objects.append(obj)
    order = order_of(member, objects)
    with project_scope(project):
        build.order_build(project=project, order_id=order.pk)
        slices = [list(sub.files.order_by("id").values_list("size", flat=True))
                  for sub in SubOrder.objects.filter(order=order).order_by("id")]
        product_ids = list(OrderDataFile.objects.filter(order=order).order_by("id").values_list("product_id", flat=True))
    assert slices == [[100, 200], [50], [300], [10]]
    assert product_ids == [o.ip_id for o in objects]
    assert reload(order).files_size == 660
