"""Listing (user and ADMIN), search, and the streamed CSV export."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext

from orders.models import DatasetTask, Order, OrderStatus
from orders.serializers import iso_utc
from tests.conftest import make_member

from .conftest import ADMIN_ORDERS_URL, ORDERS_URL

pytestmark = pytest.mark.django_db
HEADER = "ORDER_ID;CREATION_DATE;EXPIRATION_DATE;OWNER;STATUS;STATUS_DATE;PERCENT_COMPLETE;FILES_IN_ERROR;" \
         "FILES_SIZE;FILES_COUNT"
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)


def _orders(project, owner, count, *, status=OrderStatus.RUNNING, start=T0, tasks=2, prefix="o"):
    """Order rows made directly (listing does not care how they were processed)."""
    made = []
    for i in range(count):
        created = start + timedelta(hours=i)
        order = Order.unscoped_objects.create(
            project=project, owner=owner, label=f"{prefix}{i}", creation_date=created, status=status,
            status_date=created, expiration_date=created + timedelta(days=3), files_count=i, files_size=10 * i)
        for t in range(tasks):
            DatasetTask.unscoped_objects.create(project=project, order=order, dataset_label=f"ds{t}",
                                                dataset_ip_id=f"URN:{t}", files_count=1)
        made.append(order)
    return made


def test_user_list_is_theirs_newest_first_without_deleted(member, project):
    mine = _orders(project, member.user, 3)
    _orders(project, member.user, 1, status=OrderStatus.DELETED, prefix="gone")
    _orders(project, make_member(project).user, 2, prefix="other")
    body = member.client.get(ORDERS_URL, {"page": 0, "size": 2}).json()
    assert body["metadata"] == {"size": 2, "totalElements": 3, "totalPages": 2, "number": 0}
    assert [item["content"]["id"] for item in body["content"]] == [mine[2].pk, mine[1].pk]
    assert body["links"] == []
    assert [t["datasetLabel"] for t in body["content"][0]["content"]["datasetTasks"]] == ["ds0", "ds1"]
    second = member.client.get(ORDERS_URL, {"page": 1, "size": 2}).json()
    assert [item["content"]["id"] for item in second["content"]] == [mine[0].pk]


def test_listed_orders_read_as_the_order_itself_dates_to_the_millisecond(member, project):
    # PostgreSQL formats a list's dates and aggregates its tasks in SQL; the body of one order is
    # made in Python: both must say the same, truncated (not rounded) to the millisecond.
    order = _orders(project, member.user, 1, tasks=3)[0]
    Order.unscoped_objects.filter(pk=order.pk).update(
        creation_date=datetime(2026, 3, 2, 10, 4, 5, 123999, tzinfo=timezone.utc),
        expiration_date=datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
        status_date=datetime(2026, 3, 2, 12, 0, tzinfo=timezone(timedelta(hours=5))))
    listed = member.client.get(ORDERS_URL).json()["content"][0]
    alone = member.client.get(f"{ORDERS_URL}/{order.pk}").json()
    assert listed == alone
    assert listed["content"]["creationDate"] == "2026-03-02T10:04:05.123Z"
    assert listed["content"]["expirationDate"] == "2026-12-31T23:59:59.999Z"
    assert listed["content"]["statusDate"] == "2026-03-02T07:00:00.000Z"
    assert [t["datasetLabel"] for t in listed["content"]["datasetTasks"]] == ["ds0", "ds1", "ds2"]


def test_user_list_query_count_is_flat(member, project):
    def queries_for_list() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert member.client.get(ORDERS_URL, {"size": 100}).status_code == 200
        return len(ctx.captured_queries)

    _orders(project, member.user, 1)
    queries_for_list()  # warm-up: the token's first use is recorded once
    one = queries_for_list()
    _orders(project, member.user, 49, start=T0 + timedelta(days=10), prefix="more")
    assert member.client.get(ORDERS_URL, {"size": 100}).json()["metadata"]["totalElements"] == 50
    assert queries_for_list() == one


def test_admin_list_query_count_is_flat(admin_member, project):
    owners = [make_member(project).user for _ in range(3)]

    def queries_for_list() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert admin_member.client.get(ADMIN_ORDERS_URL, {"size": 100}).status_code == 200
        return len(ctx.captured_queries)

    _orders(project, owners[0], 1)
    queries_for_list()  # warm-up: the token's first use is recorded once
    one = queries_for_list()
    for index, owner in enumerate(owners):
        _orders(project, owner, 17 if index == 0 else 16, start=T0 + timedelta(days=10 + index), prefix=f"m{index}")
    assert queries_for_list() == one


def test_admin_filters(admin_member, member, project):
    other = make_member(project)
    a = _orders(project, member.user, 2)
    b = _orders(project, other.user, 2, status=OrderStatus.DONE, start=T0 + timedelta(days=5), prefix="b")
    url = ADMIN_ORDERS_URL

    def ids(params):
        response = admin_member.client.get(url, params)
        assert response.status_code == 200, response.content
        return sorted(item["content"]["id"] for item in response.json()["content"])

    assert ids({}) == sorted(o.pk for o in a + b)
    assert ids({"user": member.user.email}) == sorted(o.pk for o in a)
    assert ids({"status": "DONE"}) == sorted(o.pk for o in b)
    assert ids({"status": "DONE,RUNNING"}) == sorted(o.pk for o in a + b)
    assert ids({"from": (T0 + timedelta(days=1)).isoformat()}) == sorted(o.pk for o in b)
    assert ids({"to": "2026-03-02"}) == sorted(o.pk for o in a)
    assert admin_member.client.get(url, {"from": "yesterday"}).status_code == 400
    assert admin_member.client.get(url, {"status": "NOPE"}).status_code == 400


def test_admin_search_body(admin_member, member, project):
    a = _orders(project, member.user, 2)
    b = _orders(project, member.user, 1, status=OrderStatus.PAUSED, prefix="p")
    Order.unscoped_objects.filter(pk=a[0].pk).update(waiting_for_user=True)
    url = ADMIN_ORDERS_URL + "/search"

    def ids(body):
        response = admin_member.client.post(url, body, format="json")
        assert response.status_code == 200, response.content
        return sorted(item["content"]["id"] for item in response.json()["content"])

    assert ids({}) == sorted(o.pk for o in a + b)
    assert ids({"statuses": {"values": ["PAUSED"], "mode": "EXCLUDE"}}) == sorted(o.pk for o in a)
    assert ids({"statuses": {"values": ["PAUSED"], "mode": "INCLUDE"}, "owner": member.user.email}) == [b[0].pk]
    assert ids({"waitingForUser": True}) == [a[0].pk]
    assert ids({"creationDate": {"after": (T0 + timedelta(minutes=30)).isoformat(),
                                 "before": (T0 + timedelta(hours=1, minutes=30)).isoformat()}}) == [a[1].pk]
    bad = admin_member.client.post(url, {"statuses": {"values": ["NOPE"]}}, format="json")
    assert bad.status_code == 400


def test_admin_endpoints_refuse_a_registered_user(member):
    for response in (member.client.get(ADMIN_ORDERS_URL), member.client.post(ADMIN_ORDERS_URL + "/search", {}),
                     member.client.get(ADMIN_ORDERS_URL + "/csv"),
                     member.client.get(ADMIN_ORDERS_URL, HTTP_ACCEPT="text/csv")):
        assert response.status_code == 403
        assert response["Content-Type"].startswith("application/json")


def _csv(response) -> list[str]:
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Disposition"] == "attachment;filename=orders.csv"
    return b"".join(response.streaming_content).decode().splitlines()


def test_csv_export_three_ways(admin_member, member, project):
    orders = _orders(project, member.user, 3)
    Order.unscoped_objects.filter(pk=orders[1].pk).update(percent_completed=42, files_in_error_count=2)
    for response in (admin_member.client.get(ADMIN_ORDERS_URL + "/csv"),
                     admin_member.client.post(ADMIN_ORDERS_URL + "/csv", {}, format="json"),
                     admin_member.client.get(ADMIN_ORDERS_URL, HTTP_ACCEPT="text/csv")):
        lines = _csv(response)
        assert lines[0] == HEADER
        rows = list(csv.reader(io.StringIO("\n".join(lines[1:])), delimiter=";"))
        assert [int(r[0]) for r in rows] == sorted(o.pk for o in orders)
        second = rows[1]
        assert second == [str(orders[1].pk), "2026-03-02T11:00:00.000Z", "2026-03-05T11:00:00.000Z",
                          member.user.email, "RUNNING", "2026-03-02T11:00:00.000Z", "42", "2", "10", "1"]


def test_csv_filters(admin_member, member, project):
    _orders(project, member.user, 2)
    done = _orders(project, member.user, 1, status=OrderStatus.DONE, prefix="d")
    lines = _csv(admin_member.client.get(ADMIN_ORDERS_URL + "/csv", {"status": "DONE"}))
    assert len(lines) == 2 and lines[1].startswith(f"{done[0].pk};")
    lines = _csv(admin_member.client.post(ADMIN_ORDERS_URL + "/csv", {"statuses": {"values": ["DONE"],
                                                                                    "mode": "EXCLUDE"}},
                                          format="json"))
    assert len(lines) == 3


def test_missing_dates_are_empty_fields():
    assert iso_utc(None) is None
    from orders.csv import orders_csv_lines  # noqa: F401  (formatting of None -> "" lives there)
    assert (iso_utc(None) or "") == ""


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the COPY path is PostgreSQL's")
def test_csv_copy_path_writes_what_the_python_writer_writes(admin_member, project):
    """On PostgreSQL the rows come from COPY ... TO STDOUT: byte for byte what csv.writer and
    iso_utc write (quoting, truncated milliseconds, empty dates)."""
    from orders.csv import _copied_lines, _written_lines
    from orders.selectors import OrderFilters
    from portal.tenancy.scope import project_scope

    odd = make_member(project, email='odd;"name"@example.org')
    orders = _orders(project, odd.user, 2, start=T0 + timedelta(microseconds=123_999))
    Order.unscoped_objects.filter(pk=orders[1].pk).update(status_date=datetime(1999, 12, 31, 23, 59, 59, 999_999,
                                                                               tzinfo=timezone.utc))
    with project_scope(project):
        copied = b"".join(_copied_lines(project=project, filters=OrderFilters())).decode()
        written = "".join(_written_lines(project=project, filters=OrderFilters()))
    assert copied == written
    assert '"odd;""name""@example.org"' in copied and "T10:00:00.123Z" in copied
