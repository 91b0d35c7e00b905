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
import hashlib
import io
import json
import logging
import os
import threading
import time
import uuid
import zlib
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import BinaryIO, Callable, Iterator
from urllib.parse import urlencode

from django.conf import settings
from django.db import connection as db_connection
from django.urls import reverse
from django.utils import timezone
from rest_framework import status as http

from deliveries.metalink import MetalinkFile, metalink_chunks
from deliveries.zipfile_layout import ZipEntry, ZipLayout, ZipSourceError
from portal.api.errors import ApiError
from portal.catalog import storage
from portal.catalog.models import StorageTier
from portal.tenancy.models import Project
from portal.tenancy.scope import project_scope

from .. import cache as order_cache
from .. import services as order_services
from ..models import FileState, Order, OrderDataFile, OrderStatus
from . import codes, selectors
from portal.api.ranges import ByteRange, ShortRead, read_range

logger = logging.getLogger(__name__)

CHUNK_SIZE = 1024 * 1024
# Delivered files are marked in batches while a zip streams (and at its end or hang-up): each
# batch costs a transaction and a progress refresh that hold up the stream, so not too often.
MARK_BATCH_FILES = 10_000
MARK_BATCH_SECONDS = 5.0
NOTICE_KEY = "NOTICE.txt"
MANIFEST_VERSION = 2
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
    try:
        yield from read_range(handle, start, remaining, chunk_size)
    except ShortRead:
        _mark_failed(project, order_file.order, {order_file.pk: "file is shorter than its recorded size"})
        raise  # the length is committed: abort, the client sees a short body
    if reaches_end:
        with project_scope(project):
            order_services.order_files_mark_downloaded(project=project, order=order_file.order,
                                                       file_ids=[order_file.pk])


def _mark_failed(project: Project, order: Order, reasons: dict[int, str]) -> None:
    with project_scope(project):
        order_services.order_files_mark_download_failed(project=project, order=order,
                                                        file_ids_with_reasons=reasons)


# --- order zip -----------------------------------------------------------------------------
#
# Memory stays small at any order size: files are read from the database as tuples in
# batches, the layout keeps columns (see ZipLayout), SHA256SUMS is generated when sent, the
# manifest is written and read line by line, and the stream looks up where the bytes are a
# batch of entries at a time. What grows with the order is ~100 bytes per file (the name,
# a few integers and the raw SHA-256), not objects.

SUMS_KEY = "SHA256SUMS"
SOURCE_BATCH = 1000
_NO_SHA = bytes(32)


class _Locator:
    """Where a file's bytes are on local disk, or why they cannot be read (one `stat`).

    The roots are resolved once per zip, and a location is checked lexically against its
    root (like storage.local_path, without resolving every path: that walk cost more than
    the rest of planning a zip of small files).
    """

    def __init__(self):
        self._roots: dict[str, str] = {}
        self.s3 = storage.online_object_storage() is not None

    def _root(self, tier: str) -> str:
        root = self._roots.get(tier)
        if root is None:
            root = self._roots[tier] = str(storage.tier_root(tier).resolve())
        return root

    def online_root(self) -> str:
        return self._root(StorageTier.ONLINE)

    def is_direct(self, *, project: Project, tier: str, location: str, sha256: str) -> bool:
        """Stored on local disk where the catalog puts it: its path follows from its SHA-256."""
        return (tier == StorageTier.ONLINE and not self.s3 and len(sha256) == 64
                and location == storage.location_for(project_slug=project.slug, sha256=sha256))

    def path(self, tier: str, location: str, cache_path: str) -> tuple[str | None, str | None]:
        """(path, None) or (None, problem) for a file's bytes, without touching the disk."""
        if tier == StorageTier.NEARLINE:
            if not cache_path:
                return None, "the file was not restored from nearline storage"
            return os.path.join(settings.ORDER_CACHE_DIR, cache_path), None
        try:
            root = self._root(tier)
        except storage.StorageError as exc:
            return None, str(exc)
        path = os.path.normpath(os.path.join(root, location))
        if not path.startswith(root + os.sep):
            return None, f"location {location!r} escapes the {tier} storage root"
        return path, None

    def problem(self, tier: str, location: str, cache_path: str, size: int) -> str | None:
        """None when the file can be read as recorded, else why not."""
        if self.s3 and tier == StorageTier.ONLINE:  # pragma: no cover - S3 deployments
            return None
        path, problem = self.path(tier, location, cache_path)
        if problem:
            return problem
        try:
            actual = os.stat(path).st_size
        except OSError:
            return ("the restored copy is missing from the order cache" if tier == StorageTier.NEARLINE
                    else "the file is missing from online storage")
        if actual != size:
            return f"stored size {actual} differs from the expected {size} bytes"
        return None


