"""files/available, dataset task files and single-file downloads (owner, ADMIN, public token)."""
from __future__ import annotations

import base64
import hashlib
import datetime as dt
from urllib.parse import urlsplit

from django.utils import timezone
from rest_framework.test import APIClient

from orders.build import order_build
from orders.models import DatasetTask, FileState, Order, OrderDataFile, OrderStatus
from orders.tokens import order_token_for
from portal.catalog import storage
from portal.tenancy.scope import project_scope
from tests.conftest import make_member

from .conftest import API, body_of, make_objects, order_files, order_of, reload, states


def _set_status(order, status):
    # Test setup only: the orders state machine owns status changes in the product.
    Order.unscoped_objects.filter(pk=order.pk).update(status=status)
    return reload(order)


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


# --- files/available -------------------------------------------------------------------------

def test_available_files_of_a_finished_order_are_200_with_downloadable_uris(member, staged_order,
                                                                            django_assert_max_num_queries):
    with django_assert_max_num_queries(8):
        response = member.client.get(f"{API}/orders/{staged_order.pk}/files/available?page=0&size=2")
    assert response.status_code == 200
    body = response.json()
    assert body["metadata"] == {"size": 2, "totalElements": 3, "totalPages": 2, "number": 0}
    files = order_files(staged_order)
    item = body["content"][0]
    assert set(item) == {"id", "productId", "checksum", "fileSize", "filename", "mimeType", "uri"}
    assert item["id"] == files[0].pk and item["checksum"] == files[0].checksum and item["fileSize"] == 300
    # Stable paging by id: the second page holds the third file.
    page1 = member.client.get(f"{API}/user/orders/{staged_order.pk}/files/available?page=1&size=2").json()
    assert [i["id"] for i in page1["content"]] == [files[2].pk]
    # The uri downloads the file.
    got = member.client.get(_path(item["uri"]))
    assert got.status_code == 200
    assert body_of(got) == storage.data_file_path(files[0]).read_bytes()


def test_available_is_206_while_running_with_files_and_204_without(member, staged_order):
    order = _set_status(staged_order, OrderStatus.RUNNING)
    response = member.client.get(f"{API}/orders/{order.pk}/files/available")
    assert response.status_code == 206 and response.json()["metadata"]["totalElements"] == 3
    OrderDataFile.unscoped_objects.filter(order_id=order.pk).update(state=FileState.PENDING)
    assert member.client.get(f"{API}/orders/{order.pk}/files/available").status_code == 204


def test_available_is_403_for_someone_else_404_unknown_and_ok_for_admin(member, admin_member, staged_order):
    stranger = make_member(member.project)
    assert stranger.client.get(f"{API}/orders/{staged_order.pk}/files/available").status_code == 403
    assert member.client.get(f"{API}/orders/999999/files/available").status_code == 404
    assert admin_member.client.get(f"{API}/orders/{staged_order.pk}/files/available").status_code == 200


def test_dataset_task_files_list_every_file_with_its_state(member, staged_order, django_assert_max_num_queries):
    task = staged_order.dataset_tasks.model.unscoped_objects.get(order=staged_order)
    first = order_files(staged_order)[0]
    OrderDataFile.unscoped_objects.filter(pk=first.pk).update(state=FileState.DOWNLOADED)
    with django_assert_max_num_queries(9):
        response = member.client.get(f"{API}/orders/{staged_order.pk}/dataset/{task.pk}/files?size=10")
    assert response.status_code == 200
    content = response.json()["content"]
    assert [(i["id"], i["state"]) for i in content] == [(f.pk, f.state) for f in order_files(staged_order)]
    assert content[0]["state"] == "DOWNLOADED"
    assert member.client.get(f"{API}/orders/{staged_order.pk}/dataset/999999/files").status_code == 404


# --- single file -----------------------------------------------------------------------------

def test_file_download_sends_bytes_headers_and_marks_downloaded(member, staged_order):
    f = order_files(staged_order)[0]
    data = storage.data_file_path(f).read_bytes()
    response = member.client.get(f"{API}/orders/files/{f.pk}")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Length"] == str(len(data)) == "300"
    assert response["Accept-Ranges"] == "bytes"
    assert response["ETag"] == f'"sha256-{f.sha256}"'
    assert response["X-Checksum-MD5"] == hashlib.md5(data).hexdigest()
    assert response["Repr-Digest"] == f"sha-256=:{base64.b64encode(hashlib.sha256(data).digest()).decode()}:"
    # Nothing is marked before the bytes were sent.
    assert states(staged_order)[f.pk] == FileState.AVAILABLE
    assert body_of(response) == data
    assert states(staged_order)[f.pk] == FileState.DOWNLOADED


