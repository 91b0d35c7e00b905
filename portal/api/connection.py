"""Has the client of a long response hung up? Asked between chunks of a stream that may stay
silent for a long time (Server-Sent Events), so its server thread and slot are freed at once
instead of at the next write that fails (a heartbeat, seconds later)."""
from __future__ import annotations

import select
import socket
from typing import Callable


def _client_socket(request) -> socket.socket | None:
    sock = request.META.get("gunicorn.socket")
    if sock is None:
        # Django's own server (runserver, live_server): wsgi.input is a LimitedStream over
        # the socket's buffered reader; reach the socket under it (no public way).
        reader = getattr(getattr(request.META.get("wsgi.input"), "_read", None), "__self__", None)
        sock = getattr(getattr(reader, "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def client_gone_check(request) -> Callable[[], bool]:
    """A function telling whether the peer closed its side of the connection. A client of a
    stream sends nothing after its request, so a readable socket with no bytes means EOF."""
    sock = _client_socket(request)
    if sock is None:
        return lambda: False

    def client_gone() -> bool:
        try:
            poller = select.poll()  # not select(): a busy server has descriptors past 1024
            poller.register(sock, select.POLLIN)
            if not poller.poll(0):
                return False
            return sock.recv(1, socket.MSG_PEEK) == b""
        except ValueError:  # a TLS socket cannot peek: rely on the next write failing
            return False
        except OSError:  # reset by the peer, or already closed
            return True
    return client_gone
