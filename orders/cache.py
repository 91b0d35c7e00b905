"""Where an order file's bytes are: in its ONLINE tier, or (NEARLINE) as a restored copy in
the order cache, <project>/<order>/ in its ORDER_CACHE area (local or object storage). Read them through `storage.Locator`."""
from __future__ import annotations

import re
from dataclasses import dataclass

from portal.catalog.models import StorageTier
from portal.catalog.storage import ORDER_CACHE, Locator

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
NOT_RESTORED = "the file was not restored from nearline storage"


@dataclass(frozen=True)
class Place:
    """An area and key of `storage.Locator`, and what to say when nothing is stored there."""

    area: str
    key: str
    missing: str


def order_file_place(*, tier: str, location: str, cache_path: str) -> Place | None:
    """Where to read an order file (None: a NEARLINE file that was not restored)."""
    if tier == StorageTier.NEARLINE:
        if not cache_path:
            return None
        return Place(ORDER_CACHE, cache_path, "the restored copy is missing from the order cache")
    return Place(tier, location, "the file is missing from online storage")


def order_cache_key(*, project_slug: str, order_id: int) -> str:
    """The folder of an order in the ORDER_CACHE area of `storage.Locator`."""
    return f"{project_slug}/{order_id}"


def order_file_cache_relpath(*, project_slug: str, order_id: int, order_file_id: int, filename: str) -> str:
    """Relative to ORDER_CACHE_DIR (what OrderDataFile.cache_path stores)."""
    safe = _UNSAFE.sub("_", filename)[:150] or "file"
    return f"{project_slug}/{order_id}/{order_file_id}_{safe}"


def order_cache_free(*, project_slug: str, order_id: int) -> None:
    Locator().delete(ORDER_CACHE, order_cache_key(project_slug=project_slug, order_id=order_id))
