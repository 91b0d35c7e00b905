"""Building a delivery's package in the delivery cache (run by the Celery task).

    claim (compare-and-set, a fresh token) -> reserve cache space (evicting the oldest done
    deliveries, or `DELIVERY.packageTooLarge`) -> copy every file while hashing it (NEARLINE
    ones restored first; a SHA-256 that differs from the catalog's is `DELIVERY.notVerified`)
    -> write the zip of the whole package from its layout -> artifacts, signed -> done.

Every write of the worker is conditional on its claim token: a delivery deleted, rebuilt or
taken over meanwhile makes the worker stop at its next progress report. Files are stored
whole (and verified) or not at all through `storage.Locator` (local disk or object storage);
each preparation has its own folder (`g<generation>`), so a task run twice (acks_late
redelivery) simply starts that preparation again.
"""
from __future__ import annotations

import hashlib
import logging
import time
import uuid
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from portal.files.names import unique_names
from portal.files.zip_layout import ZipEntry, ZipLayout, ZipSourceError, sha256sums_content
from portal.catalog import storage
from portal.catalog.models import StorageTier
from portal.errors import Failed
from portal.tenancy.models import Project

from . import codes, selectors, services, signing
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


class _Worker:
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


def _plan(files: list[selectors.PackageFile]) -> tuple[dict[int, str], list[tuple[str, int]]]:
    """Unique names in the package, and (name, index) sorted by name (a deterministic zip)."""
    names = unique_names(((i, f.filename) for i, f in enumerate(files)), reserved=[SUMS_NAME])
    return names, sorted((name, i) for i, name in names.items())


def _file_key(folder: str, name: str) -> str:
    return f"{folder}/{FILES_DIR}/{name}"


def _layout(files, order, folder: str) -> ZipLayout:
    locator = storage.Locator()

    def opener(key: str):
        return lambda: locator.open(storage.DELIVERY_CACHE, key)

    entries = [ZipEntry(name=name, size=files[i].size, crc32=files[i].crc32, sha256=files[i].sha256,
                        opener=opener(_file_key(folder, name))) for name, i in order]
    sums = sha256sums_content((name, files[i].sha256) for name, i in order)
    entries.append(ZipEntry.from_bytes(SUMS_NAME, sums))
    entries.sort(key=lambda e: e.name.encode("utf-8"))
    return ZipLayout(entries)


def _copy_online(worker: _Worker, package_file, key: str) -> None:
    try:
        source = storage.open_online(package_file)
        source.peek(1)  # a missing object fails here (its first GET)
    except (OSError, storage.StorageError) as exc:
        raise PrepareFailed(codes.NOT_EXIST, f"{package_file.filename} is missing from storage") from exc

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


def _restore_nearline(worker: _Worker, package_file, key: str) -> None:
    try:
        storage.restore_nearline(package_file, area=storage.DELIVERY_CACHE, key=key)
    except storage.RestoreFailed as exc:
        # restore_nearline checks the SHA-256 itself; a mismatch is a corrupt copy.
        code = codes.NOT_VERIFIED if "SHA-256" in exc.reason else codes.DOWNLOAD
        raise PrepareFailed(code, exc.reason) from exc
    worker.prepared += package_file.size


def _write_archive(worker: _Worker, layout: ZipLayout, key: str) -> str:
    digest = hashlib.sha256()

    def archive_chunks():
        written = 0
        for chunk in layout.iter_range(0, len(layout) - 1):
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


def _reserve(worker: _Worker, footprint: int, archive_size: int) -> None:
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