def test_ranges_and_if_range(member, staged_order):
    f = order_files(staged_order)[0]
    data = storage.data_file_path(f).read_bytes()
    url = f"{API}/orders/files/{f.pk}"
    head = member.client.get(url, HTTP_RANGE="bytes=10-19")
    assert head.status_code == 206 and head["Content-Range"] == "bytes 10-19/300"
    assert head["Content-Length"] == "10" and body_of(head) == data[10:20]
    assert states(staged_order)[f.pk] == FileState.AVAILABLE  # the end was not sent
    stale = member.client.get(url, HTTP_RANGE="bytes=10-", HTTP_IF_RANGE='"other"')
    assert stale.status_code == 200 and len(body_of(stale)) == 300
    assert member.client.get(url, HTTP_RANGE="bytes=300-").status_code == 416
    assert member.client.get(url, HTTP_RANGE="bytes=300-")["Content-Range"] == "bytes */300"
    OrderDataFile.unscoped_objects.filter(pk=f.pk).update(state=FileState.AVAILABLE)
    tail = member.client.get(url, HTTP_RANGE="bytes=-50", HTTP_IF_RANGE=f'"sha256-{f.sha256}"')
    assert tail.status_code == 206 and body_of(tail) == data[-50:]
    assert states(staged_order)[f.pk] == FileState.DOWNLOADED  # the range reached the end


def test_an_interrupted_download_marks_nothing(member, project):
    order = order_of(member, make_objects(project, count=1, files=(("RAWDATA", 3 * 1024 * 1024),)))
    with project_scope(project):
        order_build(project=project, order_id=order.pk)
    OrderDataFile.unscoped_objects.filter(order_id=order.pk).update(state=FileState.AVAILABLE)
    f = order_files(order)[0]
    response = member.client.get(f"{API}/orders/files/{f.pk}")
    # The test client's closing wrapper (what a WSGI server does on hang-up: close the iterator).
    stream = response._iterator
    assert len(next(stream)) == 1024 * 1024
    stream.close()  # the client hung up after the first chunk
    assert states(order)[f.pk] == FileState.AVAILABLE


def test_file_states_and_order_states_give_their_codes(member, project):
    order = order_of(member, make_objects(project, count=2))
    with project_scope(project):
        order_build(project=project, order_id=order.pk)
    pending, failed = order_files(order)
    OrderDataFile.unscoped_objects.filter(pk=failed.pk).update(state=FileState.ERROR, error_reason="tape")
    assert member.client.get(f"{API}/orders/files/{pending.pk}").status_code == 202
    errored = member.client.get(f"{API}/orders/files/{failed.pk}")
    assert errored.status_code == 422 and errored.json() == {"messages": ["FILE_IN_ERROR"]}
    assert member.client.get(f"{API}/orders/files/999999").status_code == 404
    assert make_member(project).client.get(f"{API}/orders/files/{pending.pk}").status_code == 403
    Order.unscoped_objects.filter(pk=order.pk).update(expiration_date=timezone.now() - dt.timedelta(minutes=1))
    assert member.client.get(f"{API}/orders/files/{pending.pk}").status_code == 410


def test_a_file_missing_on_disk_is_422_and_download_error(member, staged_order):
    f = order_files(staged_order)[1]
    storage.data_file_path(f).unlink()
    response = member.client.get(f"{API}/orders/files/{f.pk}")
    assert response.status_code == 422 and response.json() == {"messages": ["FILE_UNREADABLE"]}
    assert states(staged_order)[f.pk] == FileState.DOWNLOAD_ERROR


def test_admin_may_download_someone_elses_file(admin_member, staged_order):
    f = order_files(staged_order)[2]
    response = admin_member.client.get(f"{API}/orders/files/{f.pk}")
    assert response.status_code == 200 and len(body_of(response)) == 300


# --- public token ---------------------------------------------------------------------------

def test_public_file_download_with_the_order_token(member, staged_order):
    f = order_files(staged_order)[0]
    token = order_token_for(staged_order)
    anonymous = APIClient()
    url = f"{API}/orders/public/files/{f.pk}"
    head = anonymous.head(url, {"orderToken": token, "scope": "alpha"})
    assert head.status_code == 200 and head["Content-Length"] == "300" and head.content == b""
    assert states(staged_order)[f.pk] == FileState.AVAILABLE  # HEAD never marks
    got = anonymous.get(url, {"orderToken": token, "scope": "alpha"})
    assert got.status_code == 200 and body_of(got) == storage.data_file_path(f).read_bytes()
    assert states(staged_order)[f.pk] == FileState.DOWNLOADED
    assert anonymous.get(url, {"orderToken": token + "x", "scope": "alpha"}).status_code == 401
    assert anonymous.get(url, {"scope": "alpha"}).status_code == 401
    assert anonymous.get(url, {"orderToken": token}).status_code == 400
    assert anonymous.get(url, {"orderToken": token, "scope": "nope"}).status_code == 404


