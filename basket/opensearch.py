"""The `openSearchRequest` strings of the basket body (descriptive; matching is done in SQL).

An item selection reads `(<query>) AND creationDate:[* TO <date>]`, with its explicit
objects as `ipId:"…"` clauses; a dataset selection is the OR of its item selections.
"""
from __future__ import annotations

from typing import Iterable

from .dates import format_date
from .selectors import ItemCriteria


def _phrase(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ip_ids_clause(ip_ids: Iterable[str]) -> str:
    return "(" + " OR ".join(f"ipId:{_phrase(ip_id)}" for ip_id in ip_ids) + ")"


def item_request(criteria: ItemCriteria) -> str:
    parts = []
    if criteria.query.strip():
        parts.append(f"({criteria.query})")
    if criteria.included_ip_ids:
        parts.append(_ip_ids_clause(criteria.included_ip_ids))
    if criteria.excluded_ip_ids:
        parts.append("NOT " + _ip_ids_clause(criteria.excluded_ip_ids))
    parts.append(f"creationDate:[* TO {format_date(criteria.date)}]")
    return " AND ".join(parts)


def dataset_request(criteria: Iterable[ItemCriteria]) -> str:
    requests = [f"({item_request(item)})" for item in criteria]
    return "(" + " OR ".join(requests) + ")" if requests else ""
