"""GET /user/orders/{id}/events: Server-Sent Events read from the streaming response while the
order changes through the services."""
from __future__ import annotations

import json
import time

import pytest

from orders import build, services, staging
from orders.live.stream import parse_since
from orders.models import OrderStatus, SubOrder, SubOrderState
from portal.tenancy.models import Role
from portal.tenancy.scope import project_scope
from tests.conftest import make_member
from tests.orders.conftest import make_objects, order_of, reload

from .conftest import logged_in

EVENTS = "/api/v1/rs-order/user/orders/{}/events"


OPEN_STREAMS: list = []


def close(response) -> None:
    """Closes a streaming response as the server would, without closing the test's database
    connection (like Django's test client does when a stream is read to its end)."""
    from django.core.signals import request_finished
    from django.db import close_old_connections

    request_finished.disconnect(close_old_connections)
    try:
        response.close()
    finally:
        request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def fast_polls(db, settings):
    settings.ORDER_EVENTS_POLL_SECONDS = 0.01
    settings.ORDER_EVENTS_HEARTBEAT_SECONDS = 15
    settings.ORDER_EVENTS_MAX_SECONDS = 30
    yield
    while OPEN_STREAMS:  # streams a test stopped reading: close their generators
        close(OPEN_STREAMS.pop())


class Events:
    """Parses `text/event-stream` chunks pulled one by one from the streaming response."""

    def __init__(self, response):
        assert response.status_code == 200, response.content
        assert response["Content-Type"].startswith("text/event-stream")
        self.chunks = iter(response.streaming_content)
        OPEN_STREAMS.append(response)
        self.buffer = ""
        self.comments = 0

    def block(self) -> str:
        """The next raw block (an event, `retry:` or a comment)."""
        while "\n\n" not in self.buffer:
            self.buffer += next(self.chunks).decode()
        block, self.buffer = self.buffer.split("\n\n", 1)
        return block

    def next(self, *names: str) -> tuple[str, dict]:
        """The next event (of one of `names` when given), skipping others and comments."""
        while True:
            block = self.block()
            if block.startswith(":"):
                self.comments += 1
                continue
            fields = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line)
            if "event" not in fields:
                continue  # retry:
            if not names or fields["event"] in names:
                return fields["event"], {**json.loads(fields["data"]), "_id": fields.get("id")}

    def rest(self) -> str:
        return self.buffer + "".join(c.decode() for c in self.chunks)


def _stage_all(project, order):
    with project_scope(project):
        build.order_build(project=project, order_id=order.pk)
        for sub_id in SubOrder.objects.filter(order_id=order.pk, state=SubOrderState.STAGING).values_list("id", flat=True):
            staging.suborder_stage(project=project, sub_order_id=sub_id)


def test_progress_files_and_end_are_pushed_as_the_order_changes(member, project):
    objects = make_objects(project, count=3, files=(("RAWDATA", 100),))
    order = order_of(member, objects)
    events = Events(member.client.get(EVENTS.format(order.pk), HTTP_ACCEPT="text/event-stream"))

    name, first = events.next()
    assert name == "progress"
    assert (first["status"], first["percentCompleted"], first["availableFilesCount"]) == ("PENDING", 0, 0)
    assert {link["rel"] for link in first["links"]} == {"self", "list", "pause", "extend"}
    assert int(first["_id"]) > 0

    with project_scope(project):
        services.order_pause(project=project, order_id=order.pk)
    name, paused = events.next()
    assert (name, paused["status"]) == ("progress", "PAUSED")
    assert {link["rel"] for link in paused["links"]} == {"self", "list", "resume", "delete", "extend"}

    with project_scope(project):
        services.order_resume(project=project, order_id=order.pk)
    _stage_all(project, order)
    assert reload(order).status == OrderStatus.DONE
    name, done = events.next("progress")
    assert (done["status"], done["percentCompleted"], done["availableFilesCount"]) == ("DONE", 100, 3)
    assert done["filesInErrorCount"] == 0 and done["waitingForUser"] is False
    name, files = events.next("files")
    assert len(files["files"]) == 3
    assert {f["state"] for f in files["files"]} == {"AVAILABLE"}
    assert all(f["uri"].endswith(f"/api/v1/rs-order/orders/files/{f['id']}?scope=alpha") for f in files["files"])
    name, end = events.next()
    assert (name, end["status"]) == ("end", "DONE")
    assert events.rest() == ""  # the stream stops at a final status


def test_files_are_pushed_once_and_uris_download_with_the_session(member, project, settings):
    objects = make_objects(project, count=2, files=(("RAWDATA", 50),))
    order = order_of(member, objects)
    with project_scope(project):
        build.order_build(project=project, order_id=order.pk)
    events = Events(member.client.get(EVENTS.format(order.pk)))
    _, running = events.next("progress")
    assert running["status"] == "RUNNING" and running["availableFilesCount"] == 0
    sub_ids = list(SubOrder.unscoped_objects.filter(order_id=order.pk).values_list("id", flat=True))
    with project_scope(project):
        staging.suborder_stage(project=project, sub_order_id=sub_ids[0])
    _, files = events.next("files")
    uri = files["files"][0]["uri"]
    response = logged_in(member).get(uri)
    assert response.status_code == 200 and len(b"".join(response.streaming_content)) == 50