class _ChunkReader(io.RawIOBase):
    """A read-only file over generated chunks (SHA256SUMS); seeks forward by skipping."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks, self._pending, self._pos = chunks, b"", 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            self._pending = next(self._chunks, None)
            if self._pending is None:
                self._pending = b""
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        self._pos += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence != io.SEEK_SET or offset < self._pos:
            raise io.UnsupportedOperation("forward seeks only")
        while self._pos < offset and self.read(min(offset - self._pos, CHUNK_SIZE)):
            pass
        return self._pos


def _sha256sums_chunks(names: Iterator[str], shas: bytes) -> Iterator[bytes]:
    """SHA256SUMS lines (`sha256sum -c` format) for names in archive order, ~64 KiB at a time.
    The archive order is by name, so this equals sha256sums_content of the same pairs."""
    lines: list[str] = []
    for position, name in enumerate(names):
        raw = shas[32 * position : 32 * position + 32]
        if raw != _NO_SHA:
            lines.append(f"{raw.hex()}  {name}\n")
            if len(lines) >= 500:
                yield "".join(lines).encode("utf-8")
                lines.clear()
    if lines:
        yield "".join(lines).encode("utf-8")


class _Sources:
    """The layout's opener while a zip streams. A file stored where the catalog puts it
    (`<project>/<sha[:2]>/<sha>` in ONLINE storage, flagged in `direct`) is opened from its
    SHA-256; for the others, where the next SOURCE_BATCH entries' bytes are is looked up in
    one query. SHA256SUMS is generated from the layout's names."""

    def __init__(self, *, project: Project, order: Order, shas: bytes, direct: bytearray | None = None):
        self.project, self.order, self.shas = project, order, shas
        self.layout: ZipLayout | None = None
        self.data_count = len(shas) // 32  # the order files come first in the archive
        self.direct = direct if direct is not None else bytearray(self.data_count)
        self._locator = _Locator()
        self._batch: dict[int, tuple] = {}

    def __call__(self, index: int, key: object) -> BinaryIO:
        if key == SUMS_KEY:
            return _ChunkReader(_sha256sums_chunks(map(self.layout.name, range(self.data_count)), self.shas))
        if index < self.data_count and self.direct[index]:
            sha = self.shas[32 * index : 32 * index + 32].hex()
            return open(f"{self._locator.online_root()}/{self.project.slug}/{sha[:2]}/{sha}", "rb")
        row = self._batch.get(key)
        if row is None:
            last = min(index + SOURCE_BATCH, self.data_count)
            wanted = [self.layout.key(i) for i in range(index, last) if not self.direct[i]]
            with project_scope(self.project):
                rows = selectors.zip_source_rows(project=self.project, order=self.order, file_ids=wanted)
            self._batch = {r[0]: r for r in rows}
            row = self._batch.get(key)
            if row is None:
                raise FileNotFoundError(f"file {key} is no longer part of the order")
        _, tier, location, cache_path = row
        if self._locator.s3 and tier == StorageTier.ONLINE:  # pragma: no cover - S3 deployments
            return storage.open_online(SimpleNamespace(tier=tier, location=location))
        path, problem = self._locator.path(tier, location, cache_path)
        if problem:
            raise FileNotFoundError(problem)
        return open(path, "rb")


@dataclass
class OrderZip:
    """A planned order zip: its byte layout and what its entries stand for."""

    layout: ZipLayout
    created: dt.datetime
    sources: _Sources
    # order file id -> (filename, reason), listed in NOTICE.txt
    failed: dict[int, tuple[str, str]] = field(default_factory=dict)

    @property
    def file_count(self) -> int:
        return self.sources.data_count

    def filename(self, order: Order) -> str:
        return f"order_{order.pk}_{self.created.strftime('%Y%m%d-%H%M%S')}.zip"


