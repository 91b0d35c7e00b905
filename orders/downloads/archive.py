"""The order zip: a deterministic archive of the files AVAILABLE now, planned from the database,
resumable byte for byte (its manifest, `zip_manifest`), streamed with the files marked as
their entries are sent.

Unreadable files found while planning go to NOTICE.txt and become DOWNLOAD_ERROR once that
entry was sent. Streams run after the view returned: database access re-enters the scope.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import threading
import time
import zlib
from array import array
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Iterator

from django.db import connection as db_connection
from django.utils import timezone

from portal.catalog.models import StorageTier
from portal.catalog.storage import Locator, StorageError, location_for
from portal.files.chunks import ChunkReader
from portal.files.ranges import ByteRange
from portal.files.zip_layout import ZipEntry, ZipLayout, ZipSourceError
from portal.tenancy.models import Project
from portal.tenancy.scope import project_scope

from .. import progress as order_progress
from ..cache import NOT_RESTORED, order_file_place
from ..models import Order
from . import selectors, zip_manifest
from .services import CHUNK_SIZE, mark_failed

logger = logging.getLogger(__name__)

# Delivered files are marked in batches while a zip streams (and at its end or hang-up): each
# batch costs a transaction and a progress refresh that hold up the stream, so not too often.
MARK_BATCH_FILES = 10_000
MARK_BATCH_SECONDS = 5.0
NOTICE_KEY = "NOTICE.txt"


# --- order zip -----------------------------------------------------------------------------
#
# Memory stays small at any order size: files are read from the database as tuples in
# batches, the layout keeps columns (see ZipLayout), SHA256SUMS is generated when sent, the
# manifest is written and read line by line, and the stream looks up where the bytes are a
# batch of entries at a time. What grows with the order is ~100 bytes per file (the name,
# a few integers and the raw SHA-256), not objects.

SUMS_KEY = "SHA256SUMS"
SOURCE_BATCH = 1000
_NO_SHA = zip_manifest.NO_SHA


class _ZipFiles:
    """Where the files of a zip are, through the one `storage.Locator`."""

    def __init__(self):
        self.locator = Locator()
        self.online_is_local = self.locator.is_local(StorageTier.ONLINE)

    def is_direct(self, *, project: Project, tier: str, location: str, sha256: str) -> bool:
        """Stored on local disk where the catalog puts it: its key follows from its SHA-256."""
        return (tier == StorageTier.ONLINE and self.online_is_local and len(sha256) == 64
                and location == location_for(project_slug=project.slug, sha256=sha256))

    def open_direct(self, project: Project, sha256: str) -> BinaryIO:
        return self.locator.open(StorageTier.ONLINE, location_for(project_slug=project.slug, sha256=sha256))

    def open(self, tier: str, location: str, cache_path: str) -> BinaryIO:
        place = order_file_place(tier=tier, location=location, cache_path=cache_path)
        if place is None:
            raise FileNotFoundError(NOT_RESTORED)
        try:
            return self.locator.open(place.area, place.key)
        except StorageError as exc:
            raise FileNotFoundError(str(exc)) from exc

    def problem(self, tier: str, location: str, cache_path: str, size: int) -> str | None:
        """None when the file can be read as recorded, else why not."""
        place = order_file_place(tier=tier, location=location, cache_path=cache_path)
        if place is None:
            return NOT_RESTORED
        return self.locator.problem(place.area, place.key, size, missing=place.missing)


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
        self._files = _ZipFiles()
        self._batch: dict[int, tuple] = {}

    def __call__(self, index: int, key: object) -> BinaryIO:
        if key == SUMS_KEY:
            return ChunkReader(_sha256sums_chunks(map(self.layout.name, range(self.data_count)), self.shas))
        if index < self.data_count and self.direct[index]:
            return self._files.open_direct(self.project, self.shas[32 * index : 32 * index + 32].hex())
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
        return self._files.open(tier, location, cache_path)


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


def order_zip_prepare(*, project: Project, order: Order) -> OrderZip | None:
    """A fresh zip of the files AVAILABLE now (None when there is none)."""
    locator = _ZipFiles()
    ids, sizes, crcs = array("q"), array("Q"), array("I")
    shas, direct = bytearray(), bytearray()
    failed: dict[int, tuple[str, str]] = {}
    # Names are unique over ALL files of the order; the archive lists its files by name.
    unique = selectors.order_file_names(project=project, order=order)
    names: list[str] = []
    for file_id, filename, size, crc32, sha256, tier, location, cache_path in selectors.zip_candidate_rows(
            project=project, order=order):
        problem = locator.problem(tier, location, cache_path, size)
        if problem:
            failed[file_id] = (filename, problem)
            continue
        names.append(unique.name(file_id, filename))
        ids.append(file_id)
        sizes.append(size)
        crcs.append(crc32)
        shas += bytes.fromhex(sha256) if len(sha256) == 64 else _NO_SHA
        direct.append(locator.is_direct(project=project, tier=tier, location=location, sha256=sha256))
    if not ids and not failed:
        return None
    del unique
    by_name = sorted(range(len(ids)), key=names.__getitem__)
    sorted_shas = b"".join(shas[32 * i : 32 * i + 32] for i in by_name)
    direct = bytearray(direct[i] for i in by_name)
    del shas
    files = ((ids[i], names[i], sizes[i], crcs[i], sorted_shas[32 * p : 32 * p + 32])
             for p, i in enumerate(by_name))
    plan = _build_zip(project=project, order=order, files=files, failed=failed, shas=sorted_shas,
                      direct=direct, created=timezone.now().astimezone(dt.timezone.utc))
    del names, by_name, files
    zip_manifest.manifest_save(project=project, order=order, plan=plan)
    return plan


def order_zip_resume(*, project: Project, order: Order, etag: str | None) -> OrderZip | None:
    """The zip first served under `etag` (the latest one when None), rebuilt byte for byte,
    or None when it cannot be (unknown, files gone or unreadable now)."""
    handle = zip_manifest.manifest_open(project=project, order=order, etag=etag)
    if handle is None:
        return None
    with handle:
        try:
            header = json.loads(handle.readline())
            if header.get("v") != zip_manifest.MANIFEST_VERSION:
                return None
            failed = {int(fid): (filename, reason) for fid, filename, reason in header["failed"]}
            # The raw SHA-256s in archive order come first (SHA256SUMS needs them): a first pass,
            # then the manifest is read again for the rows (a second GET on object storage).
            shas = bytearray()
            for _, _, _, _, raw in zip_manifest.manifest_rows(handle):
                shas += raw
            rows = zip_manifest.manifest_open(project=project, order=order, etag=header["etag"])
            if rows is None:
                return None
            rows.readline()
            with rows:
                plan = _build_zip(project=project, order=order, files=zip_manifest.manifest_rows(rows),
                                  failed=failed, shas=bytes(shas),
                                  created=dt.datetime.fromisoformat(header["created"]))
        except (ValueError, KeyError, TypeError, OSError):
            return None
    if plan.layout.etag != header["etag"] or plan.file_count != header["count"]:
        return None
    if not _zip_files_still_readable(project=project, order=order, plan=plan):
        return None
    return plan


def _zip_files_still_readable(*, project: Project, order: Order, plan: OrderZip) -> bool:
    """Every file of the zip (and of its NOTICE.txt) is still the order's, and readable (and
    which ones are `direct`, see _Sources)."""
    locator = _ZipFiles()
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

    append = delivered.append

    def on_delivered(key: object) -> None:
        nonlocal notice_sent
        if type(key) is int:
            append(key)
        elif key == NOTICE_KEY:
            notice_sent = True

    def mark(file_ids: list[int], notice: bool) -> None:
        with project_scope(project):
            if file_ids:
                order_progress.order_files_mark_downloaded(project=project, order=order, file_ids=file_ids)
            if notice and plan.failed:
                order_progress.order_files_mark_download_failed(
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
        for chunk in layout.iter_range(start, end, chunk_size=chunk_size, on_delivered_key=on_delivered):
            yield chunk
            if len(delivered) >= MARK_BATCH_FILES or (delivered and time.monotonic() - last_flush > MARK_BATCH_SECONDS):
                # Marking thousands of files takes a while: a thread does it, the stream goes on.
                marker.submit(mark, *take())
    except ZipSourceError as exc:
        # The length is committed: abort (the client sees a short body) and say which file failed.
        logger.warning("order %s zip aborted: %s", order.pk, exc)
        if isinstance(exc.entry.key, int):
            mark_failed(project, order, {exc.entry.key: exc.reason})
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
