"""Reads of the catalog: searches and single lookups, filtered by project explicitly."""
from __future__ import annotations

from django.db.models import Count, Prefetch, QuerySet

from portal.tenancy.models import Project

from .models import DataFile, DataObject, Dataset
from .query import parse_dataset_query, parse_query


def data_objects_search(*, project: Project, q: str | None, newest_first: bool = False) -> QuerySet[DataObject]:
    """Objects matching `q` (raises QuerySyntaxError), with dataset and files loaded in 2 queries,
    by creation date (oldest first unless `newest_first`)."""
    ordering = ("-creation_date", "-id") if newest_first else ("creation_date", "id")
    files = DataFile.objects.filter(project=project).order_by("data_type", "filename", "id")
    return (
        DataObject.objects.filter(project=project)
        .filter(parse_query(q, project=project))
        .select_related("dataset")
        .prefetch_related(Prefetch("files", queryset=files))
        .order_by(*ordering)
    )


def datasets_for_choice(*, project: Project) -> QuerySet[Dataset]:
    """The project's datasets for a search form's dataset choice, by label."""
    return Dataset.objects.filter(project=project).only("id", "ip_id", "label").order_by("label", "id")


def datasets_search(*, project: Project, q: str | None) -> QuerySet[Dataset]:
    return (
        Dataset.objects.filter(project=project)
        .filter(parse_dataset_query(q, project=project))
        .annotate(objects_count=Count("data_objects", distinct=True))
        .order_by("label", "id")
    )


def data_file_by_product_and_checksum(*, project: Project, product_urn: str, checksum: str) -> DataFile | None:
    """A file of the object `product_urn` by its MD5 `checksum` (or its SHA-256)."""
    field = "sha256" if len(checksum) == 64 else "checksum"
    return (
        DataFile.objects.filter(project=project, data_object__project=project,
                                data_object__ip_id=product_urn, **{field: checksum.lower()})
        .select_related("data_object")
        .order_by("id")
        .first()
    )
