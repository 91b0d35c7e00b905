"""Building a delivery's package in the delivery cache (run by the Celery task).

    claim (compare-and-set, a fresh token) -> reserve cache space (evicting the oldest done
    deliveries, or `DELIVERY.packageTooLarge`) -> restore NEARLINE files into the cache ->
    write the zip of the whole package in one pass, reading every ONLINE file once from its
    storage while hashing it (a SHA-256 that differs from the catalog's is
    `DELIVERY.notVerified`) -> artifacts, in batches -> done.

An ONLINE file's artifact is a byte range of the package (`archive_offset`): its bytes are
stored once, in the zip. Artifacts store their SHA-256; their signatures are made when they
are read (`signing.artifact_signature`), and so is a file's metaData, of its own columns
(`DeliveryArtifact.shown_meta_data`).

Every write of the worker is conditional on its claim token: a delivery deleted, rebuilt or
taken over meanwhile makes the worker stop at its next progress report. Files are stored
whole (and verified) or not at all through `storage.Locator` (local disk or object storage);
each preparation has its own folder (`g<generation>`), so a task run twice (acks_late
redelivery) simply starts that preparation again.
"""
from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import logging
import marshal
import os
import tempfile
import time
import uuid
from datetime import timedelta
from itertools import islice
from typing import Iterable, Iterator

from django.db import connection, transaction
from django.utils import timezone

from portal.files.crc import crc32
from portal.files.names import DistinctNames, NamesNotDistinct, NamesOutOfOrder
from portal.files.zip_layout import (DOS_EPOCH, MAX32, ZipEntry, ZipLayout, ZipSourceError, _central_extra_length,
                                     _local_header_length, central_record, dos_datetime, end_records,
                                     iter_entry_data, local_header)
from portal.catalog import storage
from portal.catalog.models import StorageTier
from portal.errors import Failed
from portal.tenancy.models import Project

from . import codes, selectors, services
from .downloadorders.codes import TARGET_KIND as DOWNLOAD_ORDER_KIND
from .models import Delivery, DeliveryArtifact, DeliveryStatus
from .transitions import Action, delivery_transition

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
# Progress is written every this many bytes, or after a file when this long has passed (many
# small files must not cost a database write each).
PROGRESS_EVERY_BYTES = 8 * 1024 * 1024
PROGRESS_EVERY_SECONDS = 1.0
SUMS_NAME = "SHA256SUMS"
FILES_DIR = "files"
ARCHIVE_NAME = "package.zip"


class PrepareFailed(Failed):
    """The package cannot be prepared; `code` and `message` go into the delivery's `error`."""


class LostClaim(Exception):
    """The delivery was deleted, rebuilt or taken over by another worker."""


