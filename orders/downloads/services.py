"""Downloads of order files: the checks before serving one, streaming it, and the metalink.

Rule for DOWNLOADED (single files and zip entries alike): a file becomes DOWNLOADED once a
response carried its LAST byte and the server took that chunk (asked for the next one), be
it a full download or the range that ends at the file's end (a resumed download). A client
hanging up earlier marks nothing; HEAD never marks. The order zip is in `archive`.

Streams run after the view returned (and its project scope ended): every database access in
a generator re-enters `project_scope(project)`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator
from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from portal.catalog.storage import Locator
from portal.errors import Failed, Gone, NotFound, NotReady
from portal.files.metalink import MetalinkFile, metalink_chunks
from portal.files.ranges import ByteRange, ShortRead, read_range
from portal.tenancy.models import Project
from portal.tenancy.scope import project_scope

from .. import progress as order_progress
from ..cache import NOT_RESTORED, order_file_place
from ..models import FileState, Order, OrderDataFile, OrderStatus
from . import codes, selectors

CHUNK_SIZE = 1024 * 1024
# Metalinks are not offered for orders in these statuses (nothing is, or will be, downloadable).
METALINK_FORBIDDEN_STATUSES = (OrderStatus.DELETED, OrderStatus.EXPIRED, OrderStatus.PENDING, OrderStatus.FAILED)


# --- where the bytes are -------------------------------------------------------------------

@dataclass(frozen=True)
class FileSource:
    opener: Callable[[], BinaryIO] | None
    problem: str | None = None  # why it cannot be read, when it cannot

    @property
    def readable(self) -> bool:
        return self.problem is None


def order_file_source(order_file: OrderDataFile) -> FileSource:
    """How to read a staged file, or why it cannot be read (checked without reading it)."""
    place = order_file_place(tier=order_file.tier, location=order_file.location, cache_path=order_file.cache_path)
    if place is None:
        return FileSource(None, NOT_RESTORED)
    locator = Locator()
    problem = locator.problem(place.area, place.key, order_file.size, missing=place.missing, trust_online=False)
    if problem:
        return FileSource(None, problem)
    return FileSource(lambda: locator.open(place.area, place.key))


# --- checks shared by the endpoints ----------------------------------------------------------

def order_is_expired(order: Order) -> bool:
    return order.status == OrderStatus.EXPIRED or order.expiration_date <= timezone.now()


def order_check_files_servable(order: Order) -> None:
    """410 for an expired order, 404 for a deleted one (its files were freed)."""
    if order.status == OrderStatus.DELETED:
        raise NotFound(codes.ORDER_FILE_NOT_FOUND, "This order was deleted.")
    if order_is_expired(order):
        raise Gone(codes.ORDER_EXPIRED, "This order has expired.")


def order_file_check_servable(order_file: OrderDataFile) -> FileSource:
    """202 while PENDING, 422 in error or unreadable, 410/404 for expired/deleted orders."""
    order_check_files_servable(order_file.order)
    if order_file.state == FileState.PENDING:
        raise NotReady(codes.FILE_NOT_AVAILABLE_YET, "The file is not available yet.")
    if order_file.state in (FileState.ERROR, FileState.PROCESSING_ERROR):
        raise Failed(codes.FILE_IN_ERROR,
                     order_file.error_reason or "The file could not be staged.")
    source = order_file_source(order_file)
    if not source.readable:
        order_progress.order_files_mark_download_failed(
            project=order_file.order.project, order=order_file.order,
            file_ids_with_reasons={order_file.pk: source.problem})
        raise Failed(codes.FILE_UNREADABLE, source.problem)
    return source


# --- single file ---------------------------------------------------------------------------

def order_file_etag(order_file: OrderDataFile) -> str:
    return f'"sha256-{order_file.sha256 or order_file.checksum}"'


def order_file_stream(*, project: Project, order_file: OrderDataFile, source: FileSource,
                      byte_range: ByteRange | None, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """The bytes of the file (or of `byte_range`) in chunks; marks it DOWNLOADED once its last
    byte was taken. A file that shrank meanwhile aborts the response (a short body)."""
    size = order_file.size
    start, end = (byte_range.start, byte_range.end) if byte_range else (0, size - 1)
    reaches_end = end == size - 1
    remaining = end - start + 1
    try:
        handle = source.opener()
    except OSError as exc:
        mark_failed(project, order_file.order, {order_file.pk: exc.strerror or str(exc)})
        raise
    try:
        yield from read_range(handle, start, remaining, chunk_size)
    except ShortRead:
        mark_failed(project, order_file.order, {order_file.pk: "file is shorter than its recorded size"})
        raise  # the length is committed: abort, the client sees a short body
    if reaches_end:
        with project_scope(project):
            order_progress.order_files_mark_downloaded(project=project, order=order_file.order,
                                                       file_ids=[order_file.pk])


def mark_failed(project: Project, order: Order, reasons: dict[int, str]) -> None:
    with project_scope(project):
        order_progress.order_files_mark_download_failed(project=project, order=order,
                                                        file_ids_with_reasons=reasons)


# --- metalink ------------------------------------------------------------------------------

def public_file_url(*, project: Project, order_file_id: int, token: str) -> str:
    path = reverse("orders-public-file", kwargs={"dataFileId": order_file_id})
    return f"{settings.PORTAL_BASE_URL}{path}?{urlencode({'orderToken': token, 'scope': project.slug})}"


def order_metalink_chunks(*, project: Project, order: Order, token: str, version: int) -> Iterator[bytes]:
    """Metalink 3 or 4 of every file of the order, streamed (queries run inside the stream,
    rows come as tuples in batches: flat memory at a million files)."""
    published = timezone.now()
    url = public_file_url(project=project, order_file_id=0, token=token)
    # Every file URL differs only by its id: format it once, not a reverse() per file.
    head, tail = url.split("/0?", 1)
    tail = "?" + tail

    def items():
        with project_scope(project):
            names = selectors.order_file_names(project=project, order=order)
            for file_id, filename, size, md5, sha256, mime_type, product_id in selectors.metalink_rows(
                    project=project, order=order):
                yield MetalinkFile(name=names.name(file_id, filename), size=size, md5=md5, sha256=sha256,
                                   urls=(f"{head}/{file_id}{tail}",), mime_type=mime_type, identity=product_id)

    buffer: list[str] = []
    for text in metalink_chunks(items(), version=version, published=published):
        buffer.append(text)
        if len(buffer) >= 200:
            yield "".join(buffer).encode("utf-8")
            buffer.clear()
    if buffer:
        yield "".join(buffer).encode("utf-8")
