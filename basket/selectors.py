"""Reads of the basket: the basket with its selections, and what a dated selection matches.

Every match is a database query (a `Q` over DataObject, files through an `IN (SELECT ...)`
semi-join), so counting or streaming 100,000 objects never loads them into Python.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Iterable

from django.db.models import Count, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from portal.catalog.models import DEFAULT_ORDER_TYPES, DataFile, DataObject, DataType
from portal.tenancy.models import Project

from .dates import parse_selection_date
from .models import Basket, BasketDatasetSelection, BasketItemSelection


@dataclass(frozen=True)
class ItemCriteria:
    """What one dated item selection matches: `(<query>) AND creationDate <= date`,
    restricted to `included_ip_ids` when given, minus `excluded_ip_ids`."""

    query: str
    date: dt.datetime | None
    included_ip_ids: tuple[str, ...] = ()
    excluded_ip_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class FileFilter:
    """The files ordered from a dataset selection: these types, names fully matching the pattern."""

    file_types: tuple[str, ...] = DEFAULT_ORDER_TYPES
    filename_pattern: str = ""


@dataclass(frozen=True)
class Counts:
    objects_count: int = 0
    files_count: int = 0
    files_size: int = 0
    quota: int = 0


def parse_catalog_query(query: str, *, project: Project) -> Q:
    """The catalog's query language (raises portal.catalog.query.QuerySyntaxError)."""
    from portal.catalog.query import parse_query

    return parse_query(query, project=project)


def item_criteria_q(*, project: Project, criteria: ItemCriteria) -> Q:
    condition = Q()
    if criteria.date is not None:
        condition &= Q(creation_date__lte=criteria.date)
    if criteria.query.strip():
        condition &= parse_catalog_query(criteria.query, project=project)
    if criteria.included_ip_ids:
        condition &= Q(ip_id__in=list(criteria.included_ip_ids))
    if criteria.excluded_ip_ids:
        condition &= ~Q(ip_id__in=list(criteria.excluded_ip_ids))
    return condition


def selection_objects(*, project: Project, dataset_id: int | None, criteria: Iterable[ItemCriteria]) -> QuerySet:
    """Data objects matched by the OR of the criteria (none matches nothing)."""
    union = Q(pk__in=[])
    for item in criteria:
        union |= item_criteria_q(project=project, criteria=item)
    objects = DataObject.objects.filter(project=project)
    if dataset_id is not None:
        objects = objects.filter(dataset_id=dataset_id)
    return objects.filter(union)


def file_filter_q(file_filter: FileFilter) -> Q:
    condition = Q(data_type__in=list(file_filter.file_types or DEFAULT_ORDER_TYPES))
    if file_filter.filename_pattern:
        # Like the reference API (Java `Pattern.matches`), the whole name must match.
        condition &= Q(filename__regex=f"^(?:{file_filter.filename_pattern})$")
    return condition


def files_of_objects(*, project: Project, objects: QuerySet, file_filter: FileFilter) -> QuerySet:
    return DataFile.objects.filter(project=project, data_object__in=objects.values("pk")).filter(
        file_filter_q(file_filter)
    )


_FILE_AGGREGATES = {
    "files_count": Count("pk"),
    "files_size": Coalesce(Sum("size"), 0),
    "quota": Count("pk", filter=Q(data_type=DataType.RAWDATA)),
}


def selection_counts(*, project: Project, objects: QuerySet, file_filter: FileFilter) -> Counts:
    """Two aggregate queries: objects, then files of the ordered types (and their RAWDATA)."""
    objects_count = objects.count()
    if not objects_count:
        return Counts()
    files = files_of_objects(project=project, objects=objects, file_filter=file_filter).aggregate(
        **_FILE_AGGREGATES
    )
    return Counts(objects_count=objects_count, **files)