def test_a_final_order_gets_one_progress_event_and_end(member, project, run_tasks):
    order = order_of(member, make_objects(project, count=1), run=run_tasks)
    events = Events(member.client.get(EVENTS.format(order.pk)))
    assert events.next()[1]["status"] == "DONE"
    assert events.next("end")[1]["status"] == "DONE"
    assert events.rest() == ""


def test_a_removed_order_ends_the_stream(member, project):
    order = order_of(member, make_objects(project, count=1))
    events = Events(member.client.get(EVENTS.format(order.pk)))
    events.next("progress")
    with project_scope(project):
        services.order_remove(project=project, order_id=order.pk)
    name, data = events.next()
    assert (name, data["status"]) == ("end", None)


def test_heartbeat_and_maximum_duration(member, project, settings):
    settings.ORDER_EVENTS_HEARTBEAT_SECONDS = 0.05
    settings.ORDER_EVENTS_MAX_SECONDS = 0.5
    order = order_of(member, make_objects(project, count=1))  # stays PENDING
    started = time.monotonic()
    events = Events(member.client.get(EVENTS.format(order.pk)))
    events.next("progress")
    rest = events.rest()  # returns: the stream ends by itself
    assert time.monotonic() - started < 5
    assert ": keep-alive" in rest and "event: end" not in rest


def test_access_rules_are_those_of_get_order(member, project, other_project):
    order = order_of(member, make_objects(project, count=1))
    colleague = make_member(project)
    assert colleague.client.get(EVENTS.format(order.pk)).status_code == 403
    assert member.client.get(EVENTS.format(order.pk + 1000)).status_code == 404
    outsider = make_member(other_project)
    assert outsider.client.get(EVENTS.format(order.pk)).status_code == 404  # not in beta
    outsider.client.credentials(HTTP_AUTHORIZATION=f"Bearer {outsider.token}", HTTP_SCOPE="alpha")
    assert outsider.client.get(EVENTS.format(order.pk)).status_code == 403
    response = colleague.client.get(EVENTS.format(order.pk), HTTP_ACCEPT="text/event-stream")
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {"messages": ["USER_NOT_ALLOWED_TO_MANAGE_ORDER"]}
    admin = make_member(project, Role.ADMIN)
    events = Events(admin.client.get(EVENTS.format(order.pk)))
    assert events.next()[1]["status"] == "PENDING"
    # A browser session (what the order page's EventSource uses) with ?scope=.
    events = Events(logged_in(member).get(EVENTS.format(order.pk) + "?scope=alpha"))
    assert events.next()[0] == "progress"


def test_last_event_id_resends_files_made_available_since(member, project, run_tasks):
    order = order_of(member, make_objects(project, count=2), run=run_tasks)
    # Reconnecting with an id from before the files became available: they come again.
    old = str(int((reload(order).creation_date.timestamp() - 1) * 1000))
    events = Events(member.client.get(EVENTS.format(order.pk), HTTP_LAST_EVENT_ID=old))
    assert len(events.next("files")[1]["files"]) == 2
    # From now on: none is new.
    events = Events(member.client.get(EVENTS.format(order.pk), HTTP_LAST_EVENT_ID=str(int(time.time() * 1000) + 120_000)))
    assert "event: files" not in events.rest()


def test_parse_since_is_loose():
    assert parse_since("1700000000000").year == 2023
    assert parse_since("garbage") is None and parse_since("") is None and parse_since("9" * 40) is None


def test_an_idle_poll_is_one_query(member, project, settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.ORDER_EVENTS_HEARTBEAT_SECONDS = 0.03
    order = order_of(member, make_objects(project, count=1))
    events = Events(member.client.get(EVENTS.format(order.pk)))
    events.next("progress")
    with CaptureQueriesContext(connection) as queries:
        blocks = [events.block(), events.block()]  # heartbeats come only after idle polls
    assert all(block.startswith(": keep-alive") for block in blocks)
    assert len(queries.captured_queries) >= 2
    assert all('"orders_order"' in q["sql"] and "orders_orderdatafile" not in q["sql"]
               for q in queries.captured_queries)


def test_open_streams_are_capped_and_released_when_closed(member, project, settings):
    from orders.live.stream import STREAM_SLOTS

    settings.ORDER_EVENTS_MAX_STREAMS = 2
    order = order_of(member, make_objects(project, count=1))
    first = member.client.get(EVENTS.format(order.pk))
    second = member.client.get(EVENTS.format(order.pk))
    assert STREAM_SLOTS.open == 2
    refused = member.client.get(EVENTS.format(order.pk))
    assert refused.status_code == 503
    assert json.loads(refused.content) == {"messages": ["TOO_MANY_EVENT_STREAMS"]}
    close(first)  # never read: still released
    assert STREAM_SLOTS.open == 1
    third = member.client.get(EVENTS.format(order.pk))
    assert third.status_code == 200
    close(second)
    close(third)
    assert STREAM_SLOTS.open == 0
