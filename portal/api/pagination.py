"""The REGARDS page envelope: ?page=&size= (page from 0, size at most 1000)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from rest_framework import serializers
from rest_framework.exceptions import ValidationError

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 20


@dataclass(frozen=True)
class PageRequest:
    page: int
    size: int

    @property
    def offset(self) -> int:
        return self.page * self.size


def _int_param(params, name: str, default: int, minimum: int, maximum: int | None) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    if len(raw) > 12 or not raw.lstrip("-").isdigit():
        raise ValidationError({name: [f"must be an integer between {minimum} and {maximum or 'any'}"]})
    value = int(raw)
    if value < minimum:
        raise ValidationError({name: [f"must be at least {minimum}"]})
    if maximum is not None:
        value = min(value, maximum)
    return value


def page_request(params, default_size: int = DEFAULT_PAGE_SIZE) -> PageRequest:
    """Reads page/size from query params; a size above 1000 is capped, garbage is a 400."""
    return PageRequest(
        page=_int_param(params, "page", 0, 0, 10**9),
        size=_int_param(params, "size", default_size, 1, MAX_PAGE_SIZE),
    )


def page_envelope(items: list, total: int, page: PageRequest, links: list | None = None) -> dict:
    return {
        "metadata": {
            "size": page.size,
            "totalElements": total,
            "totalPages": math.ceil(total / page.size) if total else 0,
            "number": page.page,
        },
        "content": items,
        "links": links or [],
    }


def paginate_queryset(queryset, page: PageRequest) -> tuple[list, int]:
    """One COUNT and one bounded SELECT."""
    total = queryset.count()
    if page.offset >= total:
        return [], total
    return list(queryset[page.offset : page.offset + page.size]), total


class PageMetadataOutputSerializer(serializers.Serializer):
    size = serializers.IntegerField()
    totalElements = serializers.IntegerField()
    totalPages = serializers.IntegerField()
    number = serializers.IntegerField()


def page_output_serializer(name: str, item_serializer_class: type[serializers.Serializer]) -> type:
    """The OpenAPI shape of a page envelope of `item_serializer_class` (for @extend_schema)."""
    return type(name, (serializers.Serializer,), {
        "metadata": PageMetadataOutputSerializer(),
        "content": item_serializer_class(many=True),
        "links": serializers.ListField(child=serializers.DictField()),
    })
