"""Reads of download orders: one for a caller, the caller's list, targets, the package plan."""
from __future__ import annotations

import os
from dataclasses import dataclass

from django.db.models import QuerySet

from portal.catalog.models import DataFile, DataType
from portal.errors import NotAllowed, NotFound
from portal.files.names import sanitize_filename, unique_names
from portal.tenancy.models import Project

from .. import conversions
from ..selectors import PackageFile
from . import codes
from .models import DownloadOrder, DownloadOrderTarget

# Rendition names beside the data types themselves (case-insensitive): the "original", and
# the best quicklook an object has.
RENDITION_ALIASES: dict[str, tuple[str, ...]] = {
    "ORIGINAL": (DataType.RAWDATA,),
    "QUICKLOOK": (DataType.QUICKLOOK_HD, DataType.QUICKLOOK_MD, DataType.QUICKLOOK_SD),
}
_FILE_FIELDS = ("pk", "filename", "data_object__ip_id", "data_type", "mime_type", "size", "crc32", "checksum",
                "sha256", "tier", "location")


def rendition_types(name: str) -> tuple[str, ...] | None:
    """The data types a rendition name stands for (the first one an object has is delivered),
    or None when the name is unknown."""
    key = str(name).strip().upper()
    if key in DataType.values:
        return (key,)
    return RENDITION_ALIASES.get(key)


def rendition_names() -> list[str]:
    return [*DataType.values, *(name.lower() if name == "ORIGINAL" else name for name in RENDITION_ALIASES)]


def download_order_for_caller(*, project: Project, user, download_order_id: int, is_admin: bool) -> DownloadOrder:
    """The download order if the caller owns it or is an ADMIN: unknown 404, someone else's 403."""
    order = (DownloadOrder.objects.filter(project=project, id=download_order_id)
             .select_related("owner", "modified_by", "delivery").first())
    if order is None:
        raise NotFound(codes.NOT_FOUND, f"Download order {download_order_id} does not exist.")
    if not is_admin and order.owner_id != user.pk:
        raise NotAllowed(codes.NOT_ALLOWED, f"Download order {download_order_id} is not yours.")
    return order


def download_orders_for_caller(*, project: Project, user, is_admin: bool) -> QuerySet[DownloadOrder]:
    """What the caller may read, newest first: their own, or every one for an ADMIN."""
    qs = DownloadOrder.objects.filter(project=project).select_related("owner", "modified_by", "delivery")
    return qs if is_admin else qs.filter(owner=user)


def targets_of(*, project: Project, download_order: DownloadOrder) -> QuerySet[DownloadOrderTarget]:
    return (DownloadOrderTarget.objects.filter(project=project, download_order=download_order)
            .select_related("data_object").order_by("id"))


def target_of(*, project: Project, download_order: DownloadOrder, entity_id: str) -> DownloadOrderTarget:
    """A target by its data object's URN or numeric id; 404 when it is not one of the order's."""
    qs = targets_of(project=project, download_order=download_order)
    target = (qs.filter(data_object_id=int(entity_id)) if entity_id.isdigit() and len(entity_id) < 19
              else qs.filter(data_object__ip_id=entity_id)).first()
    if target is None:
        raise NotFound(codes.NOT_FOUND, f"{entity_id!r} is not a target of download order {download_order.pk}.")
    return target


# --- the package ---------------------------------------------------------------------------

@dataclass(frozen=True)
class PlannedFile:
    """One file of the zip: a catalog file, the steps to apply to it (none: as is), its name."""

    source: PackageFile
    steps: tuple[dict, ...]
    name: str


def _base_name(resolver: str, label: str, source: PackageFile) -> str:
    if resolver == "label":
        return sanitize_filename(label) + os.path.splitext(source.filename)[1]
    return source.filename


def package_plan(*, project: Project, download_order: DownloadOrder) -> list[PlannedFile]:
    """Every file of the order's zip, sorted by name (unique, deterministic): for each target,
    the files of its renditions (for an alias, of the first type the object has), each as is
    or once per conversion. Two queries."""
    targets = list(DownloadOrderTarget.objects.filter(project=project, download_order=download_order)
                   .select_related("data_object").order_by("id"))
    wanted_types = {t for target in targets for name in target.renditions for t in rendition_types(name) or ()}
    files_by_object: dict[int, list[PackageFile]] = {}
    rows = (DataFile.objects.filter(project=project, data_object__in=[t.data_object_id for t in targets],
                                    data_type__in=wanted_types)
            .order_by("data_object_id", "id").values_list("data_object_id", *_FILE_FIELDS))
    for object_id, *fields in rows:
        files_by_object.setdefault(object_id, []).append(PackageFile(*fields))
    planned: list[tuple[PackageFile, tuple[dict, ...], str]] = []
    for target in targets:
        files = files_by_object.get(target.data_object_id, [])
        delivered: set[str] = set()
        for rendition in target.renditions:
            types = rendition_types(rendition) or ()
            chosen = next((t for t in types if any(f.data_type == t for f in files)), None)
            if chosen in delivered:
                continue
            delivered.add(chosen)
            for source in (f for f in files if f.data_type == chosen):
                base = _base_name(download_order.item_name_resolver, target.data_object.label, source)
                for steps in target.conversions or [[]]:
                    planned.append((source, tuple(steps), conversions.converted_name(base, steps)))
    names = unique_names(((i, name) for i, (_, _, name) in enumerate(planned)),
                         reserved=[codes.SUMS_NAME, codes.NOTICE_NAME])
    return sorted((PlannedFile(source, steps, names[i]) for i, (source, steps, _) in enumerate(planned)),
                  key=lambda p: p.name.encode("utf-8"))
