"""Writes to the catalog: loading a manifest in bulk."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from django.db import transaction
from django.utils import timezone

from portal.tenancy.models import Project

from . import storage
from .manifest import DatasetEntry, ManifestError, read_manifest
from .models import DataFile, DataObject, Dataset

BATCH_SIZE = 2000
URN_NAMESPACE = uuid.UUID("0b4b5c1e-2f7a-4f43-9d1e-5a0c3f6e8d21")

Progress = Callable[[str, int], None]  # (phase, items done since last call)


def generated_ip_id(*, project: Project, kind: str, key: str) -> str:
    """`URN:AIP:<kind>:<project>:<uuid5>:V1`, stable for the same key so reloading is idempotent."""
    return f"URN:AIP:{kind}:{project.slug}:{uuid.uuid5(URN_NAMESPACE, f'{project.slug}:{key}')}:V1"


@dataclass
class LoadResult:
    datasets_created: int = 0
    datasets_updated: int = 0
    objects_created: int = 0
    objects_updated: int = 0
    files_created: int = 0
    files_updated: int = 0

    @property
    def changed(self) -> bool:
        return any(vars(self).values())

    def __str__(self) -> str:
        return (f"datasets: {self.datasets_created} created, {self.datasets_updated} updated; "
                f"objects: {self.objects_created} created, {self.objects_updated} updated; "
                f"files: {self.files_created} created, {self.files_updated} updated")


def _no_progress(phase: str, done: int) -> None:
    pass


def _assign_ip_ids(*, project: Project, datasets: list[DatasetEntry]) -> None:
    seen_datasets: dict[str, str] = {}
    seen_objects: dict[str, str] = {}
    for ds in datasets:
        ds.ip_id = ds.ip_id or generated_ip_id(project=project, kind="DATASET", key=f"dataset:{ds.label}")
        if ds.ip_id in seen_datasets:
            raise ManifestError(ds.where, f"ipId {ds.ip_id} is also used by {seen_datasets[ds.ip_id]}")
        seen_datasets[ds.ip_id] = ds.where
        for obj in ds.objects:
            generated = obj.ip_id is None
            # Keyed by dataset and label: the same label may exist in two datasets.
            obj.ip_id = obj.ip_id or generated_ip_id(project=project, kind="DATA",
                                                     key=f"{ds.ip_id}:{obj.label}")
            if obj.ip_id in seen_objects:
                hint = " (objects with the same label in one dataset need explicit ipIds)" if generated else ""
                raise ManifestError(obj.where, f"ipId {obj.ip_id} is also used by {seen_objects[obj.ip_id]}{hint}")
            seen_objects[obj.ip_id] = obj.where
            names = set()
            for f in obj.files:
                if (f.data_type, f.filename) in names:
                    raise ManifestError(f.where, f"{f.filename} is listed twice as {f.data_type}")
                names.add((f.data_type, f.filename))


def _hash_and_store(*, project: Project, datasets: list[DatasetEntry], progress: Progress) -> dict:
    """Digests of every distinct source file (read once each), copied into its tier's storage."""
    digests: dict[Path, storage.Digests] = {}
    stored: set[tuple[str, str]] = set()
    for ds in datasets:
        for obj in ds.objects:
            for f in obj.files:
                try:
                    if f.path not in digests:
                        digests[f.path] = storage.file_digests(f.path)
                    d = digests[f.path]
                    location = storage.location_for(project_slug=project.slug, sha256=d.sha256)
                    if (f.tier, location) not in stored:
                        storage.store_file(tier=f.tier, location=location, source=f.path, size=d.size)
                        stored.add((f.tier, location))
                except OSError as exc:
                    raise ManifestError(f.where, f"cannot read or store {f.filename}: {exc.strerror or exc}")
            progress("files", len(obj.files))
    return digests


def catalog_load(*, project: Project, manifest: Path, progress: Progress | None = None) -> LoadResult:
    """Loads a manifest into `project`'s catalog: all of it or, on any bad entry, nothing.

    Idempotent: objects are matched by ipId (generated ones are stable) and files by
    (object, dataType, filename); a second load of the same manifest changes no row.
    Rows are written with bulk_create / bulk_update in batches of BATCH_SIZE.
    """
    progress = progress or _no_progress
    datasets = read_manifest(Path(manifest))
    _assign_ip_ids(project=project, datasets=datasets)
    digests = _hash_and_store(project=project, datasets=datasets, progress=progress)
    with transaction.atomic():
        return _write_rows(project=project, datasets=datasets, digests=digests, progress=progress)


