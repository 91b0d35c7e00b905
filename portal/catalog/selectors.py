"""Reads of the catalog: searches and single lookups, filtered by project explicitly."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from django.db.models import Count, Prefetch, QuerySet
from django.db.models.fields.json import KeyTextTransform

from portal.errors import NotFound
from portal.tenancy.models import Project

from . import codes
from .models import DataFile, DataObject, Dataset
from .query import (
    DATA_OBJECT_SORT_COLUMNS, DATASET_SORT_COLUMNS, PROPERTY_NAME_RE, parse_dataset_query, parse_query,
    parse_sort,
)


def data_objects_search(*, project: Project, q: str | None, sort: Sequence[str] = (),
                        dataset: Dataset | None = None) -> QuerySet[DataObject]:
    """Objects matching `q` (raises QuerySyntaxError), with dataset and files loaded in 2 queries.

    `sort`: Spring-style `name[,ASC|DESC]` values (default: oldest first); `dataset` narrows
    the search to one dataset.
    """
    files = DataFile.objects.filter(project=project).order_by("data_type", "filename", "id")
    order = parse_sort(sort, columns=DATA_OBJECT_SORT_COLUMNS) or ["creation_date"]
    queryset = DataObject.objects.filter(project=project)
    if dataset is not None:
        queryset = queryset.filter(dataset=dataset)
    return (
        queryset
        .filter(parse_query(q, project=project))
        .select_related("dataset")
        .prefetch_related(Prefetch("files", queryset=files))
        .order_by(*order, "id")
    )


def datasets_search(*, project: Project, q: str | None, sort: Sequence[str] = (),
                    label: str | None = None) -> QuerySet[Dataset]:
    """Datasets matching `q` (and whose label contains `label`), with their object counts."""
    order = parse_sort(sort, columns=DATASET_SORT_COLUMNS) or ["label"]
    queryset = Dataset.objects.filter(project=project).filter(parse_dataset_query(q, project=project))
    if label:
        queryset = queryset.filter(label__icontains=label)
    return queryset.annotate(objects_count=Count("data_objects", distinct=True)).order_by(*order, "id")


def data_object_by_urn(*, project: Project, urn: str) -> DataObject:
    """The data object `urn` with its dataset and files (NotFound: ENTITY_NOT_FOUND)."""
    files = DataFile.objects.filter(project=project).order_by("data_type", "filename", "id")
    obj = (DataObject.objects.filter(project=project, ip_id=urn).select_related("dataset")
           .prefetch_related(Prefetch("files", queryset=files)).first())
    if obj is None:
        raise NotFound(codes.ENTITY_NOT_FOUND, f"No data object {urn[:300]} in this project.")
    return obj


def dataset_by_urn(*, project: Project, urn: str) -> Dataset:
    """The dataset `urn` (NotFound: ENTITY_NOT_FOUND)."""
    dataset = Dataset.objects.filter(project=project, ip_id=urn).first()
    if dataset is None:
        raise NotFound(codes.ENTITY_NOT_FOUND, f"No dataset {urn[:300]} in this project.")
    return dataset


@dataclass(frozen=True)
class FacetValue:
    word: str
    count: int


@dataclass(frozen=True)
class Facet:
    name: str
    values: list[FacetValue]
    others: int  # matching objects with another value than those listed


MAX_FACETS = 5
FACET_VALUES = 10


def data_object_facets(*, objects: QuerySet[DataObject], names: Sequence[str]) -> list[Facet]:
    """Term facets over the objects a search matched: `dataset` (its URN) or a property (`name`
    or `properties.name`, values as text). Other names give no facet. One or two queries per facet."""
    facets = []
    base = objects.order_by()
    for name in list(dict.fromkeys(names))[:MAX_FACETS]:
        if name == "dataset":
            column, rows = "dataset__ip_id", base
        else:
            prop = name[len("properties."):] if name.startswith("properties.") else name
            if not PROPERTY_NAME_RE.match(prop):
                continue
            column = "facet_value"
            rows = base.annotate(facet_value=KeyTextTransform(prop, "properties")).exclude(facet_value=None)
        buckets = list(rows.values(column).annotate(n=Count("id")).order_by("-n", column)[:FACET_VALUES])
        values = [FacetValue(word=str(b[column]), count=b["n"]) for b in buckets]
        others = 0
        if len(buckets) == FACET_VALUES:
            others = rows.count() - sum(v.count for v in values)
        facets.append(Facet(name=name, values=values, others=others))
    return facets


def entities_page(*, project: Project, q: str | None, sort: Sequence[str], offset: int,
                  limit: int) -> tuple[list[Dataset | DataObject], int]:
    """Datasets then data objects matching `q`, as one list: (the slice, the total).

    A query that names a field one kind does not know matches nothing of that kind; it is an
    error (QuerySyntaxError) only when neither kind understands it.
    """
    from .query import QuerySyntaxError

    parts: list[QuerySet] = []
    errors = []
    for search in (datasets_search, data_objects_search):
        try:
            parts.append(search(project=project, q=q, sort=sort))
        except QuerySyntaxError as exc:
            errors.append(exc)
    if len(errors) == 2:
        raise errors[-1]
    items: list[Dataset | DataObject] = []
    total = 0
    for queryset in parts:
        count = queryset.count()
        start = max(0, offset - total)
        wanted = limit - len(items)
        if wanted > 0 and start < count:
            items.extend(queryset[start : start + wanted])
        total += count
    return items, total


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