def counts_by_dataset(
    *, project: Project, objects: QuerySet, filters: dict[int, FileFilter]
) -> dict[int, Counts]:
    """Counts of `objects` grouped by dataset, each dataset's files under its own filter.

    One grouped query for objects and one per distinct filter (usually one) for files.
    """
    objects_per_dataset = dict(
        objects.order_by().values("dataset_id").annotate(n=Count("pk")).values_list("dataset_id", "n")
    )
    datasets_by_filter: dict[FileFilter, list[int]] = {}
    for dataset_id in objects_per_dataset:
        datasets_by_filter.setdefault(filters.get(dataset_id, FileFilter()), []).append(dataset_id)
    result = {dataset_id: Counts(objects_count=n) for dataset_id, n in objects_per_dataset.items()}
    for file_filter, dataset_ids in datasets_by_filter.items():
        rows = (
            files_of_objects(project=project, objects=objects, file_filter=file_filter)
            .filter(data_object__dataset_id__in=dataset_ids)
            .order_by()
            .values("data_object__dataset_id")
            .annotate(**_FILE_AGGREGATES)
        )
        for row in rows:
            dataset_id = row["data_object__dataset_id"]
            result[dataset_id] = Counts(
                objects_count=result[dataset_id].objects_count,
                files_count=row["files_count"],
                files_size=row["files_size"],
                quota=row["quota"],
            )
    return result


# --- The basket -----------------------------------------------------------------------

def basket_for_owner(*, project: Project, owner) -> Basket | None:
    """The owner's basket in the project with its selections (three queries), or None."""
    items = BasketItemSelection.objects.filter(project=project).order_by("-date", "-id")
    selections = (
        BasketDatasetSelection.objects.filter(project=project)
        .select_related("dataset")
        .prefetch_related(Prefetch("item_selections", queryset=items))
        .order_by("id")
    )
    return (
        Basket.objects.filter(project=project, owner=owner)
        .select_related("owner")
        .prefetch_related(Prefetch("dataset_selections", queryset=selections))
        .first()
    )


def dataset_selection_for_owner(*, project: Project, owner, dataset_selection_id: int) -> BasketDatasetSelection | None:
    return (
        BasketDatasetSelection.objects.filter(project=project, basket__owner=owner, pk=dataset_selection_id)
        .select_related("basket")
        .first()
    )


def item_criteria_of(item: BasketItemSelection) -> ItemCriteria:
    return ItemCriteria(
        query=item.open_search_request,
        date=item.date,
        included_ip_ids=tuple(item.included_ip_ids or ()),
        excluded_ip_ids=tuple(item.excluded_ip_ids or ()),
    )


def file_filter_of(selection: BasketDatasetSelection) -> FileFilter:
    return FileFilter(
        file_types=tuple(selection.file_types or DEFAULT_ORDER_TYPES),
        filename_pattern=selection.filename_pattern or "",
    )


# --- Snapshots (what an order is made of) ---------------------------------------------

def _entry_criteria(dataset_entry: dict) -> list[ItemCriteria]:
    return [
        ItemCriteria(
            query=item.get("query") or "",
            date=parse_selection_date(item["date"]),
            included_ip_ids=tuple(item.get("included_ip_ids") or ()),
            excluded_ip_ids=tuple(item.get("excluded_ip_ids") or ()),
        )
        for item in dataset_entry.get("items", [])
    ]


def _entry_file_filter(dataset_entry: dict) -> FileFilter:
    return FileFilter(
        file_types=tuple(dataset_entry.get("file_types") or DEFAULT_ORDER_TYPES),
        filename_pattern=dataset_entry.get("filename_pattern") or "",
    )


def snapshot_dataset_objects(*, project: Project, dataset_entry: dict) -> QuerySet:
    """Data objects matched by one dataset entry of `basket.services.basket_snapshot`."""
    return selection_objects(
        project=project, dataset_id=dataset_entry["dataset_id"], criteria=_entry_criteria(dataset_entry)
    )


def snapshot_dataset_objects_count(*, project: Project, dataset_entry: dict) -> int:
    return snapshot_dataset_objects(project=project, dataset_entry=dataset_entry).count()


def snapshot_dataset_files(*, project: Project, dataset_entry: dict) -> QuerySet:
    """Files (of the entry's ordered types and filename pattern) of the objects the entry
    matches, ordered by (data_object_id, id): one query, ready to be streamed with .iterator()."""
    objects = snapshot_dataset_objects(project=project, dataset_entry=dataset_entry)
    return files_of_objects(
        project=project, objects=objects, file_filter=_entry_file_filter(dataset_entry)
    ).order_by("data_object_id", "id")