def _write_rows(*, project: Project, datasets: list[DatasetEntry], digests: dict, progress: Progress) -> LoadResult:
    result = LoadResult()
    now = timezone.now()

    # Datasets
    existing_ds = {d.ip_id: d for d in Dataset.objects.filter(project=project,
                                                             ip_id__in=[d.ip_id for d in datasets])}
    new_ds, changed_ds = [], []
    for entry in datasets:
        row = existing_ds.get(entry.ip_id)
        if row is None:
            new_ds.append(Dataset(project=project, ip_id=entry.ip_id, label=entry.label,
                                  properties=entry.properties))
        elif (row.label, row.properties) != (entry.label, entry.properties):
            row.label, row.properties = entry.label, entry.properties
            changed_ds.append(row)
    Dataset.objects.bulk_create(new_ds, batch_size=BATCH_SIZE)
    Dataset.objects.bulk_update(changed_ds, ["label", "properties"], batch_size=BATCH_SIZE)
    result.datasets_created, result.datasets_updated = len(new_ds), len(changed_ds)
    ds_ids = dict(Dataset.objects.filter(project=project, ip_id__in=[d.ip_id for d in datasets])
                  .values_list("ip_id", "id"))

    # Data objects: compare with what is there (plain tuples: no model instance per row),
    # then insert and update in batches.
    existing_obj = {
        row[0]: row for row in DataObject.objects.filter(project=project).values_list(
            "ip_id", "id", "dataset_id", "label", "creation_date", "tags", "properties")
    }
    new_obj, changed_obj = [], []
    for ds in datasets:
        for entry in ds.objects:
            row = existing_obj.get(entry.ip_id)
            wanted = (ds_ids[ds.ip_id], entry.label, entry.tags, entry.properties)
            if row is None:
                new_obj.append(DataObject(
                    project=project, ip_id=entry.ip_id, dataset_id=wanted[0], label=entry.label,
                    creation_date=entry.creation_date or now, tags=entry.tags,
                    tags_index=DataObject.tags_index_for(entry.tags), properties=entry.properties))
                continue
            _, pk, dataset_id, label, creation_date, tags, properties = row
            date_changed = entry.creation_date is not None and entry.creation_date != creation_date
            if (dataset_id, label, tags, properties) != wanted or date_changed:
                changed_obj.append(DataObject(
                    pk=pk, project=project, ip_id=entry.ip_id, dataset_id=wanted[0], label=entry.label,
                    creation_date=entry.creation_date or creation_date, tags=entry.tags,
                    tags_index=DataObject.tags_index_for(entry.tags), properties=entry.properties))
    for start in range(0, len(new_obj), BATCH_SIZE):
        batch = new_obj[start:start + BATCH_SIZE]
        DataObject.objects.bulk_create(batch, batch_size=BATCH_SIZE)
        progress("objects", len(batch))
    DataObject.objects.bulk_update(
        changed_obj, ["dataset_id", "label", "tags", "tags_index", "properties", "creation_date"],
        batch_size=BATCH_SIZE)
    progress("objects", len(changed_obj))
    result.objects_created, result.objects_updated = len(new_obj), len(changed_obj)
    obj_ids = dict(DataObject.objects.filter(project=project).values_list("ip_id", "id"))

    # Data files, matched by (object, dataType, filename).
    existing_files = {
        (row[1], row[2], row[3]): row for row in DataFile.objects.filter(project=project).values_list(
            "id", "data_object_id", "data_type", "filename", "mime_type", "sha256", "tier")
    }
    new_files, changed_files = [], []
    for ds in datasets:
        for entry in ds.objects:
            object_id = obj_ids[entry.ip_id]
            for f in entry.files:
                d = digests[f.path]
                values = dict(mime_type=f.mime_type, size=d.size, checksum=d.md5, sha256=d.sha256,
                              crc32=d.crc32, tier=f.tier,
                              location=storage.location_for(project_slug=project.slug, sha256=d.sha256))
                row = existing_files.get((object_id, f.data_type, f.filename))
                if row is None:
                    new_files.append(DataFile(project=project, data_object_id=object_id,
                                              data_type=f.data_type, filename=f.filename, **values))
                elif (row[5], row[6], row[4]) != (d.sha256, f.tier, f.mime_type):
                    changed_files.append(DataFile(pk=row[0], project=project, data_object_id=object_id,
                                                  data_type=f.data_type, filename=f.filename, **values))
    for start in range(0, len(new_files), BATCH_SIZE):
        batch = new_files[start:start + BATCH_SIZE]
        DataFile.objects.bulk_create(batch, batch_size=BATCH_SIZE)
        progress("file rows", len(batch))
    DataFile.objects.bulk_update(
        changed_files, ["mime_type", "size", "checksum", "sha256", "crc32", "tier", "location"],
        batch_size=BATCH_SIZE)
    result.files_created, result.files_updated = len(new_files), len(changed_files)
    return result
