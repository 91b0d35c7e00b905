"""Writes of the basket. Counts are computed by aggregate queries and stored on the rows;
every change recomputes the counts it affects, so they stay right after removals."""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from django.db import DatabaseError, connection, transaction
from django.db.models import Max, Q
from django.utils import timezone

from portal.regex import MAX_USER_PATTERN_LENGTH, PatternRefused, user_pattern_check
from portal.catalog.models import DEFAULT_ORDER_TYPES, ORDERABLE_TYPES, DataObject, Dataset
from portal.errors import Invalid, NotFound, Refused
from portal.tenancy.models import Project

from . import codes
from .dates import ONE_MS, ceil_to_ms, format_date
from .models import Basket, BasketDatasetSelection, BasketItemSelection
from .selectors import (
    Counts,
    FileFilter,
    ItemCriteria,
    counts_by_dataset,
    file_filter_of,
    file_filter_q,
    item_criteria_of,
    item_criteria_q,
    ordered_files_q,
)
from .snapshot import DatasetSnapshot, ItemSnapshot, snapshot_to_json

MAX_IP_IDS = 10_000
MAX_PATTERN_LENGTH = MAX_USER_PATTERN_LENGTH


class NothingToOrder(Refused):
    """The selection adds no orderable file: nothing was stored."""

    default_code = codes.NO_ORDERABLE_FILE


class SelectionInvalid(Invalid):
    """A selection request that names something that does not exist (code: the client's message)."""


class FileFilterInvalid(Invalid):
    """Unknown file type or a pattern that is not a regular expression (message for the client)."""

    def __init__(self, message: str):
        super().__init__(codes.INVALID_FILE_FILTER, message)


class ItemsSelectionNotFound(NotFound):
    """No item selection of the dataset selection at that date (the date is the message)."""

    def __init__(self, date: str):
        super().__init__(codes.ITEMS_SELECTION_NOT_FOUND, date)


@dataclass(frozen=True)
class SelectionRequest:
    """A normalised POST /order/basket/selection, whichever body shape it came in."""

    query: str = ""
    dataset_ip_id: str | None = None
    included_ip_ids: tuple[str, ...] = ()
    excluded_ip_ids: tuple[str, ...] = ()


def _set_counts(row, counts: Counts) -> None:
    row.objects_count = counts.objects_count
    row.files_count = counts.files_count
    row.files_size = counts.files_size
    row.quota = counts.quota


_COUNT_FIELDS = ["objects_count", "files_count", "files_size", "quota"]
ITEM, ALL = "item", "all"  # parts of counts_by_dataset: the new item, the whole dataset selection


def _lock_basket(*, project: Project, basket_id: int) -> Basket:
    # Serialises the changes of one basket (two tabs adding at once).
    return Basket.objects.select_for_update().get(project=project, pk=basket_id)


def _selection_date(*, project: Project, basket: Basket) -> dt.datetime:
    """Now, rounded up to the millisecond, later than every item date of the basket.

    Waits (at most a few ms) until that instant has passed, so every object created before
    this call is at or before the date and every object created after it is later.
    """
    date = ceil_to_ms(timezone.now())
    latest = BasketItemSelection.objects.filter(project=project, dataset_selection__basket=basket).aggregate(
        latest=Max("date")
    )["latest"]
    if latest is not None and latest >= date:
        date = latest + ONE_MS
    wait = (date - timezone.now()).total_seconds()
    if wait > 0:
        time.sleep(min(wait, 0.05))
    return date


def dataset_selection_refresh_counts(*, project: Project, dataset_selection: BasketDatasetSelection) -> None:
    """Recomputes the counts of every item selection and of the dataset selection (their OR),
    in one aggregate query."""
    items = list(BasketItemSelection.objects.filter(project=project, dataset_selection=dataset_selection))
    criteria = {item.pk: item_criteria_of(item) for item in items}
    parts: dict[object, Q] = {
        pk: item_criteria_q(project=project, criteria=c, stored=True) for pk, c in criteria.items()
    }
    union = Q(pk__in=[])
    for condition in parts.values():
        union |= condition
    parts[ALL] = Q()
    objects = DataObject.objects.filter(project=project, dataset_id=dataset_selection.dataset_id).filter(union)
    counts = counts_by_dataset(
        objects=objects, parts=parts, files_q=file_filter_q(file_filter_of(dataset_selection), "files__")
    ).get(dataset_selection.dataset_id, {})
    for item in items:
        _set_counts(item, counts.get(item.pk, Counts()))
    BasketItemSelection.objects.bulk_update(items, _COUNT_FIELDS)
    _set_counts(dataset_selection, counts.get(ALL, Counts()))
    dataset_selection.save(update_fields=_COUNT_FIELDS)


