"""Item selection dates: millisecond precision, written and read as ISO-8601 UTC with `Z`.

The date identifies an item selection in `DELETE .../dataset/{id}/{itemsSelectionDate}`, so
what the API writes must read back to the stored value exactly: dates are stored truncated
to the millisecond, as the reference API writes them.
"""
from __future__ import annotations

import datetime as dt

from portal.dates import iso_utc

ONE_MS = dt.timedelta(milliseconds=1)


def format_date(value: dt.datetime) -> str:
    return iso_utc(value)


def ceil_to_ms(value: dt.datetime) -> dt.datetime:
    rest = value.microsecond % 1000
    return value if not rest else value + dt.timedelta(microseconds=1000 - rest)


def parse_selection_date(text: str) -> dt.datetime:
    """ISO-8601 (`Z`, an offset, or naive meaning UTC) -> aware UTC datetime; ValueError if not."""
    text = text.strip()
    if not text or len(text) > 64:
        raise ValueError("not a date")
    if text[-1] in "zZ":
        text = text[:-1] + "+00:00"
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)
