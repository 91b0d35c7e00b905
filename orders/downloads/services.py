"""Downloads of order files: where their bytes are, streaming them, the order zip and metalink.

Rule for DOWNLOADED (single files and zip entries alike): a file becomes DOWNLOADED once a
response carried its LAST byte and the server took that chunk (asked for the next one), be
it a full download or the range that ends at the file's end (a resumed download). A client
hanging up earlier marks nothing; HEAD never marks. Unreadable files found while planning a
zip go to NOTICE.txt and become DOWNLOAD_ERROR once that entry was sent.

Streams run after the view returned (and its project scope ended): every database access in
a generator re-enters `project_scope(project)`.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterator
from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from rest_framework import status as http

from deliveries.metalink import MetalinkFile, metalink_chunks
from deliveries.zipfile_layout import ZipEntry, ZipLayout, ZipSourceError, sha256sums_content
from portal.api.errors import ApiError
from portal.catalog import storage
from portal.catalog.models import StorageTier
from portal.tenancy.models import Project
from portal.tenancy.scope import project_scope

from .. import cache as order_cache
from .. import services as order_services
from ..models import FileState, Order, OrderDataFile, OrderStatus
from . import codes, selectors
from .ranges import ByteRange

logger = logging.getLogger(__name__)

CHUNK_SIZE = 1024 * 1024
# Delivered files are marked in batches while a zip streams (and at its end or hang-up).
MARK_BATCH_FILES = 500
MARK_BATCH_SECONDS = 5.0
NOTICE_KEY = "NOTICE.txt"
MANIFEST_VERSION = 1
MANIFESTS_KEPT = 10


# --- where the bytes are -------------------------------------------------------------------

@dataclass(frozen=True)
class FileSource:
    opener: Callable[[], BinaryIO] | None
    problem: str | None = None  # why it cannot be read, when it cannot

    @property
    def readable(self) -> bool:
        return self.problem is None


def _path_source(path: Path, size: int, missing: str) -> FileSource:
    try:
        actual = path.stat().st_size
    except OSError:
        return FileSource(None, missing)
    if actual != size:
        return FileSource(None, f"stored size {actual} differs from the expected {size} bytes")
    return FileSource(lambda: open(path, "rb"))


def order_file_source(order_file: OrderDataFile) -> FileSource:
    """How to read a staged file, or why it cannot be read (checked without reading it)."""
    if order_file.tier == StorageTier.NEARLINE:
        path = order_cache.order_file_cache_path(order_file)
        if path is None:
            return FileSource(None, "the file was not restored from nearline storage")
        return _path_source(path, order_file.size, "the restored copy is missing from the order cache")
    if storage.online_object_storage() is not None:  # pragma: no cover - S3 deployments
        return FileSource(lambda: storage.open_online(order_file))
    try:
        path = storage.data_file_path(order_file)
    except storage.StorageError as exc:
        return FileSource(None, str(exc))
    return _path_source(path, order_file.size, "the file is missing from online storage")


# --- checks shared by the endpoints ----------------------------------------------------------

def order_is_expired(order: Order) -> bool:
    return order.status == OrderStatus.EXPIRED or order.expiration_date <= timezone.now()


def order_check_files_servable(order: Order) -> None:
    """410 for an expired order, 404 for a deleted one (its files were freed)."""
    if order.status == OrderStatus.DELETED:
        raise ApiError(http.HTTP_404_NOT_FOUND, codes.ORDER_FILE_NOT_FOUND, "This order was deleted.")
    if order_is_expired(order):
        raise ApiError(http.HTTP_410_GONE, codes.ORDER_EXPIRED, "This order has expired.")


def order_file_check_servable(order_file: OrderDataFile) -> FileSource:
    """202 while PENDING, 422 in error or unreadable, 410/404 for expired/deleted orders."""
    order_check_files_servable(order_file.order)
    if order_file.state == FileState.PENDING:
        raise ApiError(http.HTTP_202_ACCEPTED, codes.FILE_NOT_AVAILABLE_YET, "The file is not available yet.")
    if order_file.state in (FileState.ERROR, FileState.PROCESSING_ERROR):
        raise ApiError(http.HTTP_422_UNPROCESSABLE_ENTITY, codes.FILE_IN_ERROR,
                       order_file.error_reason or "The file could not be staged.")
    source = order_file_source(order_file)
    if not source.readable:
        order_services.order_files_mark_download_failed(
            project=order_file.order.project, order=order_file.order,
            file_ids_with_reasons={order_file.pk: source.problem})
        raise ApiError(http.HTTP_422_UNPROCESSABLE_ENTITY, codes.FILE_UNREADABLE, source.problem)
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
        _mark_failed(project, order_file.order, {order_file.pk: exc.strerror or str(exc)})
        raise
    with handle:
        if start:
            handle.seek(start)
        while remaining > 0:
            chunk = handle.read(min(chunk_size, remaining))
            if not chunk:
                _mark_failed(project, order_file.order, {order_file.pk: "file is shorter than its recorded size"})
                # The length is committed: abort, the client sees a short body.
                raise OSError(f"{order_file.filename} is shorter than its recorded size")
            remaining -= len(chunk)
            yield chunk
    if reaches_end:
        with project_scope(project):
            order_services.order_files_mark_downloaded(project=project, order=order_file.order,
                                                       file_ids=[order_file.pk])


def _mark_failed(project: Project, order: Order, reasons: dict[int, str]) -> None:
    with project_scope(project):
        order_services.order_files_mark_download_failed(project=project, order=order,
                                                        file_ids_with_reasons=reasons)


# --- order zip -----------------------------------------------------------------------------

@dataclass
class OrderZip:
    """A planned order zip: its byte layout and what its entries stand for."""

    layout: ZipLayout
    created: dt.datetime
    file_ids: list[int]
    failed: dict[int, str] = field(default_factory=dict)  # order file id -> reason (NOTICE.txt)

    def filename(self, order: Order) -> str:
        return f"order_{order.pk}_{self.created.strftime('%Y%m%d-%H%M%S')}.zip"


def _zip_mtime(order: Order) -> dt.datetime:
    # The order's creation time in UTC: the same for every zip of the order.
    return order.creation_date.astimezone(dt.timezone.utc).replace(tzinfo=None)


def _notice_line(filename: str, reason: str) -> str:
    return f"Failed to download file ({filename}): {reason.rstrip('.')}.\n"


def _build_zip(*, order: Order, readable: list[tuple[OrderDataFile, FileSource]], names: dict[int, str],
               failed: list[tuple[OrderDataFile, str]], created: dt.datetime) -> OrderZip:
    entries = [
        ZipEntry(name=names[f.pk], size=f.size, crc32=f.crc32, opener=src.opener, key=f.pk, sha256=f.sha256)
        for f, src in readable
    ]
    entries.sort(key=lambda e: e.name)
    extra = [ZipEntry.from_bytes("SHA256SUMS", sha256sums_content((e.name, e.sha256) for e in entries if e.sha256))]
    if failed:
        notice = "".join(_notice_line(f.filename, reason)
                         for f, reason in sorted(failed, key=lambda pair: (pair[0].filename, pair[0].pk)))
        extra.append(ZipEntry.from_bytes(NOTICE_KEY, notice.encode("utf-8"), key=NOTICE_KEY))
    layout = ZipLayout(entries + extra, mtime=_zip_mtime(order))
    return OrderZip(layout=layout, created=created, file_ids=[e.key for e in entries],
                    failed={f.pk: reason for f, reason in failed})


def _manifest_dir(*, project: Project, order: Order) -> Path:
    return order_cache.order_cache_dir(project_slug=project.slug, order_id=order.pk) / ".zip-manifests"


def _etag_key(etag: str) -> str:
    return "".join(c for c in etag if c.isalnum() or c == "-")[:80]


def _manifest_save(*, project: Project, order: Order, plan: OrderZip, names: dict[int, str]) -> None:
    """Remembers which files a zip held, so a resumed download (Range) gets the same bytes
    even after its files became DOWNLOADED. Written to a temp name and renamed."""
    folder = _manifest_dir(project=project, order=order)
    folder.mkdir(parents=True, exist_ok=True)
    body = {"v": MANIFEST_VERSION, "etag": plan.layout.etag, "created": plan.created.isoformat(),
            "files": [[fid, names[fid]] for fid in plan.file_ids],
            "failed": [[fid, reason] for fid, reason in sorted(plan.failed.items())]}
    key = _etag_key(plan.layout.etag)
    for name, text in ((f"{key}.json", json.dumps(body)), ("latest", key)):
        tmp = folder / f".{name}.{uuid.uuid4().hex}"
        tmp.write_text(text)
        os.replace(tmp, folder / name)
    manifests = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime)
    for old in manifests[:-MANIFESTS_KEPT]:
        old.unlink(missing_ok=True)


def order_zip_prepare(*, project: Project, order: Order) -> OrderZip | None:
    """A fresh zip of the files AVAILABLE now (None when there is none)."""
    files = selectors.zip_candidate_files(project=project, order=order)
    if not files:
        return None
    names = selectors.order_file_names(project=project, order=order)
    readable, failed = [], []
    for f in files:
        source = order_file_source(f)
        (readable.append((f, source)) if source.readable else failed.append((f, source.problem)))
    plan = _build_zip(order=order, readable=readable, names=names, failed=failed,
                      created=timezone.now().astimezone(dt.timezone.utc))
    _manifest_save(project=project, order=order, plan=plan, names=names)
    return plan


def order_zip_resume(*, project: Project, order: Order, etag: str | None) -> OrderZip | None:
    """The zip first served under `etag` (the latest one when None), rebuilt byte for byte,
    or None when it cannot be (unknown, files gone or unreadable now)."""
    folder = _manifest_dir(project=project, order=order)
    try:
        key = _etag_key(etag) if etag else (folder / "latest").read_text().strip()
        body = json.loads((folder / f"{key}.json").read_text())
    except (OSError, ValueError):
        return None
    if body.get("v") != MANIFEST_VERSION:
        return None
    names = {int(fid): name for fid, name in body["files"]}
    reasons = {int(fid): reason for fid, reason in body["failed"]}
    files = selectors.order_files_by_ids(project=project, order=order, file_ids=[*names, *reasons])
    if len(files) != len(names) + len(reasons):
        return None
    readable = []
    for fid in names:
        source = order_file_source(files[fid])
        if not source.readable:
            return None
        readable.append((files[fid], source))
    plan = _build_zip(order=order, readable=readable, names=names,
                      failed=[(files[fid], reason) for fid, reason in reasons.items()],
                      created=dt.datetime.fromisoformat(body["created"]))
    return plan if plan.layout.etag == body["etag"] else None


def order_zip_stream(*, project: Project, order: Order, plan: OrderZip, byte_range: ByteRange | None,
                     chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Streams the zip (or a range of it), marking delivered files DOWNLOADED in batches and the
    NOTICE.txt files DOWNLOAD_ERROR once that entry was sent."""
    layout = plan.layout
    start, end = (byte_range.start, byte_range.end) if byte_range else (0, len(layout) - 1)
    delivered: list[int] = []
    notice_sent = False
    last_flush = time.monotonic()

    def on_delivered(entry: ZipEntry) -> None:
        nonlocal notice_sent
        if isinstance(entry.key, int):
            delivered.append(entry.key)
        elif entry.key == NOTICE_KEY:
            notice_sent = True

    def flush() -> None:
        nonlocal notice_sent, last_flush
        with project_scope(project):
            if delivered:
                order_services.order_files_mark_downloaded(project=project, order=order, file_ids=list(delivered))
                delivered.clear()
            if notice_sent and plan.failed:
                order_services.order_files_mark_download_failed(project=project, order=order,
                                                                file_ids_with_reasons=plan.failed)
                notice_sent = False
        last_flush = time.monotonic()

    try:
        for chunk in layout.iter_range(start, end, chunk_size=chunk_size, on_delivered=on_delivered):
            yield chunk
            if len(delivered) >= MARK_BATCH_FILES or (delivered and time.monotonic() - last_flush > MARK_BATCH_SECONDS):
                flush()
    except ZipSourceError as exc:
        # The length is committed: abort (the client sees a short body) and say which file failed.
        logger.warning("order %s zip aborted: %s", order.pk, exc)
        if isinstance(exc.entry.key, int):
            _mark_failed(project, order, {exc.entry.key: exc.reason})
        raise
    finally:
        if delivered or notice_sent:
            flush()