def _existing_items_q(*, project: Project, selection_ids: list[int]) -> Q:
    """The objects of the basket's current item selections (each within its dataset); Q()
    (falsy) when there is none."""
    union = Q()
    items = BasketItemSelection.objects.filter(project=project, dataset_selection_id__in=selection_ids)
    for item in items.select_related("dataset_selection"):
        union |= Q(dataset_id=item.dataset_selection.dataset_id) & item_criteria_q(
            project=project, criteria=item_criteria_of(item), stored=True
        )
    return union


def _ip_ids_by_dataset(*, project: Project, ip_ids: tuple[str, ...], dataset_ids: list[int]) -> dict[int, set[str]]:
    if not ip_ids:
        return {}
    result: dict[int, set[str]] = {}
    rows = DataObject.objects.filter(project=project, ip_id__in=list(ip_ids), dataset_id__in=dataset_ids)
    for dataset_id, ip_id in rows.values_list("dataset_id", "ip_id"):
        result.setdefault(dataset_id, set()).add(ip_id)
    return result


@transaction.atomic
def basket_add_selection(*, project: Project, owner, selection: SelectionRequest) -> Basket:
    """Adds one dated item selection to the selection of every dataset the request reaches
    with at least one orderable file, creating the basket and dataset selections as needed.

    Raises QuerySyntaxError (bad query), SelectionInvalid (unknown dataset) or NothingToOrder
    (nothing stored then).
    """
    criteria = ItemCriteria(
        query=selection.query,
        date=None,
        included_ip_ids=selection.included_ip_ids,
        excluded_ip_ids=selection.excluded_ip_ids,
    )
    matches = item_criteria_q(project=project, criteria=criteria)  # parses before any write
    objects = DataObject.objects.filter(project=project)
    if selection.dataset_ip_id:
        dataset_id = (
            Dataset.objects.filter(project=project, ip_id=selection.dataset_ip_id).values_list("pk", flat=True).first()
        )
        if dataset_id is None:
            raise SelectionInvalid(codes.UNKNOWN_DATASET)
        objects = objects.filter(dataset_id=dataset_id)

    basket, _ = Basket.objects.get_or_create(project=project, owner=owner)
    basket = _lock_basket(project=project, basket_id=basket.pk)
    date = _selection_date(project=project, basket=basket)

    existing = {s.dataset_id: s for s in BasketDatasetSelection.objects.filter(project=project, basket=basket)}
    # One query: per dataset, what the new item adds and the union with the dataset's items.
    new_item = matches & Q(creation_date__lte=date)
    previous = _existing_items_q(project=project, selection_ids=[s.pk for s in existing.values()])
    # Into an empty basket the new item is the whole selection: no need to tell them apart.
    parts = {ITEM: new_item, ALL: Q()} if previous else {ALL: Q()}
    per_dataset = counts_by_dataset(
        objects=objects.filter(new_item | previous),
        parts=parts,
        files_q=ordered_files_q(filters={dataset_id: file_filter_of(s) for dataset_id, s in existing.items()}),
    )
    if not previous:
        per_dataset = {dataset_id: {**counts, ITEM: counts[ALL]} for dataset_id, counts in per_dataset.items()}
    added = {dataset_id: counts for dataset_id, counts in per_dataset.items() if counts[ITEM].files_count}
    if not added:
        raise NothingToOrder  # rolls back a basket created just now

    # Each dataset's item keeps only the explicit ipIds of that dataset's objects.
    explicit_ids = _ip_ids_by_dataset(
        project=project, ip_ids=selection.included_ip_ids + selection.excluded_ip_ids, dataset_ids=list(added)
    )
    for dataset_id in sorted(added):
        counts = added[dataset_id]
        own_ids = explicit_ids.get(dataset_id, set())
        dataset_selection = existing.get(dataset_id)
        if dataset_selection is None:
            dataset_selection = BasketDatasetSelection(project=project, basket=basket, dataset_id=dataset_id)
        _set_counts(dataset_selection, counts[ALL])
        dataset_selection.save()
        item = BasketItemSelection(
            project=project,
            dataset_selection=dataset_selection,
            date=date,
            open_search_request=selection.query,
            included_ip_ids=[i for i in selection.included_ip_ids if i in own_ids],
            excluded_ip_ids=[i for i in selection.excluded_ip_ids if i in own_ids],
        )
        _set_counts(item, counts[ITEM])
        item.save()
    basket.save(update_fields=["updated_at"])
    return basket


def _distinct_file_types(file_types: list[str] | None) -> list[str]:
    """Each type once, in the order given."""
    return list(dict.fromkeys(file_types or ()))


