"""The search page's form fields (dataset, date range, tags) written as query-language clauses,
so people learn the `q` they can then edit (docs/catalog.md)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

SORTS = {"oldest": "Oldest first", "newest": "Newest first"}
BUILDER_FIELDS = ("dataset", "date_from", "date_to", "tags")
_TAG_SPLIT = re.compile(r"[,\s]+")


def quoted(text: str) -> str:
    """A phrase literal: backslash and double quote escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class BuiltQuery:
    q: str
    errors: list[str] = field(default_factory=list)


def _day(raw: str, name: str, errors: list[str]) -> str:
    raw = raw.strip()
    if not raw:
        return "*"
    try:
        return date.fromisoformat(raw).isoformat()
    except ValueError:
        errors.append(f"{name} must be a date like 2024-01-31.")
        return "*"


def query_from_fields(*, q: str, dataset: str = "", date_from: str = "", date_to: str = "",
                      tags: str = "") -> BuiltQuery:
    """`q` AND the clauses of the filled fields (the dataset named by its label or URN; the date
    range inclusive, whole days; every tag required)."""
    errors: list[str] = []
    clauses = []
    if dataset.strip():
        clauses.append(f"dataset:{quoted(dataset.strip())}")
    start, end = _day(date_from, "From", errors), _day(date_to, "To", errors)
    if (start, end) != ("*", "*"):
        clauses.append(f"creationDate:[{start} TO {end}]")
    clauses += [f"tags:{quoted(tag)}" for tag in _TAG_SPLIT.split(tags.strip()) if tag]
    q = q.strip()
    if q and clauses:
        q = f"({q})" if " " in q else q
    return BuiltQuery(q=" AND ".join(([q] if q else []) + clauses), errors=errors)
