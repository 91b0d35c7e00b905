"""Reads of the basket: the basket with its selections, and what a dated selection matches.

Every match is a database query (a `Q` over DataObject, files through an `IN (SELECT ...)`
semi-join), so counting or streaming 100,000 objects never loads them into Python.
"""
from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterable

from django.db import connection
from django.db.models import BooleanField, Case, Count, Prefetch, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Coalesce

from portal.catalog.models import DEFAULT_ORDER_TYPES, DataFile, DataObject, DataType
from portal.tenancy.models import Project

from .dates import parse_selection_date
from .models import Basket, BasketDatasetSelection, BasketItemSelection
from .snapshot import DatasetSnapshot


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


def item_criteria_q(*, project: Project, criteria: ItemCriteria, stored: bool = False) -> Q:
    """`stored`: the query was accepted when it was added. It can only stop parsing when the
    catalog lost every object with a property it names bare; it then matches nothing rather
    than failing every later change of the basket (or the build of an order)."""
    from portal.catalog.query import QuerySyntaxError

    condition = Q()
    if criteria.date is not None:
        condition &= Q(creation_date__lte=criteria.date)
    if criteria.query.strip():
        try:
            condition &= parse_catalog_query(criteria.query, project=project)
        except QuerySyntaxError:
            if not stored:
                raise
            return Q(pk__in=[])
    if criteria.included_ip_ids:
        condition &= Q(ip_id__in=list(criteria.included_ip_ids))
    if criteria.excluded_ip_ids:
        condition &= ~Q(ip_id__in=list(criteria.excluded_ip_ids))
    return condition


def selection_objects(*, project: Project, dataset_id: int | None, criteria: Iterable[ItemCriteria]) -> QuerySet:
    """Data objects matched by the OR of the criteria (none matches nothing)."""
    union = Q(pk__in=[])
    for item in criteria:
        union |= item_criteria_q(project=project, criteria=item, stored=True)
    objects = DataObject.objects.filter(project=project)
    if dataset_id is not None:
        objects = objects.filter(dataset_id=dataset_id)
    return objects.filter(union)


def file_filter_q(file_filter: FileFilter, prefix: str = "") -> Q:
    """The ordered files: on DataFile (prefix "") or from DataObject (prefix "files__")."""
    condition = Q(**{f"{prefix}data_type__in": list(file_filter.file_types or DEFAULT_ORDER_TYPES)})
    if file_filter.filename_pattern:
        # Like the reference API (Java `Pattern.matches`), the whole name must match.
        condition &= Q(**{f"{prefix}filename__regex": f"^(?:{file_filter.filename_pattern})$"})
    return condition


def files_of_objects(*, project: Project, objects: QuerySet, file_filter: FileFilter) -> QuerySet:
    return DataFile.objects.filter(project=project, data_object__in=objects.values("pk")).filter(
        file_filter_q(file_filter)
    )


def ordered_files_q(*, filters: dict[int, FileFilter]) -> Q:
    """Condition (from DataObject) on its joined files: each dataset's own filter, the default
    filter for datasets not in `filters`."""
    groups: dict[FileFilter, list[int]] = {}
    for dataset_id, file_filter in filters.items():
        groups.setdefault(file_filter, []).append(dataset_id)
    default = FileFilter()
    special = [dataset_id for file_filter, ids in groups.items() if file_filter != default for dataset_id in ids]
    condition = file_filter_q(default, "files__")
    if special:
        condition &= ~Q(dataset_id__in=special)
    for file_filter, dataset_ids in groups.items():
        if file_filter != default:
            condition |= Q(dataset_id__in=dataset_ids) & file_filter_q(file_filter, "files__")
    return condition


@contextmanager
def _sort_memory():
    """On PostgreSQL, lets the grouping of ~100,000 joined rows sort in memory (the default
    4MB work_mem spills to disk), for this query only."""
    if connection.vendor != "postgresql" or not connection.in_atomic_block:
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '64MB'")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL work_mem TO DEFAULT")