def _zip_mtime(order: Order) -> dt.datetime:
    # The order's creation time in UTC: the same for every zip of the order.
    return order.creation_date.astimezone(dt.timezone.utc).replace(tzinfo=None)


def _notice_line(filename: str, reason: str) -> str:
    return f"Failed to download file ({filename}): {reason.rstrip('.')}.\n"


def _build_zip(*, project: Project, order: Order, files: Iterator[tuple[int, str, int, int, bytes]],
               failed: dict[int, tuple[str, str]], created: dt.datetime, shas: bytes,
               direct: bytearray | None = None) -> OrderZip:
    """`files`: (id, name, size, crc32, raw sha256) sorted by name; `shas` their raw SHA-256s
    in the same order (32 bytes each, zeros when unknown); `direct` see _Sources."""
    sources = _Sources(project=project, order=order, shas=shas, direct=direct)
    sums = {"size": 0, "crc": 0, "sha": hashlib.sha256()}

    def entries() -> Iterator[ZipEntry]:
        for file_id, name, size, crc32, raw in files:
            sha = "" if raw == _NO_SHA else raw.hex()
            if sha:  # SHA256SUMS is summed on the way, then generated again when sent
                line = f"{sha}  {name}\n".encode("utf-8")
                sums["size"] += len(line)
                sums["crc"] = zlib.crc32(line, sums["crc"])
                sums["sha"].update(line)
            yield ZipEntry(name=name, size=size, crc32=crc32, key=file_id, sha256=sha)
        yield ZipEntry(name=SUMS_KEY, size=sums["size"], crc32=sums["crc"], key=SUMS_KEY,
                       sha256=sums["sha"].hexdigest())
        if failed:
            notice = "".join(_notice_line(filename, reason) for _, (filename, reason)
                             in sorted(failed.items(), key=lambda item: (item[1][0], item[0])))
            yield ZipEntry.from_bytes(NOTICE_KEY, notice.encode("utf-8"), key=NOTICE_KEY)

    layout = ZipLayout(entries(), mtime=_zip_mtime(order), opener=sources)
    sources.layout = layout
    return OrderZip(layout=layout, created=created, sources=sources, failed=failed)


def _manifest_dir(*, project: Project, order: Order) -> Path:
    return order_cache.order_cache_dir(project_slug=project.slug, order_id=order.pk) / ".zip-manifests"


def _etag_key(etag: str) -> str:
    return "".join(c for c in etag if c.isalnum() or c == "-")[:80]


def _manifest_save(*, project: Project, order: Order, plan: OrderZip) -> None:
    """Remembers which files a zip held, so a resumed download (Range) gets the same bytes
    even after its files became DOWNLOADED. A JSON header line, then one line per file in
    archive order (`id size crc32 sha256 name`, tab-separated: names hold no control
    characters), written as it goes to a temp name and renamed."""
    folder = _manifest_dir(project=project, order=order)
    folder.mkdir(parents=True, exist_ok=True)
    layout, shas = plan.layout, plan.sources.shas
    header = {"v": MANIFEST_VERSION, "etag": layout.etag, "created": plan.created.isoformat(),
              "count": plan.file_count,
              "failed": [[fid, filename, reason] for fid, (filename, reason) in sorted(plan.failed.items())]}
    key = _etag_key(layout.etag)
    tmp = folder / f".{key}.{uuid.uuid4().hex}"
    with open(tmp, "w", encoding="utf-8") as out:
        out.write(json.dumps(header) + "\n")
        lines = []
        for i in range(plan.file_count):
            raw = shas[32 * i : 32 * i + 32]
            _, size = layout.data_span(i)
            lines.append(f"{layout.key(i)}\t{size}\t{layout.entry_crc32(i)}\t"
                         f"{'' if raw == _NO_SHA else raw.hex()}\t{layout.name(i)}\n")
            if len(lines) >= 1000:
                out.write("".join(lines))
                lines.clear()
        out.write("".join(lines))
    os.replace(tmp, folder / f"{key}.manifest")
    latest = folder / f".latest.{uuid.uuid4().hex}"
    latest.write_text(key)
    os.replace(latest, folder / "latest")
    manifests = sorted(folder.glob("*.manifest"), key=lambda p: p.stat().st_mtime)
    for old in manifests[:-MANIFESTS_KEPT]:
        old.unlink(missing_ok=True)