# --- metalink ------------------------------------------------------------------------------

def public_file_url(*, project: Project, order_file_id: int, token: str) -> str:
    path = reverse("orders-public-file", kwargs={"dataFileId": order_file_id})
    return f"{settings.PORTAL_BASE_URL}{path}?{urlencode({'orderToken': token, 'scope': project.slug})}"


def order_metalink_chunks(*, project: Project, order: Order, token: str, version: int) -> Iterator[bytes]:
    """Metalink 3 or 4 of every file of the order, streamed (queries run inside the stream)."""
    published = timezone.now()
    with project_scope(project):
        names = selectors.order_file_names(project=project, order=order)
        files = list(selectors.metalink_files(project=project, order=order))

    def items():
        for f in files:
            yield MetalinkFile(name=names[f.pk], size=f.size, md5=f.checksum, sha256=f.sha256,
                               urls=(public_file_url(project=project, order_file_id=f.pk, token=token),),
                               mime_type=f.mime_type, identity=f.product_id)

    buffer: list[str] = []
    for text in metalink_chunks(items(), version=version, published=published):
        buffer.append(text)
        if len(buffer) >= 200:
            yield "".join(buffer).encode("utf-8")
            buffer.clear()
    if buffer:
        yield "".join(buffer).encode("utf-8")