def counts_by_dataset(
    *, objects: QuerySet, parts: dict[object, Q], files_q: Q
) -> dict[int, dict[object, Counts]]:
    """Counts per dataset of `objects` and of named parts of them, in ONE aggregate query.

    `parts` maps a name to a condition on the object (Q() for all of `objects`); each part
    gets its objects, its ordered files (`files_q`, on the joined `files__`), their size and
    how many of them are RAWDATA. The objects are grouped by dataset and by which parts they
    belong to (each condition is evaluated once per object), so the query scans the objects
    and their files once whatever the number of parts; the few group rows are then added up.
    """
    flags = {
        f"in_part{index}": Case(When(condition, then=Value(True)), default=Value(False), output_field=BooleanField())
        for index, condition in enumerate(parts.values())
        if condition
    }
    rows = (
        objects.order_by()
        .values("dataset_id", **flags)
        .annotate(
            n_objects=Count("pk", distinct=True),
            n_files=Count("files__pk", filter=files_q),
            n_size=Coalesce(Sum("files__size", filter=files_q), 0),
            n_quota=Count("files__pk", filter=files_q & Q(files__data_type=DataType.RAWDATA)),
        )
    )
    totals: dict[int, dict[object, list[int]]] = {}
    with _sort_memory():
        rows = list(rows)
    for row in rows:
        per_part = totals.setdefault(row["dataset_id"], {name: [0, 0, 0, 0] for name in parts})
        for index, (name, condition) in enumerate(parts.items()):
            if condition and not row[f"in_part{index}"]:
                continue
            sums = per_part[name]
            sums[0] += row["n_objects"]
            sums[1] += row["n_files"]
            sums[2] += row["n_size"]
            sums[3] += row["n_quota"]
    return {
        dataset_id: {name: Counts(*sums) for name, sums in per_part.items()}
        for dataset_id, per_part in totals.items()
    }


def selection_counts(*, project: Project, objects: QuerySet, file_filter: FileFilter) -> Counts:
    """Counts of a set of objects under one file filter (one aggregate query)."""
    per_dataset = counts_by_dataset(
        objects=objects, parts={"all": Q()}, files_q=file_filter_q(file_filter, "files__")
    )
    totals = [counts["all"] for counts in per_dataset.values()]
    return Counts(*(sum(getattr(c, f) for c in totals) for f in ("objects_count", "files_count", "files_size", "quota")))


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

def _entry_criteria(entry: DatasetSnapshot) -> list[ItemCriteria]:
    return [
        ItemCriteria(query=item.query, date=parse_selection_date(item.date), included_ip_ids=item.included_ip_ids,
                     excluded_ip_ids=item.excluded_ip_ids)
        for item in entry.items
    ]


def _entry_file_filter(entry: DatasetSnapshot) -> FileFilter:
    return FileFilter(file_types=entry.file_types, filename_pattern=entry.filename_pattern)


def snapshot_dataset_objects(*, project: Project, dataset_entry: DatasetSnapshot | dict) -> QuerySet:
    """Data objects matched by one dataset entry of `basket.services.basket_snapshot`."""
    entry = DatasetSnapshot.from_json(dataset_entry)
    return selection_objects(
        project=project, dataset_id=entry.dataset_id, criteria=_entry_criteria(entry)
    )


def snapshot_dataset_objects_count(*, project: Project, dataset_entry: DatasetSnapshot | dict) -> int:
    return snapshot_dataset_objects(project=project, dataset_entry=dataset_entry).count()


def snapshot_dataset_files(*, project: Project, dataset_entry: DatasetSnapshot | dict) -> QuerySet:
    """Files (of the entry's ordered types and filename pattern) of the objects the entry
    matches, ordered by (data_object_id, id): one query, ready to be streamed with .iterator()."""
    entry = DatasetSnapshot.from_json(dataset_entry)
    objects = snapshot_dataset_objects(project=project, dataset_entry=entry)
    return files_of_objects(
        project=project, objects=objects, file_filter=_entry_file_filter(entry)
    ).order_by("data_object_id", "id")
