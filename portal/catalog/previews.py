"""Previews of data objects for the pages: the THUMBNAIL (else the smallest quicklook) shown
in lists, the largest QUICKLOOK opened on click, both served by the catalog file endpoint
(ETag, Cache-Control). Only ONLINE files can be previewed (NEARLINE ones must be ordered)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from django.urls import reverse

from portal.tenancy.models import Project

from .models import DataFile, DataType, StorageTier

# Best first.
THUMBNAIL_TYPES = (DataType.THUMBNAIL, DataType.QUICKLOOK_SD, DataType.QUICKLOOK_MD, DataType.QUICKLOOK_HD)
QUICKLOOK_TYPES = (DataType.QUICKLOOK_HD, DataType.QUICKLOOK_MD, DataType.QUICKLOOK_SD, DataType.THUMBNAIL)
PREVIEW_TYPES = frozenset(THUMBNAIL_TYPES)


@dataclass(frozen=True)
class Preview:
    thumbnail_url: str
    quicklook_url: str
    alt: str

    @property
    def quicklook_alt(self) -> str:
        return self.alt.replace("Preview of", "Quicklook of", 1)


def catalog_file_url(*, project: Project, ip_id: str, checksum: str) -> str:
    path = reverse("catalog-file-download", kwargs={"productURN": ip_id, "checksum": checksum})
    return f"{path}?scope={project.slug}"


def _pick(files: Iterable[DataFile], order: tuple) -> DataFile | None:
    ranked = [f for f in files if f.data_type in order and f.tier == StorageTier.ONLINE]
    return min(ranked, key=lambda f: (order.index(f.data_type), f.filename, f.pk), default=None)


def preview_of(*, project: Project, ip_id: str, label: str, files: Iterable[DataFile]) -> Preview | None:
    """The object's preview from its (already loaded) files, or None when it has no image."""
    files = list(files)
    thumbnail, quicklook = _pick(files, THUMBNAIL_TYPES), _pick(files, QUICKLOOK_TYPES)
    if thumbnail is None:
        return None
    return Preview(thumbnail_url=catalog_file_url(project=project, ip_id=ip_id, checksum=thumbnail.checksum),
                   quicklook_url=catalog_file_url(project=project, ip_id=ip_id, checksum=quicklook.checksum),
                   alt=f"Preview of {label}")


def previews_by_ip_id(*, project: Project, ip_ids: Iterable[str]) -> dict[str, Preview]:
    """Previews of many objects in one query (the order page lists files, not objects)."""
    ip_ids = set(ip_ids)
    if not ip_ids:
        return {}
    files: dict[str, list[DataFile]] = {}
    labels: dict[str, str] = {}
    rows = (DataFile.objects.filter(project=project, data_object__ip_id__in=ip_ids, data_type__in=PREVIEW_TYPES,
                                    tier=StorageTier.ONLINE)
            .select_related("data_object").only("id", "data_type", "filename", "checksum", "tier",
                                                "data_object__ip_id", "data_object__label"))
    for f in rows:
        files.setdefault(f.data_object.ip_id, []).append(f)
        labels[f.data_object.ip_id] = f.data_object.label
    return {ip_id: p for ip_id, fs in files.items()
            if (p := preview_of(project=project, ip_id=ip_id, label=labels[ip_id], files=fs)) is not None}
