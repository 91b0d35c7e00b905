"""The basket snapshot: what an order is made of, frozen when it is created.

Written by `basket.services.basket_snapshot`, stored as JSON in `Order.selection`, read back
by `basket.selectors.snapshot_dataset_files` when the order is built. One spelling of every
key, here, so writer and readers cannot drift.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from portal.catalog.models import DEFAULT_ORDER_TYPES


@dataclass(frozen=True)
class ItemSnapshot:
    """One dated item selection: its query and explicit ip ids at that date."""

    query: str
    date: str  # ISO-8601 UTC, to the millisecond (basket.dates.format_date)
    included_ip_ids: tuple[str, ...] = ()
    excluded_ip_ids: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"query": self.query, "date": self.date, "included_ip_ids": list(self.included_ip_ids),
                "excluded_ip_ids": list(self.excluded_ip_ids)}

    @classmethod
    def from_json(cls, data: dict) -> "ItemSnapshot":
        return cls(query=data.get("query") or "", date=data["date"],
                   included_ip_ids=tuple(data.get("included_ip_ids") or ()),
                   excluded_ip_ids=tuple(data.get("excluded_ip_ids") or ()))


@dataclass(frozen=True)
class DatasetSnapshot:
    """One dataset selection of the basket, with the counts shown when the order was made."""

    dataset_selection_id: int
    dataset_id: int
    dataset_ip_id: str
    dataset_label: str
    file_types: tuple[str, ...] = DEFAULT_ORDER_TYPES
    filename_pattern: str = ""
    objects_count: int = 0
    files_count: int = 0
    files_size: int = 0
    items: tuple[ItemSnapshot, ...] = field(default_factory=tuple)

    def to_json(self) -> dict:
        return {
            "dataset_selection_id": self.dataset_selection_id, "dataset_id": self.dataset_id,
            "dataset_ip_id": self.dataset_ip_id, "dataset_label": self.dataset_label,
            "file_types": list(self.file_types), "filename_pattern": self.filename_pattern,
            "objects_count": self.objects_count, "files_count": self.files_count, "files_size": self.files_size,
            "items": [item.to_json() for item in self.items],
        }

    @classmethod
    def from_json(cls, data: "dict | DatasetSnapshot") -> "DatasetSnapshot":
        if isinstance(data, DatasetSnapshot):
            return data
        return cls(
            dataset_selection_id=data.get("dataset_selection_id") or 0, dataset_id=data["dataset_id"],
            dataset_ip_id=data.get("dataset_ip_id") or "", dataset_label=data.get("dataset_label") or "",
            file_types=tuple(data.get("file_types") or DEFAULT_ORDER_TYPES),
            filename_pattern=data.get("filename_pattern") or "",
            objects_count=data.get("objects_count") or 0, files_count=data.get("files_count") or 0,
            files_size=data.get("files_size") or 0,
            items=tuple(ItemSnapshot.from_json(item) for item in data.get("items") or ()),
        )


def snapshot_to_json(datasets: list[DatasetSnapshot]) -> list[dict]:
    return [dataset.to_json() for dataset in datasets]


def snapshot_from_json(data: list | None) -> list[DatasetSnapshot]:
    return [DatasetSnapshot.from_json(entry) for entry in data or ()]
