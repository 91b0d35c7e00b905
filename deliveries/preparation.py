"""Building a delivery's package in the delivery cache (run by the Celery task).

    claim (compare-and-set, a fresh token) -> reserve cache space (evicting the oldest done
    deliveries, or `DELIVERY.packageTooLarge`) -> restore NEARLINE files into the cache ->
    write the zip of the whole package in one pass, reading every ONLINE file once from its
    storage while hashing it (a SHA-256 that differs from the catalog's is
    `DELIVERY.notVerified`) -> artifacts, in batches -> done.

An ONLINE file's artifact is a byte range of the package (`archive_offset`): its bytes are
stored once, in the zip. Artifacts store their SHA-256; their signatures are made when they
are read (`signing.artifact_signature`).

Every write of the worker is conditional on its claim token: a delivery deleted, rebuilt or
taken over meanwhile makes the worker stop at its next progress report. Files are stored
whole (and verified) or not at all through `storage.Locator` (local disk or object storage);
each preparation has its own folder (`g<generation>`), so a task run twice (acks_late
redelivery) simply starts that preparation again.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from datetime import timedelta
from itertools import islice
from typing import Iterable, Iterator

from django.db import connection, transaction
from django.utils import timezone

from portal.files.crc import crc32
from portal.files.names import unique_names
from portal.files.zip_layout import ZipEntry, ZipLayout, ZipSourceError, sha256sums_content
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
        if not self._mine().update(**self._progress_fields()):
            raise LostClaim()
        self.reported, self.reported_at = self.prepared, time.monotonic()

    def transition(self, action: Action, **fields) -> bool:
        """A status change of the delivery this worker still holds (its claim token)."""
        return delivery_transition(project=self.project, delivery_id=self.delivery.pk, action=action,
                                   where={"claim_token": self.token}, **fields)


def _archive_filename(catalog_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in catalog_id) + ".zip"


def _plan(files: list[selectors.PackageFile]) -> list[tuple[str, int]]:
    """(unique name in the package, index) sorted by name (a deterministic zip)."""
    names = unique_names(((i, f.filename) for i, f in enumerate(files)), reserved=[SUMS_NAME])
    return sorted((name, i) for i, name in names.items())


def file_key(folder: str, name: str) -> str:
    """Where a file of the package stored on its own is, in the DELIVERY_CACHE area."""
    return f"{folder}/{FILES_DIR}/{name}"


def _layout(files, order, folder: str) -> ZipLayout:
    """The package's zip: entries by name, each file read from where it is when written
    (ONLINE: its storage, verified on the way; NEARLINE: its restored, verified copy)."""
    locator = storage.Locator()

    def opener(index: int, key: int):
        package_file = files[key]
        if package_file.tier == StorageTier.NEARLINE:
            return locator.open(storage.DELIVERY_CACHE, file_key(folder, names_by_index[key]))
        return _VerifiedReader(open_online(package_file, locator), package_file)

    names_by_index = {i: name for name, i in order if files[i].tier == StorageTier.NEARLINE}
    sums = ZipEntry.from_bytes(SUMS_NAME, sha256sums_content((name, files[i].sha256) for name, i in order))

    def entries():
        # `order` is sorted by name (code points: the order of their UTF-8 bytes); SHA256SUMS
        # goes in its place. A generator: no entry object per file is kept.
        pending = [sums]
        for name, i in order:
            if pending and name > SUMS_NAME:
                yield pending.pop()
            yield ZipEntry(name=name, size=files[i].size, crc32=files[i].crc32, sha256=files[i].sha256, key=i)
        yield from pending

    return ZipLayout(entries(), opener=opener)


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


def open_local(package_file, locator: storage.Locator) -> int:
    """A file descriptor on an ONLINE file on local disk, or `DELIVERY.notExist` (a bare
    descriptor: at a million small files, a buffered file object per file costs more than
    hashing the file)."""
    try:
        return os.open(locator.path(StorageTier.ONLINE, package_file.location), os.O_RDONLY)
    except (OSError, storage.StorageError) as exc:
        raise PrepareFailed(codes.NOT_EXIST, f"{package_file.filename} is missing from storage") from exc


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


def _read_whole(package_file, expected_crc: int, locator: storage.Locator) -> bytes:
    """A small local ONLINE file, verified (size, SHA-256, and the CRC-32 its zip header says)."""
    fd = open_local(package_file, locator)
    try:
        data = os.read(fd, package_file.size + 1)
    finally:
        os.close(fd)
    if len(data) != package_file.size or hashlib.sha256(data).hexdigest() != package_file.sha256 \
            or crc32(data) != expected_crc:
        raise _not_verified(package_file)
    return data


def _package_chunks(layout: ZipLayout, files, locator: storage.Locator) -> Iterator[bytes]:
    """The bytes of the package's zip, every source read once: a small local file read whole
    here, the others (NEARLINE copies, big files, object storage, SHA256SUMS) through the
    layout's opener, streamed. (A reading thread ahead of the writer was measured slower: the
    GIL hand-offs cost more than the overlapped system calls.)"""
    whole = READ_WHOLE_UP_TO if locator.is_local(StorageTier.ONLINE) else -1
    buffer = bytearray()
    for index in range(layout.entry_count):
        buffer += layout.local_header(index)
        key = layout.key(index)
        f = files[key] if key is not None else None
        if f is not None and 0 < f.size <= whole and f.tier == StorageTier.ONLINE:
            data = _read_whole(f, layout.entry_crc32(index), locator)
            if len(data) < CHUNK:
                buffer += data
                if len(buffer) >= CHUNK:
                    yield bytes(buffer)
                    buffer.clear()
                continue
            chunks = (data[i:i + CHUNK] for i in range(0, len(data), CHUNK))
        else:
            start, size = layout.data_span(index)
            chunks = layout.iter_range(start, start + size - 1, chunk_size=CHUNK) if size else ()
        if buffer:
            yield bytes(buffer)
            buffer.clear()
        yield from chunks
    if buffer:
        yield bytes(buffer)
    yield from layout.iter_range(layout.central_directory_offset, len(layout) - 1, chunk_size=CHUNK)


def write_archive(worker: Worker, layout: ZipLayout, key: str, chunks: Iterable[bytes] | None = None) -> str:
    """Writes the zip (every byte counted as prepared; `chunks`: its bytes when not read
    through the layout); returns its SHA-256."""
    digest = hashlib.sha256()

    def archive_chunks():
        written = 0
        source = chunks if chunks is not None else layout.iter_range(0, len(layout) - 1, chunk_size=CHUNK)
        for chunk in source:
            digest.update(chunk)
            written += len(chunk)
            worker.prepared += len(chunk)
            worker.report()
            yield chunk
        if written != len(layout):
            raise PrepareFailed(codes.INVALID, "the archive was written with a wrong length")

    try:
        storage.Locator().write(storage.DELIVERY_CACHE, key, archive_chunks())
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
    project, delivery = worker.project, worker.delivery
    archive = DeliveryArtifact(
        project=project, delivery=delivery, item_key=codes.ARCHIVE_ITEM_KEY,
        artifact_type=codes.ARCHIVE_ARTIFACT_TYPE, path=f"g{delivery.generation}/{ARCHIVE_NAME}", size=archive_size,
        sha256=archive_sha, signature="", mime_type="application/zip",
        meta_data={"filename": _archive_filename(delivery.catalog_id), "entries": entries,
                   "contentType": "application/zip"})
    now = timezone.now()
    with transaction.atomic():
        # Artifacts first: the `delivery.done` webhook written by the transition shows them (a lost
        # claim rolls them back).
        DeliveryArtifact.objects.filter(project=project, delivery=delivery).delete()
        archive.save(force_insert=True)
        _insert_artifacts(file_artifacts)
        if not worker.transition(Action.FINISH, progress=100, bytes_prepared=worker.total, done_at=now,
                                 heartbeat_at=now, expires_at=now + timedelta(days=project.delivery_lifetime_days)):
            raise LostClaim()


def _insert_artifacts(rows: Iterable[tuple]) -> None:
    """Rows of ARTIFACT_COLUMNS, inserted in their order (ids ascending: the API's order)."""
    rows = iter(rows)
    if connection.vendor == "postgresql":
        table = DeliveryArtifact._meta.db_table
        columns = ", ".join(f'"{c}"' for c in ARTIFACT_COLUMNS)
        meta = ARTIFACT_COLUMNS.index("meta_data")
        with connection.cursor() as cursor, \
                cursor.cursor.copy(f'COPY "{table}" ({columns}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row[:meta] + (json.dumps(row[meta]),) + row[meta + 1:])
        return
    while batch := list(islice(rows, ARTIFACT_BATCH)):
        DeliveryArtifact.objects.bulk_create([DeliveryArtifact(**dict(zip(ARTIFACT_COLUMNS, row))) for row in batch])


def file_artifact(worker: Worker, package_file, name: str, *, path: str,
                  archive_offset: int | None = None) -> tuple:
    """The artifact row (ARTIFACT_COLUMNS) of one file of the package (signed when read)."""
    f = package_file
    return (worker.project.pk, worker.delivery.pk, name, f.data_type, path, archive_offset, f.size, f.sha256, "",
            False, "", {"filename": name, "productId": f.product_id, "dataType": f.data_type,
                        "mimeType": f.mime_type, "md5": f.checksum, "tier": f.tier},
            f.product_id, f.checksum, f.tier, f.mime_type)


def _package_artifacts(worker: Worker, files, layout: ZipLayout):
    """One artifact per file, in name order: NEARLINE ones are their restored copy, ONLINE ones
    the range of the package that holds their bytes."""
    generation_prefix = f"g{worker.delivery.generation}"
    archive_path = f"{generation_prefix}/{ARCHIVE_NAME}"
    for index in range(layout.entry_count):
        key = layout.key(index)
        if key is None:  # SHA256SUMS: in the zip only
            continue
        f, name = files[key], layout.name(index)
        if f.tier == StorageTier.NEARLINE:
            yield file_artifact(worker, f, name, path=f"{generation_prefix}/{FILES_DIR}/{name}")
        else:
            yield file_artifact(worker, f, name, path=archive_path, archive_offset=layout.data_span(index)[0])


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
        files = selectors.package_files(project=project, delivery=delivery)
        order = _plan(files)
        layout = _layout(files, order, folder)
        archive_size = len(layout)
        # The cache holds the zip, and NEARLINE files on their own too (restored before the zip).
        nearline = [(name, i) for name, i in order if files[i].tier == StorageTier.NEARLINE]
        worker.total = sum(files[i].size for _, i in nearline) + archive_size
        reserve(worker, worker.total, archive_size)
        # Whatever an interrupted run of this preparation left is started over.
        services.remove_tree(folder)
        for name, i in nearline:
            _restore_nearline(worker, files[i], file_key(folder, name))
            worker.report_file_done()
        archive_sha = write_archive(worker, layout, f"{folder}/{ARCHIVE_NAME}",
                                    _package_chunks(layout, files, storage.Locator()))
        worker.report(force=True)
        finish(worker, archive_sha=archive_sha, archive_size=archive_size, entries=len(files) + 1,
               file_artifacts=_package_artifacts(worker, files, layout))
        log.info("delivery %s of %s: %d files, %d bytes in %.1f s", delivery.catalog_id, project.slug,
                 len(files), worker.total, time.monotonic() - started)
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