def order_zip_prepare(*, project: Project, order: Order) -> OrderZip | None:
    """A fresh zip of the files AVAILABLE now (None when there is none)."""
    locator = _Locator()
    ids, sizes, crcs = array("q"), array("Q"), array("I")
    shas, direct = bytearray(), bytearray()
    failed: dict[int, tuple[str, str]] = {}
    for file_id, filename, size, crc32, sha256, tier, location, cache_path in selectors.zip_candidate_rows(
            project=project, order=order):
        problem = locator.problem(tier, location, cache_path, size)
        if problem:
            failed[file_id] = (filename, problem)
            continue
        ids.append(file_id)
        sizes.append(size)
        crcs.append(crc32)
        shas += bytes.fromhex(sha256) if len(sha256) == 64 else _NO_SHA
        direct.append(locator.is_direct(project=project, tier=tier, location=location, sha256=sha256))
    if not ids and not failed:
        return None
    # Names are unique over ALL files of the order; the archive lists its files by name.
    names = selectors.order_file_names(project=project, order=order)
    by_name = sorted(range(len(ids)), key=lambda i: names[ids[i]])
    sorted_shas = b"".join(shas[32 * i : 32 * i + 32] for i in by_name)
    direct = bytearray(direct[i] for i in by_name)
    del shas
    files = ((ids[i], names[ids[i]], sizes[i], crcs[i], sorted_shas[32 * p : 32 * p + 32])
             for p, i in enumerate(by_name))
    plan = _build_zip(project=project, order=order, files=files, failed=failed, shas=sorted_shas,
                      direct=direct, created=timezone.now().astimezone(dt.timezone.utc))
    del names, by_name, files
    _manifest_save(project=project, order=order, plan=plan)
    return plan


def _manifest_rows(handle) -> Iterator[tuple[int, str, int, int, bytes]]:
    for line in handle:
        file_id, size, crc32, sha256, name = line.rstrip("\n").split("\t", 4)
        yield int(file_id), name, int(size), int(crc32), bytes.fromhex(sha256) if sha256 else _NO_SHA


def order_zip_resume(*, project: Project, order: Order, etag: str | None) -> OrderZip | None:
    """The zip first served under `etag` (the latest one when None), rebuilt byte for byte,
    or None when it cannot be (unknown, files gone or unreadable now)."""
    folder = _manifest_dir(project=project, order=order)
    try:
        key = _etag_key(etag) if etag else (folder / "latest").read_text().strip()
        handle = open(folder / f"{key}.manifest", encoding="utf-8")
    except OSError:
        return None
    with handle:
        try:
            header = json.loads(handle.readline())
            if header.get("v") != MANIFEST_VERSION:
                return None
            failed = {int(fid): (filename, reason) for fid, filename, reason in header["failed"]}
            # The raw SHA-256s in archive order come first (SHA256SUMS needs them); one pass.
            shas = bytearray()
            offset = handle.tell()
            for _, _, _, _, raw in _manifest_rows(handle):
                shas += raw
            handle.seek(offset)
            plan = _build_zip(project=project, order=order, files=_manifest_rows(handle), failed=failed,
                              shas=bytes(shas), created=dt.datetime.fromisoformat(header["created"]))
        except (ValueError, KeyError, TypeError):
            return None
    if plan.layout.etag != header["etag"] or plan.file_count != header["count"]:
        return None
    if not _zip_files_still_readable(project=project, order=order, plan=plan):
        return None
    return plan


