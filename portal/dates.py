"""ISO-8601 dates on the wire: one formatter (UTC with `Z`) and one parser for query values."""
from __future__ import annotations

from datetime import datetime, time, timezone as dt_timezone

from django.utils.dateparse import parse_date, parse_datetime


def iso_utc(value: datetime | str | None, *, timespec: str = "milliseconds") -> str | None:
    """`2026-03-02T10:04:05.123Z`: UTC with `Z`, to the millisecond as REGARDS writes dates
    (`timespec` as for `datetime.isoformat`: "seconds" for metalink, "microseconds" for
    deliveries). A str is a date the database already wrote this way (orders.selectors.IsoUtc)."""
    if value is None or isinstance(value, str):
        return value
    return value.astimezone(dt_timezone.utc).replace(tzinfo=None).isoformat(timespec=timespec) + "Z"


def parse_when(text: str, *, end_of_day: bool = False) -> datetime:
    """An ISO date-time or date (a bare date is its first moment, or its last with
    `end_of_day`), naive meaning UTC, returned in UTC; ValueError when it is neither or when
    it falls outside years 1..9999 in UTC."""
    value = parse_datetime(text) if len(text) > 10 else None
    if value is None:
        day = parse_date(text)
        if day is None:
            raise ValueError(text)
        value = datetime.combine(day, time.max if end_of_day else time.min)
    if value.tzinfo is None:
        return value.replace(tzinfo=dt_timezone.utc)
    try:  # in UTC: databases take no offset beyond ±15:59, yet `-18:43` parses
        return value.astimezone(dt_timezone.utc)
    except OverflowError:
        raise ValueError(text) from None
