"""Pages count from 1 in page URLs (`?page=2`); the API's PageRequest counts from 0."""
from __future__ import annotations

import math
from dataclasses import dataclass

from portal.api.pagination import PageRequest, paginate_queryset


@dataclass(frozen=True)
class Paging:
    number: int       # 1-based
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages

    @property
    def previous(self) -> int:
        return self.number - 1

    @property
    def next(self) -> int:
        return self.number + 1


def page_number(params, name: str = "page") -> int:
    """A lenient page number: anything that is not a positive integer is page 1."""
    raw = params.get(name) or ""
    return int(raw) if raw.isdigit() and 0 < len(raw) < 10 and int(raw) > 0 else 1


def paged(queryset, params, *, size: int, name: str = "page") -> tuple[list, Paging]:
    number = page_number(params, name)
    items, total = paginate_queryset(queryset, PageRequest(page=number - 1, size=size))
    return items, Paging(number=number, size=size, total=total)
