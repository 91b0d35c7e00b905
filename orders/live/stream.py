"""Live progress of an order: `GET /user/orders/{orderId}/events` (Server-Sent Events).

The stream pushes a `progress` event (status, percentCompleted, availableFilesCount,
filesInErrorCount, waitingForUser and the order's `links`, from the same transitions table as
the order body) whenever one of them changes, and a `files` event with the files that became
available. It polls the database once a second (one light query; the files query only when
the progress changed), sends a comment as heartbeat every 15 s, and ends with an `end` event
when the order reaches a final status, or silently after a maximum duration so no server
thread is held forever (EventSource then reconnects with `Last-Event-ID`).

Event ids are the poll's time in epoch milliseconds: a reconnection (`Last-Event-ID`) or a
page (`?since=`) asks for the files made available since then.
"""
from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone as dt_timezone
from typing import Callable, Iterator

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from portal.tenancy.models import Project
from portal.tenancy.scope import project_scope

from ..models import FINAL_STATUSES, Order
from ..serializers import iso_utc
from ..transitions import order_links
from .selectors import order_files_available_since, order_progress_row

# A file's state_date is stamped before its transaction commits: look back this far (and
# skip the files already sent) so a slow commit is not missed.
FILES_LOOKBACK = timedelta(seconds=60)
FILES_PER_EVENT = 200


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


class _StreamSlots:
    """Open streams of this process: each holds a server thread, so at most
    ORDER_EVENTS_MAX_STREAMS at once leave threads for every other request (the page
    stays a static page when it gets 503)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.open = 0

    def acquire(self) -> bool:
        with self._lock:
            if self.open >= int(_setting("ORDER_EVENTS_MAX_STREAMS", 8)):
                return False
            self.open += 1
            return True

    def release(self) -> None:
        with self._lock:
            self.open = max(0, self.open - 1)


STREAM_SLOTS = _StreamSlots()


def _event(name: str, data: dict, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _progress_data(row: dict, *, is_admin: bool, base_url: str) -> dict:
    # An unsaved Order carries what the transitions table looks at (status, available files).
    links = order_links(Order(id=row["id"], status=row["status"],
                              available_files_count=row["available_files_count"]), is_admin=is_admin)
    base = settings.PORTAL_BASE_URL
    return {
        "id": row["id"], "status": row["status"], "statusDate": iso_utc(row["status_date"]),
        "percentCompleted": row["percent_completed"], "availableFilesCount": row["available_files_count"],
        "filesInErrorCount": row["files_in_error_count"], "waitingForUser": row["waiting_for_user"],
        "links": [{"rel": link["rel"], "href": base_url + link["href"][len(base):]}
                  if link["href"].startswith(base) else link for link in links],
    }


def parse_since(raw: str | None) -> datetime | None:
    """An event id / `since` (epoch ms) -> datetime; anything else -> None (loosely)."""
    raw = (raw or "").strip()
    if not raw.isdigit() or len(raw) > 15:
        return None
    try:
        return datetime.fromtimestamp(int(raw) / 1000, tz=dt_timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def order_event_stream(*, project: Project, order_id: int, is_admin: bool, base_url: str,
                       since: datetime | None = None,
                       client_gone: Callable[[], bool] = lambda: False) -> Iterator[str]:
    """Runs after the view returned: every database read re-enters the project scope (never
    across a `yield`: the next chunk may be pulled in another context). Ends as soon as
    `client_gone()` says the client hung up, which frees its slot."""
    poll = _setting("ORDER_EVENTS_POLL_SECONDS", 1.0)
    heartbeat = _setting("ORDER_EVENTS_HEARTBEAT_SECONDS", 15.0)
    deadline = time.monotonic() + _setting("ORDER_EVENTS_MAX_SECONDS", 600.0)
    file_path = reverse("orders-file", kwargs={"dataFileId": 0}).rsplit("/", 1)[0]
    cursor = since or timezone.now()
    sent: dict[int, datetime] = {}  # files already pushed, within the look-back window
    last_progress = None
    last_sent = time.monotonic()
    yield f"retry: {int(max(poll, 1.0) * 2000)}\n\n"
    while not client_gone():
        now = timezone.now()
        event_id = int(now.timestamp() * 1000)
        with project_scope(project):
            row = order_progress_row(project=project, order_id=order_id)
            new_files = []
            if row is not None and row != last_progress:
                low = cursor - FILES_LOOKBACK
                rows = order_files_available_since(project=project, order_id=order_id, since=low,
                                                   limit=FILES_PER_EVENT + len(sent))
                new_files = [r for r in rows if r[0] not in sent][:FILES_PER_EVENT]
        if row is None:
            yield _event("end", {"id": order_id, "status": None}, event_id)
            return
        chunks = []
        if row != last_progress:
            chunks.append(_event("progress", _progress_data(row, is_admin=is_admin, base_url=base_url), event_id))
            last_progress = row
            if new_files:
                chunks.append(_event("files", {"files": [
                    {"id": file_id, "filename": name, "fileSize": size, "state": state,
                     "uri": f"{base_url}{file_path}/{file_id}?scope={project.slug}"}
                    for file_id, name, size, state, _ in new_files]}, event_id))
                sent.update({r[0]: r[4] for r in new_files})
            cursor = now
            sent = {k: v for k, v in sent.items() if v >= cursor - FILES_LOOKBACK}
        if row["status"] in FINAL_STATUSES:
            chunks.append(_event("end", {"id": order_id, "status": row["status"]}, event_id))
            yield "".join(chunks)
            return
        if chunks:
            yield "".join(chunks)
            last_sent = time.monotonic()
        elif time.monotonic() - last_sent >= heartbeat:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()
        if time.monotonic() >= deadline:
            return
        time.sleep(poll)
