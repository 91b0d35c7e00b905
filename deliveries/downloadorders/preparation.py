"""Building a download order's package: the delivery preparation hands it over here (one
hook in `deliveries.preparation.delivery_build`, after the claim).

    plan (names, renditions, conversions) -> reserve cache space (an estimate; the real size
    is written once known) -> copy every source file while verifying it -> convert, in a
    pool of threads as large as the worker's cores -> zip (files, SHA256SUMS, NOTICE.txt for
    files a conversion could not handle) -> artifacts -> the order Completed (or Failed when
    nothing could be delivered), in the transaction that marks the delivery done.

It reuses the delivery worker (claim token, progress, reservation, archive writer, artifacts),
so a download order is prepared, retried, freed and evicted like any delivery.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from django.conf import settings
from django.db import transaction

from portal.catalog import storage
from portal.catalog.models import StorageTier
from portal.files.names import sanitize_filename
from portal.files.zip_layout import ZipEntry, ZipLayout, sha256sums_content

from .. import codes as delivery_codes
from .. import conversions
from ..models import DeliveryArtifact, DeliveryStatus
from .. import services
from ..preparation import ARCHIVE_NAME, FILES_DIR, LostClaim, PrepareFailed, Worker, copy_online, file_artifact, \
    file_key, finish, reserve, write_archive
from . import codes, selectors
from .models import DownloadOrder
from .transitions import Action, download_order_transition

log = logging.getLogger(__name__)

SOURCES_DIR = "sources"
# Sources to convert up to this size are read into memory by the conversion thread itself.
IN_MEMORY_LIMIT = 64 * 1024 * 1024


def conversion_threads() -> int:
    """Every core this worker may use (ORDERLY_CONVERSION_THREADS to cap it)."""
    configured = int(getattr(settings, "CONVERSION_THREADS", 0) or 0)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, configured or cores)


def _notice(failures: list[tuple[str, str]]) -> bytes:
    return "".join(f"Failed to convert file ({name}): {reason}.\n" for name, reason in failures).encode("utf-8")


def _additional_info(failures: list[tuple[str, str]], delivered: int) -> str:
    if not failures:
        return ""
    listed = "; ".join(f"{name} ({reason})" for name, reason in failures[:20])
    more = f" and {len(failures) - 20} more" if len(failures) > 20 else ""
    head = (f"{len(failures)} file(s) could not be converted and are listed in {codes.NOTICE_NAME}"
            if delivered else "No file could be delivered")
    return f"{head}: {listed}{more}."


def _verified_chunks(source):
    """An ONLINE source's bytes, checked against the catalog like a copy is (at the end)."""
    try:
        stream = storage.open_online(source)
    except (OSError, storage.StorageError) as exc:
        raise PrepareFailed(delivery_codes.NOT_EXIST, f"{source.filename} is missing from storage") from exc
    digest, size = hashlib.sha256(), 0
    with stream:
        while chunk := stream.read(storage.CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
            yield chunk
    if size != source.size or digest.hexdigest() != source.sha256:
        raise PrepareFailed(delivery_codes.NOT_VERIFIED, f"{source.filename}: its SHA-256 does not match the "
                                                         "catalog's (the stored file is corrupt)")


def _read_verified(source) -> bytes:
    """A small ONLINE source read into memory by a conversion thread."""
    return b"".join(_verified_chunks(source))


def _local_sources(worker: Worker, plan: list[selectors.PlannedFile], sources_dir: Path) -> dict[int, Path]:
    """Sources that need a copy on disk first, once each: NEARLINE ones (restored) and large
    ones to convert. Smaller ONLINE sources are read by the conversion threads themselves."""
    paths: dict[int, Path] = {}
    for planned in plan:
        source = planned.source
        if source.pk in paths or not (source.tier == StorageTier.NEARLINE
                                      or (planned.steps and source.size > IN_MEMORY_LIMIT)):
            continue
        target = sources_dir / str(source.pk)
        if source.tier == StorageTier.NEARLINE:
            try:
                storage.restore_nearline(source, target)
            except storage.RestoreFailed as exc:
                code = delivery_codes.NOT_VERIFIED if "SHA-256" in exc.reason else delivery_codes.DOWNLOAD
                raise PrepareFailed(code, exc.reason) from exc
        else:
            with open(target, "wb") as out:
                for chunk in _verified_chunks(source):
                    out.write(chunk)
        worker.prepared += source.size
        paths[source.pk] = target
        worker.report_file_done()
    return paths


def _convert_one(planned: selectors.PlannedFile, local: Path | None, files_dir: Path) -> conversions.Converted:
    source = local if local is not None else _read_verified(planned.source)
    return conversions.convert(source=source, filename=planned.name, mime_type=planned.source.mime_type,
                               steps=list(planned.steps), target_dir=files_dir)


def _upload(local: Path, key: str) -> None:
    """A file of the scratch folder into the delivery cache (local disk or object storage)."""
    with open(local, "rb") as source:
        storage.Locator().write(storage.DELIVERY_CACHE, key, iter(lambda: source.read(storage.CHUNK_SIZE), b""))


def _convert_all(worker: Worker, plan, folder: str, sources_dir: Path, files_dir: Path):
    """Runs every conversion (threads), places every file; returns (delivered, failures) where
    delivered is a list of (name, PackageFile with the facts of the delivered bytes)."""
    local = _local_sources(worker, plan, sources_dir)
    delivered, failures = [], []
    with ThreadPoolExecutor(max_workers=conversion_threads(), thread_name_prefix="convert") as pool:
        futures = {pool.submit(_convert_one, p, local.get(p.source.pk), files_dir): p for p in plan if p.steps}
        # Files delivered as they are: copied (and verified) while the pool converts.
        for planned in (p for p in plan if not p.steps):
            delivered.append((planned.name, planned.source))
            if planned.source.pk in local:
                _upload(local[planned.source.pk], file_key(folder, planned.name))
            else:
                copy_online(worker, planned.source, file_key(folder, planned.name))
            worker.report_file_done()
        for future, planned in futures.items():
            try:
                result = future.result()
            except conversions.ConversionFailed as exc:
                failures.append((planned.name, exc.reason))
                log.info("download order conversion of %s failed: %s", planned.name, exc.reason)
            else:
                _upload(result.path, file_key(folder, planned.name))
                result.path.unlink(missing_ok=True)
                d = result.digests
                delivered.append((planned.name, replace(planned.source, filename=planned.name, size=d.size,
                                                        crc32=d.crc32, checksum=d.md5, sha256=d.sha256,
                                                        mime_type=result.mime_type)))
            worker.prepared += planned.source.size
            worker.report_file_done()
    delivered.sort(key=lambda pair: pair[0].encode("utf-8"))
    return delivered, failures


def _layout(delivered, failures, folder: str) -> ZipLayout:
    locator = storage.Locator()

    def opener(key: str):
        return lambda: locator.open(storage.DELIVERY_CACHE, key)

    entries = [ZipEntry(name=name, size=f.size, crc32=f.crc32, sha256=f.sha256,
                        opener=opener(file_key(folder, name))) for name, f in delivered]
    entries.append(ZipEntry.from_bytes(codes.SUMS_NAME, sha256sums_content((n, f.sha256) for n, f in delivered)))
    if failures:
        entries.append(ZipEntry.from_bytes(codes.NOTICE_NAME, _notice(failures)))
    entries.sort(key=lambda e: e.name.encode("utf-8"))
    return ZipLayout(entries)


def _fail_order(project, download_order_id: int, message: str) -> None:
    download_order_transition(project=project, download_order_id=download_order_id, action=Action.FAIL,
                              reason=message[:500], additional_info=message[:4000])


def download_order_build(worker: Worker, folder: str) -> str:
    """Prepares the package of the download order behind `worker.delivery` (claimed)."""
    project, delivery = worker.project, worker.delivery
    order = DownloadOrder.objects.filter(project=project, delivery=delivery).first()
    if order is None:
        raise PrepareFailed(delivery_codes.NOT_EXIST, f"{delivery.catalog_id} names no download order.")
    download_order_transition(project=project, download_order_id=order.pk, action=Action.PROCESS,
                              reason="preparation started", additional_info="")
    try:
        return _build(worker, folder, order)
    except PrepareFailed as exc:
        _fail_order(project, order.pk, exc.message)
        raise
    except LostClaim:
        raise  # deleted, rebuilt or taken over: whoever holds it now sets the order's status
    except Exception as exc:  # the delivery task marks the delivery in error; the order follows it
        _fail_order(project, order.pk, f"The package could not be prepared ({type(exc).__name__}).")
        raise


def _build(worker: Worker, folder: str, order: DownloadOrder) -> str:
    project = worker.project
    plan = selectors.package_plan(project=project, download_order=order)
    if not plan:
        raise PrepareFailed(delivery_codes.NOT_EXIST,
                            "No file of the requested renditions exists for the order's targets.")
    # Converted sizes are unknown until converted: reserve sources + outputs + zip at their sizes.
    estimate = sum({p.source.pk: p.source.size for p in plan}.values()) + 2 * sum(p.source.size for p in plan)
    worker.total = sum(p.source.size for p in plan) + 1
    reserve(worker, estimate, 0)
    services.remove_tree(folder)  # what an interrupted run left is started over
    # Sources and conversion results pass through a worker-local scratch folder; what is
    # delivered goes to the delivery cache through the Locator (local disk or object storage).
    with tempfile.TemporaryDirectory(prefix="orderly-downloadorder-") as scratch:
        files_dir, sources_dir = Path(scratch) / FILES_DIR, Path(scratch) / SOURCES_DIR
        files_dir.mkdir()
        sources_dir.mkdir()
        delivered, failures = _convert_all(worker, plan, folder, sources_dir, files_dir)
    if not delivered:
        raise PrepareFailed(delivery_codes.INVALID, _additional_info(failures, 0))
    layout = _layout(delivered, failures, folder)
    worker.total = worker.prepared + len(layout)
    archive_sha = write_archive(worker, layout, f"{folder}/{ARCHIVE_NAME}")
    footprint = sum(f.size for _, f in delivered) + len(layout)
    info = _additional_info(failures, len(delivered))
    with transaction.atomic():
        worker._mine().update(size=len(layout), bytes_to_prepare=footprint)
        files_prefix = f"g{worker.delivery.generation}/{FILES_DIR}"
        finish(worker, archive_sha=archive_sha, archive_size=len(layout), entries=len(delivered) + 1,
               file_artifacts=(file_artifact(worker, f, name, path=f"{files_prefix}/{name}") for name, f in delivered))
        if order.zip_filename:
            archive = DeliveryArtifact.objects.get(project=project, delivery=worker.delivery,
                                                   item_key=delivery_codes.ARCHIVE_ITEM_KEY)
            archive.meta_data = {**archive.meta_data, "filename": zip_name(order.zip_filename)}
            archive.save(update_fields=["meta_data"])
        download_order_transition(project=project, download_order_id=order.pk, action=Action.COMPLETE,
                                  reason=f"{len(delivered)} file(s) delivered, {len(failures)} failed",
                                  additional_info=info)
    log.info("download order %s of %s: %d files delivered, %d conversions failed", order.pk, project.slug,
             len(delivered), len(failures))
    return DeliveryStatus.DONE


def zip_name(zip_filename: str) -> str:
    name = sanitize_filename(zip_filename)
    return name if name.lower().endswith(".zip") else f"{name}.zip"