def test_a_token_is_bound_to_its_order_and_expires_with_it(member, staged_order):
    other = reload(order_of(member, make_objects(member.project, count=1, label="Other"), label="other"))
    f = order_files(staged_order)[0]
    anonymous = APIClient()
    url = f"{API}/orders/public/files/{f.pk}"
    assert anonymous.get(url, {"orderToken": order_token_for(other), "scope": "alpha"}).status_code == 401
    Order.unscoped_objects.filter(pk=staged_order.pk).update(status=OrderStatus.EXPIRED)
    assert anonymous.get(url, {"orderToken": order_token_for(staged_order), "scope": "alpha"}).status_code == 410


# --- paging a big order by positions ---------------------------------------------------------

def test_file_lists_page_by_positions_and_match_the_offset_pages(member, run_tasks, django_assert_max_num_queries):
    """The build numbers the files 1..N in id order over the order's dataset tasks; pages of
    files/available and of each task's list are ranges of positions, equal to what COUNT and
    OFFSET give, and files/available falls back to them once a file is not downloadable."""
    objects = (make_objects(member.project, count=4, files=(("RAWDATA", 50), ("RAWDATA", 10)), label="A")
               + make_objects(member.project, count=3, files=(("RAWDATA", 70),), label="B"))
    order = reload(order_of(member, objects, run=run_tasks))
    files = order_files(order)
    assert [f.position for f in files] == list(range(1, 12))
    tasks = list(DatasetTask.unscoped_objects.filter(order_id=order.pk).order_by("id"))
    assert [t.first_position for t in tasks] == [1, 9] and [t.files_count for t in tasks] == [8, 3]

    def pages(url, size):
        seen, page = [], 0
        while True:
            body = member.client.get(url, {"page": page, "size": size}).json()
            seen.append((body["metadata"]["totalElements"], [i["id"] for i in body["content"]]))
            if not body["content"]:
                return seen
            page += 1

    def offset_pages(queryset, size):
        total = queryset.count()
        ids = list(queryset.values_list("id", flat=True))
        return [(total, ids[i : i + size]) for i in range(0, total + size, size)][: total // size + 1 + (total % size > 0)]

    available = f"{API}/orders/{order.pk}/files/available"
    by_task = {t.pk: OrderDataFile.unscoped_objects.filter(order_id=order.pk, sub_order__dataset_task=t).order_by("id")
               for t in tasks}
    for size in (1, 3, 5, 50):
        assert pages(available, size) == offset_pages(OrderDataFile.unscoped_objects.filter(order_id=order.pk)
                                                      .order_by("id"), size)
        for task_id, queryset in by_task.items():
            assert pages(f"{API}/orders/{order.pk}/dataset/{task_id}/files", size) == offset_pages(queryset, size)
    with django_assert_max_num_queries(8):
        assert member.client.get(available, {"page": 2, "size": 3}).status_code == 200
    with project_scope(member.project):
        from orders.downloads import selectors
        from orders.selectors import order_for_caller

        def listed():
            found = order_for_caller(project=member.project, user=member.user, order_id=order.pk,
                                               is_admin=False)
            return selectors.files_available(project=member.project, order=found)

        assert listed().first_position == 1
        # A file in error: files/available lists the others, by COUNT and OFFSET again.
        OrderDataFile.unscoped_objects.filter(pk=files[3].pk).update(state=FileState.DOWNLOAD_ERROR)
        # Counters not recounted yet: the page of positions comes back short, and is paged exactly.
        assert listed().page(offset=3, size=3)[0] == list(OrderDataFile.unscoped_objects.filter(
            order_id=order.pk, state__in=["AVAILABLE", "DOWNLOADED"]).order_by("id")[3:6])
        # As a download failure does, its sub-order recounted: COUNT and OFFSET from the start.
        from orders.progress import order_progress_refresh

        order_progress_refresh(project=member.project, order_id=order.pk, sub_order_ids=[files[3].sub_order_id])
        assert listed().first_position is None
    downloadable = OrderDataFile.unscoped_objects.filter(order_id=order.pk).exclude(pk=files[3].pk).order_by("id")
    assert pages(available, 3) == offset_pages(downloadable, 3)