def _finish(worker: _Worker, files, names, order, archive_sha: str, archive_size: int) -> None:
    project, delivery = worker.project, worker.delivery
    generation_prefix = f"g{delivery.generation}"
    artifacts = [DeliveryArtifact(
        project=project, delivery=delivery, item_key=codes.ARCHIVE_ITEM_KEY,
        artifact_type=codes.ARCHIVE_ARTIFACT_TYPE, path=f"{generation_prefix}/{ARCHIVE_NAME}", size=archive_size,
        sha256=archive_sha, signature=signing.sign_sha256(archive_sha), mime_type="application/zip",
        meta_data={"filename": _archive_filename(delivery.catalog_id), "entries": len(files) + 1,
                   "contentType": "application/zip"})]
    for name, i in order:
        f = files[i]
        artifacts.append(DeliveryArtifact(
            project=project, delivery=delivery, item_key=name, artifact_type=f.data_type,
            path=f"{generation_prefix}/{FILES_DIR}/{name}", size=f.size, sha256=f.sha256,
            signature=signing.sign_sha256(f.sha256), product_id=f.product_id, md5=f.checksum, tier=f.tier,
            mime_type=f.mime_type,
            meta_data={"filename": name, "productId": f.product_id, "dataType": f.data_type,
                       "mimeType": f.mime_type, "md5": f.checksum, "tier": f.tier}))
    now = timezone.now()
    with transaction.atomic():
        # Artifacts first: the `delivery.done` webhook written by the transition shows them (a lost
        # claim rolls them back).
        DeliveryArtifact.objects.filter(project=project, delivery=delivery).delete()
        DeliveryArtifact.objects.bulk_create(artifacts, batch_size=1000)
        if not worker.transition(Action.FINISH, progress=100, bytes_prepared=worker.total, done_at=now,
                                 heartbeat_at=now, expires_at=now + timedelta(days=project.delivery_lifetime_days)):
            raise LostClaim()


def delivery_build(*, project: Project, delivery_id: int, generation: int) -> str:
    """Prepares generation `generation` of a delivery; returns its final status (or `skipped`)."""
    token = uuid.uuid4().hex
    # Claim: a pending delivery, or one whose worker was lost (the task is delivered again).
    if not delivery_transition(project=project, delivery_id=delivery_id, action=Action.CLAIM,
                               where={"generation": generation}, claim_token=token, heartbeat_at=timezone.now(),
                               progress=0, bytes_prepared=0, updated_at=timezone.now()):
        return "skipped"
    delivery = Delivery.objects.get(project=project, id=delivery_id)
    worker = _Worker(project, delivery, token)
    folder = services.generation_key(project_slug=project.slug, delivery_id=delivery_id, generation=generation)
    started = time.monotonic()
    try:
        files = selectors.package_files(project=project, delivery=delivery)
        names, order = _plan(files)
        layout = _layout(files, order, folder)
        archive_size = len(layout)
        worker.total = sum(f.size for f in files) + archive_size
        _reserve(worker, worker.total, archive_size)
        # Whatever an interrupted run of this preparation left is started over.
        services.remove_tree(folder)
        for name, i in order:
            target = _file_key(folder, name)
            if files[i].tier == StorageTier.NEARLINE:
                _restore_nearline(worker, files[i], target)
            else:
                _copy_online(worker, files[i], target)
            worker.report_file_done()
        archive_sha = _write_archive(worker, layout, f"{folder}/{ARCHIVE_NAME}")
        worker.report(force=True)
        _finish(worker, files, names, order, archive_sha, archive_size)
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


def _fail(worker: _Worker, code: str, message: str, folder: str) -> None:
    if worker.transition(Action.FAIL, error_code=code, error_message=message[:2000], claim_token="",
                         bytes_to_prepare=0, heartbeat_at=timezone.now()):
        services.remove_tree(folder)


def delivery_fail_unexpectedly(*, project: Project, delivery_id: int, generation: int, message: str) -> None:
    """Marks a delivery in error after an unexpected exception (the task's last resort)."""
    delivery_transition(project=project, delivery_id=delivery_id, action=Action.FAIL,
                        where={"generation": generation}, error_code=codes.UNKNOWN, error_message=message[:2000],
                        claim_token="", bytes_to_prepare=0)