def validate_file_filter(*, file_types: list[str] | None, filename_pattern: str | None) -> FileFilter:
    """Raises FileFilterInvalid naming the unknown type or the bad pattern."""
    types = _distinct_file_types(file_types)
    for file_type in types:
        if file_type not in ORDERABLE_TYPES:
            allowed = ", ".join(ORDERABLE_TYPES)
            raise FileFilterInvalid(f"fileTypes: '{file_type}' is not an orderable file type ({allowed})")
    pattern = filename_pattern or ""
    if pattern:
        try:
            user_pattern_check(pattern, max_length=MAX_PATTERN_LENGTH)
        except PatternRefused as exc:
            raise FileFilterInvalid(f"fileNamePattern: {exc}") from None
        if connection.vendor == "postgresql":
            # PostgreSQL's regex dialect differs from Python's: it must accept it too.
            try:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute("SELECT '' ~ %s", [f"^(?:{pattern})$"])
            except DatabaseError:
                raise FileFilterInvalid("fileNamePattern: not a regular expression the database accepts") from None
    return FileFilter(file_types=tuple(types) or DEFAULT_ORDER_TYPES, filename_pattern=pattern)


@transaction.atomic
def dataset_selection_update_file_filters(
    *, project: Project, dataset_selection: BasketDatasetSelection, file_types: list[str] | None,
    filename_pattern: str | None,
) -> BasketDatasetSelection:
    """Sets (or, both empty, removes) the file filters and recomputes the counts."""
    validate_file_filter(file_types=file_types, filename_pattern=filename_pattern)
    _lock_basket(project=project, basket_id=dataset_selection.basket_id)
    dataset_selection.file_types = _distinct_file_types(file_types)
    dataset_selection.filename_pattern = filename_pattern or ""
    dataset_selection.save(update_fields=["file_types", "filename_pattern"])
    dataset_selection_refresh_counts(project=project, dataset_selection=dataset_selection)
    return dataset_selection


@transaction.atomic
def dataset_selection_remove_items(
    *, project: Project, dataset_selection: BasketDatasetSelection, date: dt.datetime
) -> None:
    """Removes the item selection of that date; the dataset selection goes with its last item."""
    _lock_basket(project=project, basket_id=dataset_selection.basket_id)
    deleted, _ = BasketItemSelection.objects.filter(
        project=project, dataset_selection=dataset_selection, date=date
    ).delete()
    if not deleted:
        raise ItemsSelectionNotFound(format_date(date))
    if not BasketItemSelection.objects.filter(project=project, dataset_selection=dataset_selection).exists():
        dataset_selection.delete()
        return
    dataset_selection_refresh_counts(project=project, dataset_selection=dataset_selection)


@transaction.atomic
def dataset_selection_remove(*, project: Project, dataset_selection: BasketDatasetSelection) -> None:
    _lock_basket(project=project, basket_id=dataset_selection.basket_id)
    BasketDatasetSelection.objects.filter(project=project, pk=dataset_selection.pk).delete()


@transaction.atomic
def basket_empty(*, basket: Basket) -> None:
    """Deletes every selection of the basket (the basket itself stays, empty)."""
    project = basket.project
    _lock_basket(project=project, basket_id=basket.pk)
    BasketItemSelection.objects.filter(project=project, dataset_selection__basket=basket).delete()
    BasketDatasetSelection.objects.filter(project=project, basket=basket).delete()


@transaction.atomic
def basket_delete(*, project: Project, owner) -> None:
    """DELETE /order/basket: the basket and its selections go (a later GET answers 204)."""
    Basket.objects.filter(project=project, owner=owner).delete()


def basket_snapshot(*, basket: Basket) -> list[dict]:
    """A JSON-serialisable, frozen description of the basket, one entry per dataset selection
    (`basket.snapshot.DatasetSnapshot.to_json`): enough for `selectors.snapshot_dataset_files`
    to find the same files later, whatever is ingested or changed in the basket meanwhile."""
    project = basket.project
    selections = (
        BasketDatasetSelection.objects.filter(project=project, basket=basket)
        .select_related("dataset")
        .prefetch_related("item_selections")
        .order_by("id")
    )
    snapshot = []
    for selection in selections:
        items = sorted(selection.item_selections.all(), key=lambda i: (i.date, i.pk))
        snapshot.append(DatasetSnapshot(
            dataset_selection_id=selection.pk,
            dataset_id=selection.dataset_id,
            dataset_ip_id=selection.dataset.ip_id,
            dataset_label=selection.dataset.label,
            file_types=tuple(selection.file_types or DEFAULT_ORDER_TYPES),
            filename_pattern=selection.filename_pattern or "",
            objects_count=selection.objects_count,
            files_count=selection.files_count,
            files_size=selection.files_size,
            items=tuple(ItemSnapshot(query=item.open_search_request, date=format_date(item.date),
                                     included_ip_ids=tuple(item.included_ip_ids or ()),
                                     excluded_ip_ids=tuple(item.excluded_ip_ids or ())) for item in items),
        ))
    return snapshot_to_json(snapshot)


def selection_request_from_ip_ids(
    *, query: str | None, ip_ids: list[str] | None
) -> SelectionRequest:
    """The older body shape: a query minus ipIds, or just the ipIds."""
    ip_ids = tuple(dict.fromkeys(ip_ids or ()))
    if query and query.strip():
        return SelectionRequest(query=query, excluded_ip_ids=ip_ids)
    return SelectionRequest(included_ip_ids=ip_ids)
