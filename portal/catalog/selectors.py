"""Reads of the catalog: searches and single lookups, filtered by project explicitly."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from django.db import connection
from django.db.models import Count, Prefetch, QuerySet
from django.db.models.fields.json import KeyTextTransform

from portal.errors import NotFound
from portal.tenancy.models import Project

from . import codes
from .models import DataFile, DataObject, Dataset
from .query import (
    DATA_OBJECT_SORT_COLUMNS, DATASET_SORT_COLUMNS, PROPERTY_NAME_RE, QuerySyntaxError, parse_dataset_query,
    parse_query, parse_sort,
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
    """Term facets over the objects a search matched: `tags`, `dataset` (its URN) or a property
    (`name` or `properties.name`, values as text). Other names give no facet. At most two queries
    per facet, whatever the number of objects."""
    facets = []
    base = objects.order_by()
    for name in list(dict.fromkeys(names))[:MAX_FACETS]:
        if name == "tags":
            facets.append(_tags_facet(base))
            continue
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


def _tags_facet(objects: QuerySet[DataObject]) -> Facet:
    """Counts of each tag over `objects`: the JSON list is unnested in SQL (no portable ORM way)."""
    ids_sql, ids_params = objects.values("id").query.sql_with_params()
    table = connection.ops.quote_name(DataObject._meta.db_table)
    if connection.vendor == "postgresql":
        tags = f"{table} o CROSS JOIN LATERAL jsonb_array_elements_text(o.tags) AS t(value)"
    else:  # SQLite's JSON1 table-valued function
        tags = f"{table} o, json_each(o.tags) AS t"
    where = f"WHERE o.id IN ({ids_sql})"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT t.value, COUNT(*) AS n FROM {tags} {where} GROUP BY t.value "
                       f"ORDER BY n DESC, t.value LIMIT %s", [*ids_params, FACET_VALUES])
        values = [FacetValue(word=str(word), count=n) for word, n in cursor.fetchall()]
        others = 0
        if len(values) == FACET_VALUES:
            cursor.execute(f"SELECT COUNT(*) FROM {tags} {where}", list(ids_params))
            others = cursor.fetchone()[0] - sum(v.count for v in values)
    return Facet(name="tags", values=values, others=others)


def entities_page(*, project: Project, q: str | None, sort: Sequence[str], offset: int,
                  limit: int) -> tuple[list[Dataset | DataObject], int]:
    """Datasets then data objects matching `q`, as one list: (the slice, the total).

    A query that names a field one kind does not know matches nothing of that kind; it is an
    error (QuerySyntaxError) only when neither kind understands it.
    """
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