def _zip_files_still_readable(*, project: Project, order: Order, plan: OrderZip) -> bool:
    """Every file of the zip (and of its NOTICE.txt) is still the order's, and readable (and
    which ones are `direct`, see _Sources)."""
    locator = _Locator()
    layout = plan.layout
    for first in range(0, plan.file_count, SOURCE_BATCH):
        last = min(first + SOURCE_BATCH, plan.file_count)
        rows = {r[0]: r for r in selectors.zip_source_rows(
            project=project, order=order, file_ids=[layout.key(i) for i in range(first, last)])}
        for i in range(first, last):
            row = rows.get(layout.key(i))
            if row is None or locator.problem(row[1], row[2], row[3], layout.data_span(i)[1]):
                return False
            sha = plan.sources.shas[32 * i : 32 * i + 32]
            plan.sources.direct[i] = sha != _NO_SHA and locator.is_direct(
                project=project, tier=row[1], location=row[2], sha256=sha.hex())
    failed_ids = list(plan.failed)
    for first in range(0, len(failed_ids), SOURCE_BATCH):
        batch = failed_ids[first : first + SOURCE_BATCH]
        if len(selectors.zip_source_rows(project=project, order=order, file_ids=batch)) != len(batch):
            return False
    return True


def order_zip_stream(*, project: Project, order: Order, plan: OrderZip, byte_range: ByteRange | None,
                     chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Streams the zip (or a range of it), marking delivered files DOWNLOADED in batches and the
    NOTICE.txt files DOWNLOAD_ERROR once that entry was sent."""
    layout = plan.layout
    start, end = (byte_range.start, byte_range.end) if byte_range else (0, len(layout) - 1)
    delivered = array("q")
    notice_sent = False
    last_flush = time.monotonic()
    marker = _BackgroundMarker()

    def on_delivered(entry: ZipEntry) -> None:
        nonlocal notice_sent
        if isinstance(entry.key, int):
            delivered.append(entry.key)
        elif entry.key == NOTICE_KEY:
            notice_sent = True

    def mark(file_ids: list[int], notice: bool) -> None:
        with project_scope(project):
            if file_ids:
                order_services.order_files_mark_downloaded(project=project, order=order, file_ids=file_ids)
            if notice and plan.failed:
                order_services.order_files_mark_download_failed(
                    project=project, order=order,
                    file_ids_with_reasons={fid: reason for fid, (_, reason) in plan.failed.items()})

    def take() -> tuple[list[int], bool]:
        nonlocal notice_sent, last_flush
        batch, notice = delivered.tolist(), notice_sent
        del delivered[:]
        notice_sent = False
        last_flush = time.monotonic()
        return batch, notice

    try:
        for chunk in layout.iter_range(start, end, chunk_size=chunk_size, on_delivered=on_delivered):
            yield chunk
            if len(delivered) >= MARK_BATCH_FILES or (delivered and time.monotonic() - last_flush > MARK_BATCH_SECONDS):
                # Marking thousands of files takes a while: a thread does it, the stream goes on.
                marker.submit(mark, *take())
    except ZipSourceError as exc:
        # The length is committed: abort (the client sees a short body) and say which file failed.
        logger.warning("order %s zip aborted: %s", order.pk, exc)
        if isinstance(exc.entry.key, int):
            _mark_failed(project, order, {exc.entry.key: exc.reason})
        raise
    finally:
        marker.wait()
        for file_ids, notice in marker.take_failed():
            delivered.extend(file_ids)  # a batch the thread could not write is written in line
            notice_sent = notice_sent or notice
        if delivered or notice_sent:
            mark(*take())  # after the last chunk was taken (or the client left): in line


class _BackgroundMarker:
    """Runs one marking batch at a time in a thread with its own database connection.

    A batch that fails there (e.g. the embedded SQLite database busy for longer than its
    timeout) is kept for the stream to write in line at its end, so no delivered file is lost.
    """

    def __init__(self):
        self._thread: threading.Thread | None = None
        self._failed: list[tuple[list[int], bool]] = []

    def submit(self, mark: Callable[[list[int], bool], None], file_ids: list[int], notice: bool) -> None:
        self.wait()
        self._thread = threading.Thread(target=self._run, args=(mark, file_ids, notice), daemon=True,
                                        name="zip-marker")
        self._thread.start()

    def _run(self, mark, file_ids: list[int], notice: bool) -> None:
        try:
            mark(file_ids, notice)
        except Exception:  # the stream goes on; the batch is retried in line at its end
            logger.exception("marking %d zip entries DOWNLOADED failed; retrying at the end", len(file_ids))
            self._failed.append((file_ids, notice))
        finally:
            db_connection.close()

    def take_failed(self) -> list[tuple[list[int], bool]]:
        failed, self._failed = self._failed, []
        return failed

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None


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
