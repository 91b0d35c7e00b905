"""HTTP byte ranges (RFC 9110 section 14): one range per request, `If-Range` with strong ETags."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


class ShortRead(OSError):
    """The file holds fewer bytes than it should: the response must be aborted, not padded."""


def read_range(handle, start: int, length: int, chunk_size: int = 256 * 1024) -> Iterator[bytes]:
    """`length` bytes of an open binary file from `start`, in chunks, closing it at the end.

    Raises ShortRead if the file ends early (its Content-Length is already committed)."""
    with handle:
        if start:
            handle.seek(start)
        remaining = length
        while remaining > 0:
            chunk = handle.read(min(chunk_size, remaining))
            if not chunk:
                raise ShortRead(f"{remaining} bytes missing at the end of the file")
            remaining -= len(chunk)
            yield chunk


class RangeNotSatisfiable(Exception):
    """416: the range starts at or after the end of the representation."""


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


def requested_range(*, range_header: str | None, if_range: str | None, etag: str, size: int) -> ByteRange | None:
    """The range to send, or None for the whole representation.

    A missing, malformed or multi-range header, or an `If-Range` that is not our current
    strong ETag (a date or another version), gives the whole representation (RFC 9110 allows
    ignoring Range). A syntactically valid range past the end raises RangeNotSatisfiable.
    """
    if not range_header or size == 0:
        return None
    if if_range is not None and if_range.strip() != etag:
        return None
    match = _RANGE.match(range_header)
    if not match:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if len(first) > 20 or len(last) > 20:  # beyond any file size: ignore, never overflow
        return None
    if first == "":  # suffix: the last N bytes
        suffix = int(last)
        if suffix == 0:
            raise RangeNotSatisfiable()
        return ByteRange(max(size - suffix, 0), size - 1)
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if last != "" and int(last) < start:
        return None  # invalid: ignore it
    if start >= size:
        raise RangeNotSatisfiable()
    return ByteRange(start, end)
