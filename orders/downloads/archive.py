"""The order zip: a deterministic archive of the files AVAILABLE now, planned from the database,
resumable byte for byte (its manifest, `zip_manifest`), streamed with the files marked as
their entries are sent.

Unreadable files found while planning go to NOTICE.txt and become DOWNLOAD_ERROR once that
entry was sent. Streams run after the view returned: database access re-enters the scope.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import gc
import hashlib
import heapq
import itertools
import json
import logging
import operator
import os
import tempfile
import threading
import time
from array import array
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Iterable, Iterator

from django.conf import settings
from django.db import connection as db_connection
from django.utils import timezone

from portal.catalog.models import StorageTier
from portal.catalog.storage import Locator, StorageError, location_for
from portal.files.chunks import ChunkReader
from portal.files.crc import crc32 as crc32_of
from portal.files.names import DistinctNames, NamesNotDistinct, NamesOutOfOrder
from portal.files.ranges import ByteRange
from portal.files.zip_layout import ZipEntry, ZipSourceError
from portal.files.zip_spool import SpooledZipLayout
from portal.tenancy.models import Project
from portal.tenancy.scope import project_scope

from .. import progress as order_progress
from ..cache import NOT_RESTORED, order_file_place
from ..models import FileState, Order
from . import selectors, zip_manifest
from .services import CHUNK_SIZE, mark_failed

logger = logging.getLogger(__name__)

# Delivered files are marked in batches while a zip streams (and at its end or hang-up): each
# batch costs a transaction and a progress refresh that hold up the stream, so not too often.
MARK_BATCH_FILES = 50_000
MARK_BATCH_SECONDS = 5.0
NOTICE_KEY = "NOTICE.txt"


# --- order zip -----------------------------------------------------------------------------
#
# Memory stays flat at any order size: the database sorts the files by name and they are read
# in batches, the layout spools its entries to a temporary file (see SpooledZipLayout),
# SHA256SUMS is generated from it when sent, the manifest is written and read line by line,
# and the stream looks up where the bytes are a batch of entries at a time. What grows with
# the order is a byte per file (`direct`) and the names that differ from their filename.

SUMS_KEY = "SHA256SUMS"
SOURCE_BATCH = 1000
NAME_BATCH = 2000  # files of a fresh zip checked and laid out at a time
_NO_SHA = zip_manifest.NO_SHA


# Of a ZIP_ROW_FIELDS row: what says whether its file is direct; a direct file's layout entry
# (name, size, crc32, id, sha256: a direct file has its 64-digit SHA-256).
_SHA_TIER_LOCATION = operator.itemgetter(4, 5, 6)
_ENTRY_OF_DIRECT_ROW = operator.itemgetter(1, 2, 3, 0, 4)


class _ZipFiles:
    """Where the files of a zip are, through the one `storage.Locator`."""

    def __init__(self):
        self.locator = Locator()
        self.online_is_local = self.locator.is_local(StorageTier.ONLINE)
        self._direct_prefix: str | None = None
        self._online_root: str | None = None

    def is_direct(self, *, project: Project, tier: str, location: str, sha256: str) -> bool:
        """Stored on local disk where the catalog puts it: its key follows from its SHA-256."""
        return (tier == StorageTier.ONLINE and self.online_is_local and len(sha256) == 64
                and location == location_for(project_slug=project.slug, sha256=sha256))

    def direct_paths(self, project: Project, rows: list[tuple]) -> list[str | None]:
        """The local path of each direct file (is_direct) of these ZIP_ROW_FIELDS rows, None
        for any other: its location under the ONLINE root (location_for: a slug and hex
        digits cannot escape the root)."""
        if not self.online_is_local:
            return [None] * len(rows)
        if self._online_root is None:
            self._online_root = self.locator.root(StorageTier.ONLINE) + os.sep
        root, online, slug = self._online_root, StorageTier.ONLINE, project.slug
        # location_for written inline, the columns taken by itemgetter: a call and a list
        # (`*_`) per file were half of this loop's time.
        return [root + location if tier == online and len(sha256) == 64
                and location == f"{slug}/{sha256[:2]}/{sha256}" else None
                for sha256, tier, location in map(_SHA_TIER_LOCATION, rows)]

    @staticmethod
    def all_direct_of_size(paths: list[str | None], sizes: list[int]) -> bool:
        """Whether every one of these files is direct (a path) and of its expected size: one
        stat each, a batch at once (the usual case; any other file is then asked in full)."""
        if None in paths:
            return False
        try:
            return [os.stat(path).st_size for path in paths] == sizes
        except OSError:
            return False

    def direct_prefix(self, project: Project) -> str:
        """The folder of the project's direct files, ending in a separator (local ONLINE
        storage only): a direct file is `<prefix><sha256[:2]>/<sha256>` (location_for under
        the ONLINE root, joined by hand: a slug and hex digits cannot escape the root)."""
        if self._direct_prefix is None:
            self._direct_prefix = self.locator.path(StorageTier.ONLINE, project.slug) + os.sep
        return self._direct_prefix

    def direct_paths_of(self, project: Project, sha256s: Iterable[str]) -> list[str]:
        """The local paths of direct files, given their SHA-256s in hex (local ONLINE storage
        only): one loop for a block of them."""
        prefix, sep = self.direct_prefix(project), os.sep
        return [f"{prefix}{sha[:2]}{sep}{sha}" for sha in sha256s]

    def direct_path(self, project: Project, sha256: str) -> str:
        """The local path of a direct file (local ONLINE storage only)."""
        return self.direct_paths_of(project, [sha256])[0]

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


def _spooled_chunks(spool: BinaryIO, size: int) -> Iterator[bytes]:
    """The first `size` bytes of a spool file, 1 MiB at a time (pread: its position untouched)."""
    fd, offset = spool.fileno(), 0
    while offset < size:
        chunk = os.pread(fd, min(1 << 20, size - offset), offset)
        if not chunk:
            return
        offset += len(chunk)
        yield chunk


class _Sources:
    """The layout's opener while a zip streams. A file stored where the catalog puts it
    (`<project>/<sha[:2]>/<sha>` in ONLINE storage, flagged in `direct`) is opened from its
    SHA-256 (read by path on local disk: `paths_of`); for the others, where the next
    SOURCE_BATCH entries' bytes are is looked up in one query. SHA256SUMS is read from the
    spool its lines were written to while the zip was laid out."""

    def __init__(self, *, project: Project, order: Order, direct: bytearray | None = None):
        self.project, self.order = project, order
        self.layout: SpooledZipLayout | None = None
        self.data_count = 0  # the order files come first in the archive
        self.direct = direct if direct is not None else bytearray()
        self._files = _ZipFiles()
        self._batch: dict[int, tuple] = {}
        self.sums: BinaryIO | None = None  # SHA256SUMS (its lines, written by _build_zip)
        self.sums_size = 0

    def paths_of(self, first: int, sha256s: list[bytes]) -> list[str | None]:
        """The local paths of the direct files among the entries first.. (their raw
        SHA-256s given: a block of the layout's records), None for the others."""
        stop = min(first + len(sha256s), self.data_count)
        if stop <= first or not self._files.online_is_local:
            return [None] * len(sha256s)
        paths = self._files.direct_paths_of(self.project, map(bytes.hex, sha256s[: stop - first]))
        paths = [path if is_direct else None for path, is_direct in zip(paths, self.direct[first:stop])]
        return paths + [None] * (len(sha256s) - len(paths))

    def __call__(self, index: int, key: object) -> BinaryIO:
        if key == SUMS_KEY:
            return ChunkReader(_spooled_chunks(self.sums, self.sums_size))
        if index < self.data_count and self.direct[index]:
            return self._files.open_direct(self.project, self.layout.entry_sha256(index).hex())
        row = self._batch.get(key)
        if row is None:
            last = min(index + SOURCE_BATCH, self.data_count)
            wanted = [k for i, k in zip(range(index, last), self.layout.int_keys(index, last))
                      if not self.direct[i]]
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

    layout: SpooledZipLayout
    created: dt.datetime
    sources: _Sources
    # order file id -> (filename, reason), listed in NOTICE.txt
    failed: dict[int, tuple[str, str]] = field(default_factory=dict)
    # a fresh zip's manifest lines of its files (a temporary file), until manifest_save
    manifest_body: BinaryIO | None = None

    @property
    def file_count(self) -> int:
        return self.sources.data_count

    def close(self) -> None:
        """Frees a plan that will not be sent: its layout's spools and its SHA256SUMS spool."""
        self.layout.close()
        if self.sources.sums is not None:
            self.sources.sums.close()

    @property
    def notice_index(self) -> int | None:
        """The index of the NOTICE.txt entry (after the files and SHA256SUMS), if any."""
        return self.file_count + 1 if self.failed else None

    def filename(self, order: Order) -> str:
        return f"order_{order.pk}_{self.created.strftime('%Y%m%d-%H%M%S')}.zip"


def _zip_mtime(order: Order) -> dt.datetime:
    # The order's creation time in UTC: the same for every zip of the order.
    return order.creation_date.astimezone(dt.timezone.utc).replace(tzinfo=None)


def _notice_line(filename: str, reason: str) -> str:
    return f"Failed to download file ({filename}): {reason.rstrip('.')}.\n"


def _temp_dir() -> str | None:
    return getattr(settings, "FILE_UPLOAD_TEMP_DIR", None) or None


def _build_zip(*, project: Project, order: Order, batches: Iterable[list[tuple[str, int, int, int, str]]],
               failed: dict[int, tuple[str, str]], created: dt.datetime,
               direct: bytearray | None = None, manifest: bool = False) -> OrderZip:
    """`batches`: lists of (name, size, crc32, id, sha256 hex or "") (layout entry tuples),
    sorted by name; `direct` see _Sources (filled while they are read, or later); `manifest`:
    the manifest's lines of the files are written on the way too (for manifest_save)."""
    sources = _Sources(project=project, order=order, direct=direct)
    sums = hashlib.sha256()
    body = tempfile.TemporaryFile(dir=_temp_dir()) if manifest else None
    sources.sums = sums_spool = tempfile.TemporaryFile(dir=_temp_dir())

    def entries() -> Iterator[ZipEntry | tuple]:
        count = size = crc = 0
        for batch in batches:
            # SHA256SUMS is summed on the way, a batch at a time (the CRC-32 and SHA-256 of the
            # whole are the same), and spooled to be sent as it is.
            block = "".join([f"{entry[4]}  {entry[0]}\n" for entry in batch if entry[4]]).encode("utf-8")
            size += len(block)
            crc = crc32_of(block, crc)
            sums.update(block)
            sums_spool.write(block)
            if body is not None:
                body.write(zip_manifest.manifest_lines(batch))
            count += len(batch)
            yield batch  # laid out at once (see SpooledZipLayout)
        sources.data_count = count
        sums_spool.flush()
        sources.sums_size = size
        yield ZipEntry(name=SUMS_KEY, size=size, crc32=crc, key=SUMS_KEY, sha256=sums.hexdigest())
        if failed:
            notice = "".join(_notice_line(filename, reason) for _, (filename, reason)
                             in sorted(failed.items(), key=lambda item: (item[1][0], item[0])))
            yield ZipEntry.from_bytes(NOTICE_KEY, notice.encode("utf-8"), key=NOTICE_KEY)

    try:
        layout = SpooledZipLayout(entries(), mtime=_zip_mtime(order), opener=sources, temp_dir=_temp_dir())
    except BaseException:
        if body is not None:
            body.close()
        sums_spool.close()
        raise
    sources.layout = layout
    if len(sources.direct) < sources.data_count:
        sources.direct.extend(bytes(sources.data_count - len(sources.direct)))
    return OrderZip(layout=layout, created=created, sources=sources, failed=failed, manifest_body=body)


def _batches(items: Iterator[tuple], size: int = SOURCE_BATCH) -> Iterator[list[tuple]]:
    return iter(lambda: list(itertools.islice(items, size)), [])


def _stat_size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return -1


def order_zip_prepare(*, project: Project, order: Order) -> OrderZip | None:
    """A fresh zip of the files AVAILABLE now (None when there is none).

    The database sorts the files by filename. When every file of the order is called by its
    filename (the usual order) that one pass plans the zip; otherwise the few whose zip name
    differs (renamed duplicates, sanitized names) are read first, sorted by name and merged
    in. Either way nothing per file is kept in memory but the `direct` flag (and a hash per
    name). Should the database's order not be Python's (a collation surprise), the files are
    sorted in memory instead."""
    with _collector_paused():
        try:
            try:
                return _zip_prepare_distinct(project=project, order=order)
            except NamesNotDistinct:
                return _zip_prepare(project=project, order=order, by_name=True)
        except NamesOutOfOrder:
            logger.warning("order %s: filenames not in code-point order from the database; sorting in memory",
                           order.pk)
            return _zip_prepare(project=project, order=order, by_name=False)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused (if it runs): planning makes a few tuples per
    file and keeps a batch of them alive, so the collector runs often and, now and then,
    scans the whole heap (~20 ms at 20,000 files), though they hold no cycle and are freed by
    reference counting. Memory stays as it is; the collector runs again right after."""
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _zip_prepare_distinct(*, project: Project, order: Order) -> OrderZip | None:
    """The zip planned in one pass over the order's files in name order (every file: the
    names of those not AVAILABLE count too), all of them called by their filename (see
    DistinctNames). NamesNotDistinct, and the layout dropped, as soon as one is not: a name
    to sanitize or reserved, two alike (equal ones are adjacent; alike in one batch), else at
    the end (alike in two batches). The UniqueNames plan is then made instead."""
    files = _ZipFiles()
    failed: dict[int, tuple[str, str]] = {}
    direct = bytearray()
    names = DistinctNames(reserved=selectors.RESERVED_ZIP_NAMES, temp_dir=_temp_dir())
    rows = selectors.zip_order_rows_by_name(project=project, order=order)

    def in_name_order() -> Iterator[list[tuple]]:
        available = FileState.AVAILABLE
        try:
            for batch in _batches(rows, NAME_BATCH):
                names.add_in_order([row[1] for row in batch])
                batch = [row for row in batch if row[8] == available]
                # A direct file of the expected size is fine: one stat of its path (the usual
                # case, a whole batch at once); anything else is asked in full, for the reason
                # NOTICE.txt gives.
                paths = files.direct_paths(project, batch)
                if files.all_direct_of_size(paths, [row[2] for row in batch]):
                    direct.extend(b"\1" * len(batch))
                    entries = list(map(_ENTRY_OF_DIRECT_ROW, batch))
                else:
                    entries = list(_checked_one_by_one(batch, paths, files, direct, failed))
                if entries:
                    yield entries
            if not names.distinct():
                raise NamesNotDistinct()
        finally:
            rows.close()
            names.close()

    return _planned(project=project, order=order, plan=_build_zip(
        project=project, order=order, batches=in_name_order(), failed=failed, direct=direct,
        manifest=True, created=timezone.now().astimezone(dt.timezone.utc)))


def _checked_one_by_one(rows: list[tuple], paths: list[str | None], files: _ZipFiles, direct: bytearray,
                        failed: dict[int, tuple[str, str]]) -> Iterator[tuple]:
    """The layout entries of these ZIP_ROW_FIELDS rows (`paths`: their direct_paths) whose
    file can be read, `direct` flags appended; the others go to `failed`."""
    for (file_id, filename, size, crc32, sha256, tier, location, cache_path, *_), path in zip(rows, paths):
        if path is None or _stat_size(path) != size:
            problem = files.problem(tier, location, cache_path, size)
            if problem:
                failed[file_id] = (filename, problem)
                continue
        direct.append(path is not None)
        yield filename, size, crc32, file_id, sha256 if len(sha256) == 64 else ""


def _planned(*, project: Project, order: Order, plan: OrderZip) -> OrderZip | None:
    """The plan with its manifest saved, or None (closed) when it holds nothing."""
    try:
        if not plan.file_count and not plan.failed:
            plan.close()
            return None
        zip_manifest.manifest_save(project=project, order=order, plan=plan)
    finally:
        plan.manifest_body.close()
        plan.manifest_body = None
    return plan


def _zip_prepare(*, project: Project, order: Order, by_name: bool) -> OrderZip | None:
    locator = _ZipFiles()
    failed: dict[int, tuple[str, str]] = {}
    direct = bytearray()
    # Names are unique over ALL files of the order; the archive lists its files by name.
    unique = selectors.order_file_names(project=project, order=order)
    side_keys = unique.changed_keys()

    def item(row) -> tuple | None:
        file_id, filename, size, crc32, sha256, tier, location, cache_path = row
        is_direct = locator.is_direct(project=project, tier=tier, location=location, sha256=sha256)
        # A direct file of the expected size is fine: one stat of its path (the usual case);
        # anything else is asked in full, for the reason NOTICE.txt gives.
        if not (is_direct and _stat_size(locator.direct_path(project, sha256)) == size):
            problem = locator.problem(tier, location, cache_path, size)
            if problem:
                failed[file_id] = (filename, problem)
                return None
        name = unique.name(file_id, filename) if file_id in side_keys or not by_name else filename
        return name, file_id, size, crc32, sha256 if len(sha256) == 64 else "", is_direct

    aside: list[tuple] = []
    if by_name:
        keys = sorted(k for k in side_keys if isinstance(k, int))
        for first in range(0, len(keys), SOURCE_BATCH):
            for row in selectors.zip_candidate_rows(project=project, order=order,
                                                    file_ids=keys[first : first + SOURCE_BATCH]):
                found = item(row)
                if found is not None:
                    aside.append(found)
    aside.sort()

    def in_name_order() -> Iterator[tuple]:
        previous = None
        for row in selectors.zip_candidate_rows(project=project, order=order, by_name=by_name):
            if by_name and row[0] in side_keys:
                continue
            found = item(row)
            if found is None:
                continue
            if not by_name:
                aside.append(found)
                continue
            if previous is not None and found[0] <= previous:
                raise NamesOutOfOrder(found[0])
            previous = found[0]
            yield found
        if not by_name:
            aside.sort()

    def files() -> Iterator[tuple[int, str, int, int, bytes]]:
        if not by_name:
            merged = itertools.chain(in_name_order(), aside)
        else:
            merged = heapq.merge(in_name_order(), aside) if aside else in_name_order()
        append = direct.append
        for name, file_id, size, crc32, sha256, is_direct in merged:
            append(is_direct)
            yield name, size, crc32, file_id, sha256

    return _planned(project=project, order=order, plan=_build_zip(
        project=project, order=order, batches=_batches(files()), failed=failed, direct=direct,
        manifest=True, created=timezone.now().astimezone(dt.timezone.utc)))


def order_zip_resume(*, project: Project, order: Order, etag: str | None) -> OrderZip | None:
    """The zip first served under `etag` (the latest one when None), rebuilt byte for byte,
    or None when it cannot be (unknown, in an older format, files gone or unreadable now)."""
    with _collector_paused():
        return _zip_resume(project=project, order=order, etag=etag)


def _zip_resume(*, project: Project, order: Order, etag: str | None) -> OrderZip | None:
    handle = zip_manifest.manifest_open(project=project, order=order, etag=etag)
    if handle is None:
        return None
    with handle:
        try:
            header = json.loads(handle.readline())
            if header.get("v") != zip_manifest.MANIFEST_VERSION:
                return None
            failed = {int(fid): (filename, reason) for fid, filename, reason in header["failed"]}
            plan = _build_zip(project=project, order=order, batches=_batches(zip_manifest.manifest_rows(handle)),
                              failed=failed, created=dt.datetime.fromisoformat(header["created"]))
        except (ValueError, KeyError, TypeError, OSError):
            return None
    if plan.layout.etag != header["etag"] or plan.file_count != header["count"]:
        plan.close()
        return None
    if not _zip_files_still_readable(project=project, order=order, plan=plan):
        plan.close()
        return None
    return plan


def _zip_files_still_readable(*, project: Project, order: Order, plan: OrderZip) -> bool:
    """Every file of the zip (and of its NOTICE.txt) is still the order's, and readable (and
    which ones are `direct`, see _Sources)."""
    files = _ZipFiles()
    layout = plan.layout
    for first in range(0, plan.file_count, SOURCE_BATCH):
        last = min(first + SOURCE_BATCH, plan.file_count)
        batch = list(layout.iter_records(first, last))
        rows = {r[0]: r for r in selectors.zip_source_rows(
            project=project, order=order, file_ids=[record[4] for record in batch])}
        found = [rows.get(record[4]) for record in batch]
        if None in found:
            return False
        # As ZIP_ROW_FIELDS rows, for direct_paths: (id, -, size, -, sha256, tier, location, cache_path).
        files_now = [(key, None, size, None, "" if sha == _NO_SHA else sha.hex(), *row[1:])
                     for (_, _, size, _, key, sha), row in zip(batch, found)]
        # As when planned: a direct file of the expected size is fine (one stat, a batch at
        # once); any other is asked in full.
        paths = files.direct_paths(project, files_now)
        if not files.all_direct_of_size(paths, [f[2] for f in files_now]):
            for (_, _, size, _, _, tier, location, cache_path), path in zip(files_now, paths):
                if (path is None or _stat_size(path) != size) and files.problem(tier, location, cache_path, size):
                    return False
        plan.sources.direct[first:last] = bytes(path is not None for path in paths)
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

    data_count, notice_index = plan.file_count, plan.notice_index

    def on_delivered(first: int, stop: int) -> None:
        nonlocal notice_sent
        if first < data_count:
            delivered.extend(layout.int_keys(first, min(stop, data_count)))
        if notice_index is not None and first <= notice_index < stop:
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
        for chunk in layout.iter_range(start, end, chunk_size=chunk_size, on_delivered_range=on_delivered):
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
