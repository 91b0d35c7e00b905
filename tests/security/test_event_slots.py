"""Event-stream slots are freed as soon as their client is gone, and a refusal says when to
come back (issue 11, item 7). Runs a real HTTP server: only a socket shows a hang-up."""
from __future__ import annotations

import http.client
import socket
import time
from urllib.parse import urlsplit

import pytest

from orders.live.stream import STREAM_SLOTS
from tests.conftest import make_member
from tests.orders.conftest import make_objects, order_of

EVENTS = "/api/v1/rs-order/user/orders/{}/events"


def _open_stream(address, path, token, scope) -> socket.socket:
    """A raw client that sends the request, reads the first bytes and then just holds on."""
    sock = socket.create_connection(address, timeout=10)
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                  f"Authorization: Bearer {token}\r\nscope: {scope}\r\n\r\n").encode())
    head = sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    return sock


def _wait_for(predicate, seconds: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"not within {seconds} s")


@pytest.mark.django_db(transaction=True)
def test_slots_of_clients_that_hung_up_are_free_within_seconds(live_server, project, settings):
    # Heartbeats far apart: only noticing the hang-up itself can free the slots quickly.
    settings.ORDER_EVENTS_MAX_STREAMS = 3
    settings.ORDER_EVENTS_POLL_SECONDS = 0.1
    settings.ORDER_EVENTS_HEARTBEAT_SECONDS = 60
    member = make_member(project)
    order = order_of(member, make_objects(project, count=1))
    address = urlsplit(live_server.url).hostname, urlsplit(live_server.url).port
    path = EVENTS.format(order.pk)

    streams = [_open_stream(address, path, member.token, project.slug) for _ in range(3)]
    _wait_for(lambda: STREAM_SLOTS.open == 3, 5)

    # A fourth is refused, with a Retry-After.
    conn = http.client.HTTPConnection(*address, timeout=10)
    conn.request("GET", path, headers={"Authorization": f"Bearer {member.token}", "scope": project.slug})
    refused = conn.getresponse()
    assert refused.status == 503
    assert int(refused.getheader("Retry-After")) > 0
    refused.read()
    conn.close()

    # The clients hang up; their slots come back well before any heartbeat would be sent.
    for sock in streams:
        sock.close()
    _wait_for(lambda: STREAM_SLOTS.open == 0, 3)
    again = _open_stream(address, path, member.token, project.slug)
    again.close()
    _wait_for(lambda: STREAM_SLOTS.open == 0, 3)


def test_a_refused_stream_carries_retry_after(member, project, settings):
    settings.ORDER_EVENTS_MAX_STREAMS = 0
    order = order_of(member, make_objects(project, count=1))
    refused = member.client.get(EVENTS.format(order.pk))
    assert refused.status_code == 503
    assert int(refused["Retry-After"]) >= 1
    assert refused.json() == {"messages": ["TOO_MANY_EVENT_STREAMS"]}