class Worker:
    def __init__(self, project: Project, delivery: Delivery, token: str):
        self.project, self.delivery, self.token = project, delivery, token
        self.prepared = 0
        self.reported = 0
        self.reported_at = time.monotonic()
        self.total = 1
        # While the worker's own connection streams a COPY, progress goes through this one.
        self.side: _SideConnection | None = None

    def _mine(self):
        return Delivery.objects.filter(project=self.project, id=self.delivery.pk, claim_token=self.token)

    def report(self, *, force: bool = False) -> None:
        if not force and self.prepared - self.reported < PROGRESS_EVERY_BYTES:
            return
        self._write()

    def report_file_done(self) -> None:
        if (self.prepared - self.reported >= PROGRESS_EVERY_BYTES
                or time.monotonic() - self.reported_at >= PROGRESS_EVERY_SECONDS):
            self._write()

    def _progress_fields(self) -> dict:
        return dict(bytes_prepared=self.prepared, progress=min(99, self.prepared * 100 // max(self.total, 1)),
                    heartbeat_at=timezone.now())

    def _write(self) -> None:
        fields = self._progress_fields()
        if not (self.side.update(self, fields) if self.side is not None else self._mine().update(**fields)):
            raise LostClaim()
        self.reported, self.reported_at = self.prepared, time.monotonic()

    def transition(self, action: Action, **fields) -> bool:
        """A status change of the delivery this worker still holds (its claim token)."""
        return delivery_transition(project=self.project, delivery_id=self.delivery.pk, action=action,
                                   where={"claim_token": self.token}, **fields)


def _archive_filename(catalog_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in catalog_id) + ".zip"


def file_key(folder: str, name: str) -> str:
    """Where a file of the package stored on its own is, in the DELIVERY_CACHE area."""
    return f"{folder}/{FILES_DIR}/{name}"


def open_online(package_file, locator: storage.Locator | None = None):
    """An ONLINE file's bytes from its storage, or `DELIVERY.notExist` (`locator`: one for a
    whole preparation, its roots resolved once)."""
    try:
        if locator is None or package_file.tier != StorageTier.ONLINE:
            source = storage.open_online(package_file)
        else:
            source = locator.open(StorageTier.ONLINE, package_file.location)
        source.peek(1)  # a missing object fails here (its first GET)
    except (OSError, storage.StorageError) as exc:
        raise PrepareFailed(codes.NOT_EXIST, f"{package_file.filename} is missing from storage") from exc
    return source


def open_local(filename: str, path: str) -> int:
    """A file descriptor on an ONLINE file on local disk at `path`, or `DELIVERY.notExist` (a
    bare descriptor: at a million small files, a buffered file object per file costs more than
    hashing the file)."""
    try:
        return os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise PrepareFailed(codes.NOT_EXIST, f"{filename} is missing from storage") from exc


def _not_verified(package_file) -> PrepareFailed:
    return PrepareFailed(codes.NOT_VERIFIED, f"{package_file.filename}: its SHA-256 does not match the catalog's "
                                             "(the stored file is corrupt)")


# Local files up to this size are read whole in one system call (and verified) while the zip
# is written; bigger ones (and files on object storage) are streamed through `_VerifiedReader`.
READ_WHOLE_UP_TO = 1024 * 1024


class _VerifiedReader:
    """A source streamed by the zip writer, hashed as it is read: with its last bytes, its size
    and SHA-256 must be the catalog's (`DELIVERY.notVerified`), before they leave the zip."""

    def __init__(self, source, package_file):
        self._source, self._file = source, package_file
        self._digest, self._read = hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        chunk = self._source.read(n)
        self._digest.update(chunk)
        self._read += len(chunk)
        if self._read >= self._file.size:
            if self._read != self._file.size or self._source.read(1) or \
                    self._digest.hexdigest() != self._file.sha256:
                raise _not_verified(self._file)
        return chunk

    def seek(self, offset: int, whence: int = 0) -> int:
        raise OSError("a package source is read from its first byte")

    def close(self) -> None:
        self._source.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def copy_online(worker: Worker, package_file, key: str) -> None:
    """An ONLINE file copied (and verified) into the cache on its own (download orders)."""
    source = open_online(package_file)

    def verified_chunks():
        digest, size = hashlib.sha256(), 0
        with source:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                worker.prepared += len(chunk)
                worker.report()
                yield chunk
        if size != package_file.size or digest.hexdigest() != package_file.sha256:
            raise PrepareFailed(codes.NOT_VERIFIED, f"{package_file.filename}: its SHA-256 does not match the "
                                                    "catalog's (the stored file is corrupt)")

    # Stored whole, or not at all when the bytes do not verify.
    storage.Locator().write(storage.DELIVERY_CACHE, key, verified_chunks())


def _restore_nearline(worker: Worker, package_file, key: str) -> None:
    try:
        storage.restore_nearline(package_file, area=storage.DELIVERY_CACHE, key=key)
    except storage.RestoreFailed as exc:
        # restore_nearline checks the SHA-256 itself; a mismatch is a corrupt copy.
        code = codes.NOT_VERIFIED if "SHA-256" in exc.reason else codes.DOWNLOAD
        raise PrepareFailed(code, exc.reason) from exc
    worker.prepared += package_file.size


def write_archive(worker: Worker, layout: ZipLayout | None, key: str, chunks: Iterable[bytes] | None = None, *,
                  size: int | None = None) -> str:
    """Writes the zip (every byte counted as prepared; `chunks`: its bytes when not read
    through the layout, `size` their length when there is no layout); returns its SHA-256."""
    digest = hashlib.sha256()
    expected = len(layout) if size is None else size

    def archive_chunks():
        written = 0
        source = chunks if chunks is not None else layout.iter_range(0, len(layout) - 1, chunk_size=CHUNK)
        for chunk in source:
            written += len(chunk)
            worker.prepared += len(chunk)
            worker.report()
            yield chunk
        if written != expected:
            raise PrepareFailed(codes.INVALID, "the archive was written with a wrong length")

    try:
        # Hashed by the thread that writes it (local disk): the SHA-256 of a package of gigabytes
        # costs the worker no time of its own.
        storage.Locator().write(storage.DELIVERY_CACHE, key, archive_chunks(), digest=digest)
    except ZipSourceError as exc:
        raise PrepareFailed(codes.NOT_VERIFIED, f"{exc.entry.name}: {exc.reason}") from exc
    return digest.hexdigest()


def reserve(worker: Worker, footprint: int, archive_size: int) -> None:
    project = worker.project
    with transaction.atomic():
        # One reservation at a time per project: the project row is the cache's lock.
        locked = Project.objects.select_for_update().get(pk=project.pk)
        if not worker._mine().exists():
            raise LostClaim()
        if not services.cache_make_room(project=locked, delivery_id=worker.delivery.pk, needed=footprint):
            raise PrepareFailed(codes.PACKAGE_TOO_LARGE,
                                f"The package needs {footprint} bytes of delivery cache; the cache holds "
                                f"{locked.delivery_cache_capacity_bytes} bytes even after evicting every done "
                                "delivery.")
        if not worker.transition(Action.RESERVE, bytes_to_prepare=footprint, size=archive_size,
                                 **worker._progress_fields()):
            raise LostClaim()
        worker.reported, worker.reported_at = worker.prepared, time.monotonic()


ARTIFACT_BATCH = 1000
# The columns of a file artifact row, in the order `file_artifact` gives them.
ARTIFACT_COLUMNS = ("project_id", "delivery_id", "item_key", "artifact_type", "path", "archive_offset", "size",
                    "sha256", "signature", "is_executable", "arguments", "meta_data", "product_id", "md5", "tier",
                    "mime_type")


def finish(worker: Worker, *, archive_sha: str, archive_size: int, entries: int,
           file_artifacts: Iterable[tuple]) -> None:
    """Records the artifacts (the archive, then the rows of `file_artifacts`, from a generator:
    never a list of a million rows; COPY on PostgreSQL, batches elsewhere) and marks the
    delivery done, in one transaction."""
    with transaction.atomic():
        # Artifacts first: the `delivery.done` webhook written by the transition shows them (a lost
        # claim rolls them back).
        _start_artifacts(worker, archive_sha=archive_sha, archive_size=archive_size, entries=entries)
        _insert_artifacts(file_artifacts)
        _mark_done(worker)


def _start_artifacts(worker: Worker, *, archive_sha: str, archive_size: int, entries: int) -> DeliveryArtifact:
    """Replaces the delivery's artifacts by its archive's (the lowest id: the API lists it first)."""
    project, delivery = worker.project, worker.delivery
    archive = DeliveryArtifact(
        project=project, delivery=delivery, item_key=codes.ARCHIVE_ITEM_KEY,
        artifact_type=codes.ARCHIVE_ARTIFACT_TYPE, path=f"g{delivery.generation}/{ARCHIVE_NAME}", size=archive_size,
        sha256=archive_sha, signature="", mime_type="application/zip",
        meta_data={"filename": _archive_filename(delivery.catalog_id), "entries": entries,
                   "contentType": "application/zip"})
    DeliveryArtifact.objects.filter(project=project, delivery=delivery).delete()
    archive.save(force_insert=True)
    return archive


def _mark_done(worker: Worker) -> None:
    now = timezone.now()
    if not worker.transition(Action.FINISH, progress=100, bytes_prepared=worker.total, done_at=now,
                             heartbeat_at=now, expires_at=now + timedelta(days=worker.project.delivery_lifetime_days)):
        raise LostClaim()


_META = ARTIFACT_COLUMNS.index("meta_data")


def _copy_artifacts(cursor):
    """A COPY of ARTIFACT_COLUMNS rows into the artifacts table (PostgreSQL; a context manager)."""
    columns = ", ".join(f'"{c}"' for c in ARTIFACT_COLUMNS)
    return cursor.cursor.copy(f'COPY "{DeliveryArtifact._meta.db_table}" ({columns}) FROM STDIN')


def _insert_artifacts(rows: Iterable[tuple]) -> None:
    """Rows of ARTIFACT_COLUMNS, inserted in their order (ids ascending: the API's order). A
    row's meta data is a dict or its JSON text."""
    rows = iter(rows)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor, _copy_artifacts(cursor) as copy:
            for row in rows:
                if type(row[_META]) is not str:
                    row = row[:_META] + (json.dumps(row[_META]),) + row[_META + 1:]
                copy.write_row(row)
        return
    while batch := list(islice(rows, ARTIFACT_BATCH)):
        DeliveryArtifact.objects.bulk_create([
            DeliveryArtifact(**dict(zip(ARTIFACT_COLUMNS, row[:_META] + (
                json.loads(row[_META]) if type(row[_META]) is str else row[_META],) + row[_META + 1:])))
            for row in batch])


def file_artifact(worker: Worker, package_file, name: str, *, path: str,
                  archive_offset: int | None = None) -> tuple:
    """The artifact row (ARTIFACT_COLUMNS) of one file of the package (signed when read)."""
    f = package_file
    return (worker.project.pk, worker.delivery.pk, name, f.data_type, path, archive_offset, f.size, f.sha256, "",
            False, "", {}, f.product_id, f.checksum, f.tier, f.mime_type)


# --- the package of an order, a data object or a dataset ------------------------------------
#
# Memory stays flat at any package size: the database sorts the files by name and streams
# them (the few whose name in the package differs from their filename, renamed duplicates or
# sanitized names, are read first and merged in); each file's facts are spooled to a
# temporary file and read back for each pass (restores, the zip's entries, its central
# directory); SHA256SUMS is spooled too. The zip has the bytes a ZipLayout of the same entries
# gives (its record functions are used), written in one pass; the artifact rows go, as each
# entry is written, into a COPY running beside it on PostgreSQL (see _Artifacts).

# A spooled file: its name in the package, then the _FILE_FIELDS of selectors.
_NAME, _PK, _FILENAME, _PRODUCT, _TYPE, _MIME, _SIZE, _CRC, _MD5, _SHA, _TIER, _LOCATION = range(12)
_SPOOL_BATCH = 1000
_SUMS = SUMS_NAME.encode()
# ZipLayout's default timestamp.
_DOS_DATE, _DOS_TIME = dos_datetime(DOS_EPOCH)


class _Spool:
    """Tuples appended to an anonymous temporary file (marshal'ed batches, each after its
    length) and read back in order, as often as needed, one batch in memory."""

    def __init__(self):
        self._file = tempfile.TemporaryFile(dir=_temp_dir())
        self._batch: list[tuple] = []
        self.count = 0

    def append(self, item: tuple) -> None:
        self._batch.append(item)
        self.count += 1
        if len(self._batch) >= _SPOOL_BATCH:
            self._dump()

    def _dump(self) -> None:
        data = marshal.dumps(self._batch)
        self._file.write(len(data).to_bytes(8, "little"))
        self._file.write(data)
        self._batch = []

    def __iter__(self) -> Iterator[tuple]:
        if self._batch:
            self._dump()
        self._file.flush()
        self._file.seek(0)
        read = self._file.read
        while length := read(8):
            yield from marshal.loads(read(int.from_bytes(length, "little")))

    def close(self) -> None:
        self._file.close()


def _temp_dir() -> str | None:
    from django.conf import settings

    return getattr(settings, "FILE_UPLOAD_TEMP_DIR", None) or None


class _Package:
    """The plan of a package: its files in name order (spooled), SHA256SUMS, the zip's size."""

    def __init__(self):
        self.files = _Spool()
        self.sums = tempfile.TemporaryFile(dir=_temp_dir())
        self.sums_size = self.sums_crc = 0
        self.sums_sha = ""
        self.nearline_bytes = self.nearline_count = 0
        self.size = 0

    @property
    def count(self) -> int:
        return self.files.count

    def entries(self) -> Iterator[tuple[bytes, int, int, tuple | None]]:
        """(UTF-8 name, size, CRC-32, spooled file or None for SHA256SUMS) in the zip's order:
        by name, SHA256SUMS in its place."""
        pending = True
        for record in self.files:
            name = record[_NAME].encode("utf-8")
            if pending and name > _SUMS:
                pending = False
                yield _SUMS, self.sums_size, self.sums_crc, None
            yield name, record[_SIZE], record[_CRC], record
        if pending:
            yield _SUMS, self.sums_size, self.sums_crc, None

    def sums_chunks(self) -> Iterator[bytes]:
        self.sums.flush()
        self.sums.seek(0)
        while chunk := self.sums.read(CHUNK):
            yield chunk

    def close(self) -> None:
        self.files.close()
        self.sums.close()


def _plan_package(*, project: Project, delivery: Delivery) -> _Package:
    try:
        try:
            return _spool_package_distinct(project=project, delivery=delivery)
        except NamesNotDistinct:
            return _spool_package(project=project, delivery=delivery, by_name=True)
    except NamesOutOfOrder:
        log.warning("delivery %s: filenames not in code-point order from the database; sorting in memory",
                    delivery.pk)
        return _spool_package(project=project, delivery=delivery, by_name=False)


def _spool_package(*, project: Project, delivery: Delivery, by_name: bool) -> _Package:
    """The package's files in name order (the names `unique_names` gives over all of them,
    SHA256SUMS reserved), streamed from the database into a _Package."""
    names = selectors.package_names(project=project, delivery=delivery, reserved=[SUMS_NAME])
    side = names.changed_keys()
    aside: list[tuple] = []
    if by_name and side:
        keys = sorted(side)
        for first in range(0, len(keys), ARTIFACT_BATCH):
            for row in selectors.package_rows(project=project, delivery=delivery,
                                              file_ids=keys[first:first + ARTIFACT_BATCH]):
                aside.append((names.name(row[0], row[1]), *row))
        aside.sort()

    def in_name_order() -> Iterator[tuple]:
        previous = None
        for row in selectors.package_rows(project=project, delivery=delivery, by_name=by_name):
            if not by_name:
                aside.append((names.name(row[0], row[1]), *row))
                continue
            if row[0] in side:
                continue
            name = row[1]
            if previous is not None and name <= previous:
                raise NamesOutOfOrder(name)
            previous = name
            yield (name, *row)
        if not by_name:
            aside.sort()

    if by_name:
        records = heapq.merge(in_name_order(), aside) if aside else in_name_order()
    else:
        records = itertools.chain(in_name_order(), aside)
    return _spooled(records)


def _spool_package_distinct(*, project: Project, delivery: Delivery) -> _Package:
    """The usual package, planned in one pass over its files in name order: every file called
    by its filename (DistinctNames: safe as it is, not reserved, alike no other), so there is
    no pass over the names first. NamesNotDistinct, the package dropped, as soon as one is
    not (equal names are adjacent, alike ones in a batch are seen at once, in two batches at
    the end): the UniqueNames plan is made then."""
    names = DistinctNames(reserved=[SUMS_NAME], temp_dir=_temp_dir())
    rows = selectors.package_rows(project=project, delivery=delivery, by_name=True)

    def in_name_order() -> Iterator[tuple]:
        try:
            while batch := list(islice(rows, _SPOOL_BATCH)):
                names.add_in_order([row[1] for row in batch])
                for row in batch:
                    yield (row[1], *row)
            if not names.distinct():
                raise NamesNotDistinct()
        finally:
            close = getattr(rows, "close", None)
            if close is not None:  # a server-side cursor
                close()
            names.close()

    return _spooled(in_name_order())


def _spooled(records: Iterable[tuple]) -> _Package:
    package = _Package()
    try:
        _fill(package, records)
    except BaseException:
        package.close()
        raise
    return package


def _fill(package: _Package, records: Iterable[tuple]) -> None:
    sums_sha = hashlib.sha256()
    lines: list[bytes] = []
    sums_size = sums_crc = nearline = local_bytes = names_bytes = big = 0
    append = package.files.append
    for record in records:
        append(record)
        line = f"{record[_SHA]}  {record[_NAME]}\n".encode("utf-8")
        lines.append(line)
        if len(lines) >= _SPOOL_BATCH:
            block = b"".join(lines)
            lines.clear()
            sums_sha.update(block)
            sums_crc = crc32(block, sums_crc)
            sums_size += len(block)
            package.sums.write(block)
        name_length = len(line) - len(record[_SHA]) - 3
        size = record[_SIZE]
        names_bytes += name_length
        local_bytes += size
        if size >= MAX32:
            big += 1
        if record[_TIER] == StorageTier.NEARLINE:
            nearline += size
            package.nearline_count += 1
    block = b"".join(lines)
    sums_sha.update(block)
    package.sums_crc = crc32(block, sums_crc)
    package.sums_size = sums_size + len(block)
    package.sums.write(block)
    package.sums_sha = sums_sha.hexdigest()
    package.nearline_bytes = nearline
    count = package.count + 1
    names_bytes += len(_SUMS)
    local_bytes += package.sums_size
    cd_offset = 30 * count + names_bytes + 20 * big + local_bytes
    if cd_offset < MAX32:  # no local header offset needs zip64 in the central directory
        cd_size = 46 * count + names_bytes + 20 * big
    else:
        cd_size = offset = 0
        for name, size, _, _ in package.entries():
            cd_size += 46 + len(name) + _central_extra_length(size, offset)
            offset += 30 + len(name) + (20 if size >= MAX32 else 0) + size
    package.size = cd_offset + cd_size + len(end_records(cd_offset, cd_size, count))


def _local_path(locator: storage.Locator, slug: str, prefix: str, filename: str, location: str, sha: str) -> str:
    """The local path of an ONLINE file: joined by hand where the catalog puts it (its key
    follows from its SHA-256; a slug and hex digits cannot escape the root), else checked."""
    if len(sha) == 64 and "/" not in sha and location == f"{slug}/{sha[:2]}/{sha}":
        return prefix + location
    try:
        return locator.path(StorageTier.ONLINE, location)
    except storage.StorageError as exc:
        raise PrepareFailed(codes.NOT_EXIST, f"{filename} is missing from storage") from exc


class _SideConnection:
    """A second PostgreSQL connection (autocommit) for the progress reports of a worker whose
    own connection streams the artifact rows (a COPY inside the transaction that ends with
    the delivery done)."""

    def __init__(self):
        # (Driver errors become Django's: a lost database is retried by the task, as elsewhere.)
        with connection.wrap_database_errors:
            self._connection = connection.get_new_connection(connection.get_connection_params())
            self._connection.autocommit = True
            # A progress report need not wait for its WAL to reach the disk (which, while the
            # package is written, can take milliseconds): a lost one is superseded by the next.
            self._connection.execute("SET synchronous_commit TO off")

    def update(self, worker: Worker, fields: dict) -> bool:
        meta = Delivery._meta
        sets = ", ".join(f'"{meta.get_field(name).column}" = %s' for name in fields)
        with connection.wrap_database_errors, self._connection.cursor() as cursor:
            cursor.execute(f'UPDATE "{meta.db_table}" SET {sets} WHERE "project_id" = %s AND "id" = %s '
                           'AND "claim_token" = %s',
                           [*fields.values(), worker.project.pk, worker.delivery.pk, worker.token])
            return cursor.rowcount > 0

    def close(self) -> None:
        pool = getattr(connection, "pool", None)
        if pool is not None:
            pool.putconn(self._connection)
        else:
            self._connection.close()


def _package_chunks(worker: Worker, package: _Package, folder: str, emit) -> Iterator[bytes]:
    """The bytes of the package's zip, every source read once: a small local file read whole
    here (verified: size, SHA-256, CRC-32), the others (NEARLINE copies, big files, object
    storage) streamed and verified alike; `emit(row)` is given each file's artifact row as its
    entry is written. (A reading thread ahead of the writer was measured slower: the GIL
    hand-offs cost more than the overlapped system calls.)"""
    locator = storage.Locator()
    local = locator.is_local(StorageTier.ONLINE)
    whole = READ_WHOLE_UP_TO if local else -1
    slug = worker.project.slug
    prefix = locator.root(StorageTier.ONLINE) + os.sep if local else ""
    project_id, delivery_id = worker.project.pk, worker.delivery.pk
    generation = f"g{worker.delivery.generation}"
    archive_path, files_prefix = f"{generation}/{ARCHIVE_NAME}", f"{generation}/{FILES_DIR}/"
    online, nearline = StorageTier.ONLINE, StorageTier.NEARLINE
    sha256, read = hashlib.sha256, os.read
    buffer = bytearray()
    offset = 0
    for name, size, crc, record in package.entries():
        header = local_header(name, size, crc, _DOS_TIME, _DOS_DATE)
        buffer += header
        data_offset = offset + len(header)
        offset = data_offset + size
        if record is None:  # SHA256SUMS
            chunks = _checked(package.sums_chunks(), SUMS_NAME, size, crc)
        else:
            tier = record[_TIER]
            if 0 < size <= whole and tier == online:
                fd = open_local(record[_FILENAME], _local_path(locator, slug, prefix, record[_FILENAME],
                                                               record[_LOCATION], record[_SHA]))
                try:
                    data = read(fd, size + 1)
                finally:
                    os.close(fd)
                if len(data) != size or sha256(data).hexdigest() != record[_SHA] or crc32(data) != crc:
                    raise _not_verified(selectors.PackageFile(*record[1:]))
                if size < CHUNK:
                    buffer += data
                    chunks = ()
                else:
                    chunks = (data[i:i + CHUNK] for i in range(0, size, CHUNK))
            elif size:
                chunks = _streamed(locator, folder, record, size, crc)
            else:
                chunks = ()
            item = record[_NAME]
            emit((project_id, delivery_id, item, record[_TYPE],
                  files_prefix + item if tier == nearline else archive_path,
                  None if tier == nearline else data_offset, size, record[_SHA], "", False, "", "{}",
                  record[_PRODUCT], record[_MD5], tier, record[_MIME]))
        if chunks:
            if buffer:
                yield bytes(buffer)
                buffer.clear()
            yield from chunks
        elif len(buffer) >= CHUNK:
            yield bytes(buffer)
            buffer.clear()
    # The central directory, then the end records.
    cd_offset, offset, cd_size, count = offset, 0, 0, 0
    for name, size, crc, _ in package.entries():
        record = central_record(name, size, crc, offset, _DOS_TIME, _DOS_DATE)
        buffer += record
        cd_size += len(record)
        offset += _local_header_length(len(name), size) + size
        count += 1
        if len(buffer) >= CHUNK:
            yield bytes(buffer)
            buffer.clear()
    buffer += end_records(cd_offset, cd_size, count)
    yield bytes(buffer)


def _checked(chunks: Iterable[bytes], name: str, size: int, crc: int) -> Iterator[bytes]:
    """Generated bytes (SHA256SUMS) checked as any entry's: a spool gone wrong never makes a corrupt zip."""
    length = value = 0
    for chunk in chunks:
        length += len(chunk)
        value = crc32(chunk, value)
        yield chunk
    if length != size or value != crc:
        raise ZipSourceError(ZipEntry(name=name, size=size, crc32=crc), "content does not match its recorded CRC-32")


def _streamed(locator: storage.Locator, folder: str, record: tuple, size: int, crc: int) -> Iterator[bytes]:
    """A file's bytes read in chunks, CRC-checked: a NEARLINE file from its restored (verified)
    copy, an ONLINE one from its storage, its SHA-256 verified on the way (_VerifiedReader)."""
    package_file = selectors.PackageFile(*record[1:])
    if record[_TIER] == StorageTier.NEARLINE:
        def open_entry():
            return locator.open(storage.DELIVERY_CACHE, file_key(folder, record[_NAME]))
    else:
        def open_entry():
            return _VerifiedReader(open_online(package_file, locator), package_file)
    for chunk, _ in iter_entry_data(None, open_entry, lambda: ZipEntry(name=record[_NAME], size=size, crc32=crc),
                                    size, crc, 0, size - 1, CHUNK, True):
        yield chunk


def _copy_beside() -> bool:
    """Whether the artifact rows go into a COPY while the zip is written (_write_with_copy):
    on PostgreSQL, when the worker's connection is its own (autocommit, as in a Celery
    worker). In a caller's transaction (a test's) a second connection would not see the
    delivery: the rows are spooled to disk and inserted by `finish` instead, as on SQLite."""
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def _write_with_copy(worker: Worker, package: _Package, folder: str) -> None:
    """Writes the zip while its artifact rows stream into a COPY, in the transaction that ends
    with the delivery done: the database inserts and checks the rows (about what a file
    costs the worker) while the worker reads the next files. Progress goes through a second
    connection meanwhile."""
    worker.side = _SideConnection()
    try:
        with transaction.atomic():
            archive = _start_artifacts(worker, archive_sha="", archive_size=package.size, entries=package.count + 1)
            # The rows' foreign keys are not constraints in the database (see the model): nothing
            # to check at commit, and no KEY SHARE lock on the delivery and project rows for the
            # whole preparation (a transition's SELECT ... FOR UPDATE would wait for it).
            with connection.cursor() as cursor, _copy_artifacts(cursor) as copy:
                archive_sha = write_archive(worker, None, f"{folder}/{ARCHIVE_NAME}",
                                            _package_chunks(worker, package, folder, copy.write_row),
                                            size=package.size)
            worker.report(force=True)
            DeliveryArtifact.objects.filter(pk=archive.pk).update(sha256=archive_sha)
            _mark_done(worker)
    finally:
        side, worker.side = worker.side, None
        side.close()


def _package_build(worker: Worker, folder: str) -> int:
    """Prepares the package of an order, a data object or a dataset; returns its file count."""
    package = _plan_package(project=worker.project, delivery=worker.delivery)
    try:
        # The cache holds the zip, and NEARLINE files on their own too (restored before the zip).
        worker.total = package.nearline_bytes + package.size
        reserve(worker, worker.total, package.size)
        # Whatever an interrupted run of this preparation left is started over.
        services.remove_tree(folder)
        if package.nearline_count:
            for record in package.files:
                if record[_TIER] == StorageTier.NEARLINE:
                    _restore_nearline(worker, selectors.PackageFile(*record[1:]), file_key(folder, record[_NAME]))
                    worker.report_file_done()
        if _copy_beside():
            _write_with_copy(worker, package, folder)
            return package.count
        rows = _Spool()
        try:
            archive_sha = write_archive(worker, None, f"{folder}/{ARCHIVE_NAME}",
                                        _package_chunks(worker, package, folder, rows.append), size=package.size)
            worker.report(force=True)
            finish(worker, archive_sha=archive_sha, archive_size=package.size, entries=package.count + 1,
                   file_artifacts=rows)
        finally:
            rows.close()
        return package.count
    finally:
        package.close()


def delivery_build(*, project: Project, delivery_id: int, generation: int) -> str:
    """Prepares generation `generation` of a delivery; returns its final status (or `skipped`)."""
    token = uuid.uuid4().hex
    # Claim: a pending delivery, or one whose worker was lost (the task is delivered again).
    if not delivery_transition(project=project, delivery_id=delivery_id, action=Action.CLAIM,
                               where={"generation": generation}, claim_token=token, heartbeat_at=timezone.now(),
                               progress=0, bytes_prepared=0, updated_at=timezone.now()):
        return "skipped"
    delivery = Delivery.objects.get(project=project, id=delivery_id)
    worker = Worker(project, delivery, token)
    folder = services.generation_key(project_slug=project.slug, delivery_id=delivery_id, generation=generation)
    started = time.monotonic()
    try:
        if delivery.target_kind == DOWNLOAD_ORDER_KIND:  # renditions, conversions, names: its own plan
            from .downloadorders.preparation import download_order_build

            return download_order_build(worker, folder)
        count = _package_build(worker, folder)
        log.info("delivery %s of %s: %d files, %d bytes in %.1f s", delivery.catalog_id, project.slug,
                 count, worker.total, time.monotonic() - started)
        return DeliveryStatus.DONE
    except PrepareFailed as exc:
        log.warning("delivery %s of %s failed: %s %s", delivery.catalog_id, project.slug, exc.code, exc.message)
        _fail(worker, exc.code, exc.message, folder)
        return DeliveryStatus.ERROR
    except LostClaim:
        current = Delivery.objects.filter(project=project, id=delivery_id).values_list("status", "generation").first()
        # Another worker on the same preparation keeps the folder; otherwise it is ours to clear.
        if current is None or current[1] != generation or current[0] == DeliveryStatus.DELETE:
            services.remove_tree(folder)
        return "skipped"


def _fail(worker: Worker, code: str, message: str, folder: str) -> None:
    if worker.transition(Action.FAIL, error_code=code, error_message=message[:2000], claim_token="",
                         bytes_to_prepare=0, heartbeat_at=timezone.now()):
        services.remove_tree(folder)


def delivery_fail_unexpectedly(*, project: Project, delivery_id: int, generation: int, message: str) -> None:
    """Marks a delivery in error after an unexpected exception (the task's last resort)."""
    delivery_transition(project=project, delivery_id=delivery_id, action=Action.FAIL,
                        where={"generation": generation}, error_code=codes.UNKNOWN, error_message=message[:2000],
                        claim_token="", bytes_to_prepare=0)
