"""Deterministic, seekable zip archives of files whose size and CRC-32 are known in advance.

Every catalog file carries its size and CRC-32, so the whole archive can be laid out before a
byte is read: the exact length, a strong ETag, and any byte range (for `Range` / resumed
downloads) are computed from the entry list alone. Data is STORED (catalog data is already
compressed or not worth the CPU), names carry the UTF-8 flag, timestamps are fixed, and
zip64 records appear only when a size, an offset or the entry count needs them.

zipstream-ng sizes an archive ahead of time but computes CRCs while streaming and cannot
start in the middle of the archive, hence this small layout engine (see APPNOTE.TXT 6.3).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import struct
import zlib
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Iterable, Iterator

__all__ = [
    "ZipEntry",
    "ZipLayout",
    "ZipSourceError",
    "unique_names",
    "sanitize_filename",
    "sha256sums_content",
]

MAX32 = 0xFFFFFFFF
MAX16 = 0xFFFF
UTF8_FLAG = 1 << 11
DEFAULT_CHUNK = 1024 * 1024
# Pieces smaller than this are gathered before being yielded (see iter_range).
SMALL_PIECE = 64 * 1024
# 1980-01-01 00:00:00: the DOS epoch, the default fixed timestamp.
DOS_EPOCH = dt.datetime(1980, 1, 1)
UNIX_FILE_ATTR = (0o100644 << 16)  # regular file, rw-r--r--
LAYOUT_VERSION = b"orderly-zip-1"


class ZipSourceError(IOError):
    """A source file could not be read as promised (missing, short, wrong CRC) mid-stream.

    The response can no longer be made right (its length is committed): the caller aborts it,
    so the client sees a truncated download, never a silently corrupt one.
    """

    def __init__(self, entry: "ZipEntry", reason: str):
        super().__init__(f"{entry.name}: {reason}")
        self.entry = entry
        self.reason = reason


@dataclass(frozen=True)
class ZipEntry:
    """One archive member: either `data` (small, in memory) or `opener` (a seekable file)."""

    name: str
    size: int
    crc32: int
    opener: Callable[[], BinaryIO] | None = field(default=None, compare=False)
    data: bytes | None = field(default=None, compare=False)
    # The caller's handle (e.g. an order data file id), given back by `on_delivered`.
    key: object = None
    sha256: str = ""

    @classmethod
    def from_bytes(cls, name: str, data: bytes, key: object = None) -> "ZipEntry":
        return cls(name=name, size=len(data), crc32=zlib.crc32(data) & MAX32, data=data, key=key,
                   sha256=hashlib.sha256(data).hexdigest())

    @classmethod
    def from_path(cls, name: str, path: str | os.PathLike, *, size: int, crc32: int,
                  key: object = None, sha256: str = "") -> "ZipEntry":
        return cls(name=name, size=size, crc32=crc32, opener=lambda: open(path, "rb"), key=key,
                   sha256=sha256)


# --- names --------------------------------------------------------------------------------

_FORBIDDEN = {ord(c): "_" for c in '/\\'} | {i: None for i in range(32)} | {127: None}
_COMPOUND_EXTENSIONS = (".tar.gz", ".tar.bz2", ".tar.xz", ".tar.zst")


def sanitize_filename(name: str) -> str:
    """A single path component: no separators, no control characters, never empty or a dot name."""
    cleaned = (name or "").translate(_FORBIDDEN).strip()
    if cleaned in ("", ".", ".."):
        cleaned = "file"
    return cleaned


def _split_extension(name: str) -> tuple[str, str]:
    lower = name.lower()
    for ext in _COMPOUND_EXTENSIONS:
        if lower.endswith(ext) and len(name) > len(ext):
            return name[: -len(ext)], name[-len(ext):]
    stem, ext = os.path.splitext(name)
    return stem, ext


def unique_names(items: Iterable[tuple[object, str]], reserved: Iterable[str] = ()) -> dict[object, str]:
    """Deterministic unique names: `{key: name}` for `(key, filename)` pairs.

    Names are compared case-insensitively (a download to Windows or macOS must not overwrite
    one file with another). Every distinct name keeps its spelling for the lowest key; later
    duplicates get ` (1)`, ` (2)`... before their extension, skipping names already taken.
    The result depends only on the pairs, never on their order.
    """
    ordered = sorted(((sanitize_filename(name), key) for key, name in items),
                     key=lambda pair: (pair[0].casefold(), _sort_key(pair[1]), pair[0]))
    taken = {sanitize_filename(name).casefold() for name in reserved}
    result: dict[object, str] = {}
    duplicates: list[tuple[str, object]] = []
    for name, key in ordered:
        if name.casefold() in taken:
            duplicates.append((name, key))
        else:
            taken.add(name.casefold())
            result[key] = name
    for name, key in duplicates:
        stem, ext = _split_extension(name)
        n = 1
        while f"{stem} ({n}){ext}".casefold() in taken:
            n += 1
        candidate = f"{stem} ({n}){ext}"
        taken.add(candidate.casefold())
        result[key] = candidate
    return result


def _sort_key(key: object):
    # Ids are ints; anything else sorts by its text after all ints.
    return (0, key, "") if isinstance(key, int) else (1, 0, str(key))


def sha256sums_content(pairs: Iterable[tuple[str, str]]) -> bytes:
    """`sha256sum -c` compatible lines (`<hex>  <name>`), sorted by name."""
    return "".join(f"{digest}  {name}\n" for name, digest in sorted(pairs)).encode("utf-8")


# --- layout -------------------------------------------------------------------------------

def _dos_datetime(moment: dt.datetime) -> tuple[int, int]:
    moment = max(moment.replace(tzinfo=None), DOS_EPOCH)
    if moment.year > 2107:
        moment = dt.datetime(2107, 12, 31, 23, 59, 58)
    date = ((moment.year - 1980) << 9) | (moment.month << 5) | moment.day
    time = (moment.hour << 11) | (moment.minute << 5) | (moment.second // 2)
    return date, time


@dataclass(frozen=True)
class _Placed:
    entry: ZipEntry
    name_bytes: bytes
    offset: int           # of the local header
    header: bytes          # local header + name + extra
    zip64_sizes: bool

    @property
    def data_offset(self) -> int:
        return self.offset + len(self.header)

    @property
    def end(self) -> int:
        return self.data_offset + self.entry.size


class ZipLayout:
    """The byte-exact layout of an archive of `entries` (kept in the given order).

    `len(layout)` is the archive size; `layout.etag` a strong validator of its bytes;
    `layout.iter_range(start, end)` yields the bytes `start..end` (inclusive) reading only
    the files that range overlaps.
    """

    def __init__(self, entries: Iterable[ZipEntry], *, mtime: dt.datetime = DOS_EPOCH):
        self.mtime = mtime
        self._dos_date, self._dos_time = _dos_datetime(mtime)
        placed: list[_Placed] = []
        names: set[str] = set()
        offset = 0
        for entry in entries:
            if entry.name in names:
                raise ValueError(f"duplicate archive name {entry.name!r}")
            names.add(entry.name)
            if entry.size < 0 or not 0 <= entry.crc32 <= MAX32:
                raise ValueError(f"bad size or crc32 for {entry.name!r}")
            header, zip64 = self._local_header(entry)
            item = _Placed(entry, entry.name.encode("utf-8"), offset, header, zip64)
            placed.append(item)
            offset = item.end
        self._placed = placed
        self._starts = [p.offset for p in placed]
        self.central_directory_offset = offset
        self._cd_records_len = [self._central_record_length(p) for p in placed]
        self._cd_starts: list[int] = []
        cd_offset = offset
        for length in self._cd_records_len:
            self._cd_starts.append(cd_offset)
            cd_offset += length
        self.central_directory_size = cd_offset - offset
        self._tail = self._end_records(offset, self.central_directory_size, len(placed))
        self.size = cd_offset + len(self._tail)
        self.etag = self._compute_etag()

    # --- public -------------------------------------------------------------------------

    def __len__(self) -> int:
        return self.size

    @property
    def entries(self) -> list[ZipEntry]:
        return [p.entry for p in self._placed]

    @property
    def is_zip64(self) -> bool:
        return len(self._tail) > 22

    def entry_span(self, index: int) -> tuple[int, int]:
        """(first, last) byte offsets of entry `index` (local header to last data byte)."""
        p = self._placed[index]
        return p.offset, p.end - 1

    def data_span(self, index: int) -> tuple[int, int]:
        """(offset of the first data byte, size) of entry `index`."""
        p = self._placed[index]
        return p.data_offset, p.entry.size

    def iter_range(self, start: int = 0, end: int | None = None, *, chunk_size: int = DEFAULT_CHUNK,
                   on_delivered: Callable[[ZipEntry], None] | None = None,
                   verify_crc: bool = True) -> Iterator[bytes]:
        """Yields bytes `start..end` (inclusive, clamped to the archive).

        An entry counts as delivered (`on_delivered(entry)`) once the chunk holding its last
        byte was yielded AND taken (the consumer asked for more), so a client that hangs up
        mid-entry never marks it. A data entry streamed from its first byte is CRC-checked
        before its last chunk leaves; a mismatch, a missing or a short file raises
        ZipSourceError (the caller aborts the response).
        """
        end = self.size - 1 if end is None else min(end, self.size - 1)
        if start > end:
            return
        # Small pieces (headers, small files) are gathered into chunks of up to `chunk_size`:
        # many tiny writes would make an archive of small files slow to serve. Entries whose
        # last byte sits in a gathered chunk are confirmed once that chunk was taken.
        buffer, pending = bytearray(), []
        for piece, completed in self._pieces(start, end, chunk_size, verify_crc):
            if len(piece) >= SMALL_PIECE:
                if buffer:
                    yield bytes(buffer)
                    buffer.clear()
                    self._confirm(pending, on_delivered)
                yield piece
                if completed is not None:
                    self._confirm([completed], on_delivered)
                continue
            buffer += piece
            if completed is not None:
                pending.append(completed)
            if len(buffer) >= chunk_size:
                yield bytes(buffer)
                buffer.clear()
                self._confirm(pending, on_delivered)
        if buffer:
            yield bytes(buffer)
            self._confirm(pending, on_delivered)

    @staticmethod
    def _confirm(entries: list, on_delivered) -> None:
        if on_delivered:
            for entry in entries:
                on_delivered(entry)
        entries.clear()

    def _pieces(self, start: int, end: int, chunk_size: int, verify_crc: bool):
        """(bytes, entry completed by these bytes or None) covering start..end in order."""
        pos = start
        index = max(bisect_right(self._starts, pos) - 1, 0)
        # Entries, local header then data.
        while index < len(self._placed) and pos <= end:
            p = self._placed[index]
            if pos >= p.end:
                index += 1
                continue
            last_byte = p.end - 1  # of the header when the entry is empty
            if pos < p.data_offset:
                piece = p.header[pos - p.offset : min(end, p.data_offset - 1) - p.offset + 1]
                pos += len(piece)
                yield piece, (p.entry if p.entry.size == 0 and pos - 1 == last_byte else None)
            if pos <= end and p.entry.size > 0 and pos < p.end:
                stop = min(end, last_byte)
                for chunk, is_last in self._iter_data(p, pos - p.data_offset, stop - p.data_offset,
                                                      chunk_size, verify_crc):
                    pos += len(chunk)
                    yield chunk, (p.entry if is_last and stop == last_byte else None)
            index += 1
        # Central directory records, then the end records.
        if pos <= end and pos < self._tail_offset:
            ci = max(bisect_right(self._cd_starts, pos) - 1, 0)
            while ci < len(self._placed) and pos <= end:
                record = self._central_record(self._placed[ci])
                rec_start = self._cd_starts[ci]
                piece = record[pos - rec_start : min(end, rec_start + len(record) - 1) - rec_start + 1]
                pos += len(piece)
                ci += 1
                yield piece, None
        if pos <= end:
            yield self._tail[pos - self._tail_offset : end - self._tail_offset + 1], None

    def __iter__(self) -> Iterator[bytes]:
        return self.iter_range(0, self.size - 1)

    # --- internals ----------------------------------------------------------------------

    @property
    def _tail_offset(self) -> int:
        return self.size - len(self._tail)

    def _iter_data(self, p: _Placed, first: int, last: int, chunk_size: int, verify_crc: bool):
        """(chunk, is_last) for bytes first..last of an entry's data."""
        entry = p.entry
        whole = first == 0 and last == entry.size - 1
        if entry.data is not None:
            data = entry.data
            for i in range(first, last + 1, chunk_size):
                j = min(i + chunk_size, last + 1)
                yield data[i:j], j == last + 1
            return
        try:
            handle = entry.opener()
        except OSError as exc:
            raise ZipSourceError(entry, exc.strerror or str(exc)) from exc
        with handle:
            if first:
                handle.seek(first)
            remaining = last - first + 1
            crc = 0
            while remaining > 0:
                try:
                    chunk = handle.read(min(chunk_size, remaining))
                except OSError as exc:
                    raise ZipSourceError(entry, exc.strerror or str(exc)) from exc
                if not chunk:
                    raise ZipSourceError(entry, "file is shorter than its recorded size")
                remaining -= len(chunk)
                if whole and verify_crc:
                    crc = zlib.crc32(chunk, crc)
                    if remaining == 0 and (crc & MAX32) != entry.crc32:
                        raise ZipSourceError(entry, "content does not match its recorded CRC-32")
                yield chunk, remaining == 0

    def _local_header(self, entry: ZipEntry) -> tuple[bytes, bool]:
        name = entry.name.encode("utf-8")
        zip64 = entry.size >= MAX32
        extra = struct.pack("<HHQQ", 0x0001, 16, entry.size, entry.size) if zip64 else b""
        size32 = MAX32 if zip64 else entry.size
        header = struct.pack(
            "<IHHHHHIIIHH",
            0x04034B50,
            45 if zip64 else 20,   # version needed to extract
            UTF8_FLAG,
            0,                     # STORE
            self._dos_time,
            self._dos_date,
            entry.crc32,
            size32,
            size32,
            len(name),
            len(extra),
        )
        return header + name + extra, zip64

    @staticmethod
    def _central_extra(p: _Placed) -> bytes:
        fields = []
        if p.zip64_sizes:
            fields += [p.entry.size, p.entry.size]
        if p.offset >= MAX32:
            fields.append(p.offset)
        if not fields:
            return b""
        return struct.pack(f"<HH{len(fields)}Q", 0x0001, 8 * len(fields), *fields)

    def _central_record_length(self, p: _Placed) -> int:
        return 46 + len(p.name_bytes) + len(self._central_extra(p))

    def _central_record(self, p: _Placed) -> bytes:
        extra = self._central_extra(p)
        size32 = MAX32 if p.zip64_sizes else p.entry.size
        version = 45 if extra else 20
        return struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            (3 << 8) | version,     # made by: Unix, so unzip applies the permissions
            version,
            UTF8_FLAG,
            0,
            self._dos_time,
            self._dos_date,
            p.entry.crc32,
            size32,
            size32,
            len(p.name_bytes),
            len(extra),
            0,                      # comment length
            0,                      # disk number start
            0,                      # internal attributes
            UNIX_FILE_ATTR,
            min(p.offset, MAX32),
        ) + p.name_bytes + extra

    @staticmethod
    def _end_records(cd_offset: int, cd_size: int, count: int) -> bytes:
        zip64 = count >= MAX16 or cd_offset >= MAX32 or cd_size >= MAX32
        tail = b""
        if zip64:
            zip64_eocd_offset = cd_offset + cd_size
            tail += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, (3 << 8) | 45, 45, 0, 0,
                                count, count, cd_size, cd_offset)
            tail += struct.pack("<IIQI", 0x07064B50, 0, zip64_eocd_offset, 1)
        tail += struct.pack(
            "<IHHHHIIH",
            0x06054B50,
            0,
            0,
            min(count, MAX16),
            min(count, MAX16),
            min(cd_size, MAX32),
            min(cd_offset, MAX32),
            0,
        )
        return tail

    def _compute_etag(self) -> str:
        digest = hashlib.sha256(LAYOUT_VERSION)
        digest.update(self.mtime.replace(tzinfo=None).isoformat().encode())
        for p in self._placed:
            e = p.entry
            digest.update(b"\0" + p.name_bytes + b"\0" + f"{e.size}:{e.crc32}:{e.sha256}".encode())
        return f'"zip-{digest.hexdigest()[:40]}"'
