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
from array import array
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Iterable, Iterator

from .crc import crc32
from .names import sanitize_filename, unique_names

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
# Int keys live in an array; this value (and non-int keys) marks a key kept aside.
_KEY_MIN, _KEY_MAX = -(2**63), 2**63 - 1


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
        return cls(name=name, size=len(data), crc32=crc32(data) & MAX32, data=data, key=key,
                   sha256=hashlib.sha256(data).hexdigest())

    @classmethod
    def from_path(cls, name: str, path: str | os.PathLike, *, size: int, crc32: int,
                  key: object = None, sha256: str = "") -> "ZipEntry":
        return cls(name=name, size=size, crc32=crc32, opener=lambda: open(path, "rb"), key=key,
                   sha256=sha256)


# --- names --------------------------------------------------------------------------------

def sha256sums_content(pairs: Iterable[tuple[str, str]]) -> bytes:
    """`sha256sum -c` compatible lines (`<hex>  <name>`), sorted by name."""
    return "".join(f"{digest}  {name}\n" for name, digest in sorted(pairs)).encode("utf-8")


# --- layout -------------------------------------------------------------------------------

def dos_datetime(moment: dt.datetime) -> tuple[int, int]:
    moment = max(moment.replace(tzinfo=None), DOS_EPOCH)
    if moment.year > 2107:
        moment = dt.datetime(2107, 12, 31, 23, 59, 58)
    date = ((moment.year - 1980) << 9) | (moment.month << 5) | moment.day
    time = (moment.hour << 11) | (moment.minute << 5) | (moment.second // 2)
    return date, time


class ZipLayout:
    """The byte-exact layout of an archive of `entries` (kept in the given order).

    `len(layout)` is the archive size; `layout.etag` a strong validator of its bytes;
    `layout.iter_range(start, end)` yields the bytes `start..end` (inclusive) reading only
    the files that range overlaps.

    Entries are kept in columns (one bytes blob of names, arrays of sizes, CRCs, offsets
    and int keys: ~50 bytes plus the name per entry), not as objects, so an archive of
    200,000 files costs a few MB; headers are packed again when sent. Entries may come
    from a generator. An entry with neither `data` nor its own `opener` is read through
    the layout's `opener(index, key)` (one callable for all, e.g. a batched path lookup).
    """

    def __init__(self, entries: Iterable[ZipEntry], *, mtime: dt.datetime = DOS_EPOCH,
                 opener: Callable[[int, object], BinaryIO] | None = None):
        self.mtime = mtime
        self._dos_date, self._dos_time = dos_datetime(mtime)
        self._opener = opener
        self._names = bytearray()
        self._name_ends = array("Q")
        self._sizes = array("Q")
        self._crcs = array("I")
        self._offsets = array("Q")           # of each local header
        self._keys = array("q")               # int keys; others (and None) in _odd_keys
        self._odd_keys: dict[int, object] = {}
        self._data: dict[int, bytes] = {}
        self._openers: dict[int, Callable[[], BinaryIO]] = {}
        self._sorted_upto = 0                 # names[:sorted_upto] are strictly ascending
        digest = layout_digest(self.mtime)
        offset = 0
        for entry in entries:
            name = entry.name.encode("utf-8")
            if entry.size < 0 or not 0 <= entry.crc32 <= MAX32:
                raise ValueError(f"bad size or crc32 for {entry.name!r}")
            self._check_new_name(name, entry.name)
            index = len(self._sizes)
            self._names += name
            self._name_ends.append(len(self._names))
            self._sizes.append(entry.size)
            self._crcs.append(entry.crc32)
            self._offsets.append(offset)
            key = entry.key
            if type(key) is int and _KEY_MIN < key <= _KEY_MAX:
                self._keys.append(key)
            else:
                self._keys.append(_KEY_MIN)
                self._odd_keys[index] = key
            if entry.data is not None:
                self._data[index] = entry.data
            elif entry.opener is not None:
                self._openers[index] = entry.opener
            offset += _local_header_length(len(name), entry.size) + entry.size
            digest_entry(digest, name, entry.size, entry.crc32, entry.sha256)
        self._names = bytes(self._names)
        self.central_directory_offset = offset
        self._cd_starts = array("Q")
        cd_offset = offset
        for index in range(len(self._sizes)):
            self._cd_starts.append(cd_offset)
            cd_offset += 46 + self._name_length(index) + _central_extra_length(self._sizes[index],
                                                                             self._offsets[index])
        self.central_directory_size = cd_offset - offset
        self._tail = self._end_records(offset, self.central_directory_size, len(self._sizes))
        self.size = cd_offset + len(self._tail)
        self.etag = etag_of(digest)

    def _check_new_name(self, name: bytes, text: str) -> None:
        """Duplicate names are refused, in O(log n) time and no extra memory while the names
        come sorted (UTF-8 bytes sort as code points), and by a scan of the unsorted rest."""
        count = len(self._sizes)
        if count == self._sorted_upto and (count == 0 or name > self._name(count - 1)):
            self._sorted_upto += 1
            return
        lo, hi = 0, self._sorted_upto
        while lo < hi:
            mid = (lo + hi) // 2
            if self._name(mid) < name:
                lo = mid + 1
            else:
                hi = mid
        if (lo < self._sorted_upto and self._name(lo) == name) or any(
                self._name(i) == name for i in range(self._sorted_upto, count)):
            raise ValueError(f"duplicate archive name {text!r}")

    # --- public -------------------------------------------------------------------------

    def __len__(self) -> int:
        return self.size

    @property
    def entry_count(self) -> int:
        return len(self._sizes)

    def entry(self, index: int) -> ZipEntry:
        """Entry `index` as a ZipEntry (built on demand: the layout keeps columns)."""
        return ZipEntry(name=self._name(index).decode("utf-8"), size=self._sizes[index],
                        crc32=self._crcs[index], opener=self._openers.get(index),
                        data=self._data.get(index), key=self.key(index))

    def key(self, index: int) -> object:
        key = self._keys[index]
        return self._odd_keys.get(index) if key == _KEY_MIN else key

    def entry_crc32(self, index: int) -> int:
        return self._crcs[index]

    def name(self, index: int) -> str:
        return self._name(index).decode("utf-8")

    @property
    def entries(self) -> list[ZipEntry]:
        return [self.entry(i) for i in range(self.entry_count)]

    @property
    def is_zip64(self) -> bool:
        return len(self._tail) > 22

    def entry_span(self, index: int) -> tuple[int, int]:
        """(first, last) byte offsets of entry `index` (local header to last data byte)."""
        data_offset, size = self.data_span(index)
        return self._offsets[index], data_offset + size - 1

    def local_header(self, index: int) -> bytes:
        """The bytes of entry `index`'s local header (its data follows it)."""
        return self._local_header(index)

    def data_span(self, index: int) -> tuple[int, int]:
        """(offset of the first data byte, size) of entry `index`."""
        size = self._sizes[index]
        return self._offsets[index] + _local_header_length(self._name_length(index), size), size

    def iter_range(self, start: int = 0, end: int | None = None, *, chunk_size: int = DEFAULT_CHUNK,
                   on_delivered: Callable[[ZipEntry], None] | None = None,
                   verify_crc: bool = True,
                   on_delivered_key: Callable[[object], None] | None = None) -> Iterator[bytes]:
        """Yields bytes `start..end` (inclusive, clamped to the archive).

        An entry counts as delivered (`on_delivered(entry)`) once the chunk holding its last
        byte was yielded AND taken (the consumer asked for more), so a client that hangs up
        mid-entry never marks it. A data entry streamed from its first byte is CRC-checked
        before its last chunk leaves; a mismatch, a missing or a short file raises
        ZipSourceError (the caller aborts the response). `on_delivered_key(key)` is the same
        with the entry's key only (no ZipEntry built per file: a million-file zip).
        """
        end = self.size - 1 if end is None else min(end, self.size - 1)
        if start > end:
            return
        if on_delivered_key is not None:
            on_delivered = on_delivered_key
            entry_of = self.key
        else:
            entry_of = self.entry
        # Small pieces (headers, small files) are gathered into chunks of up to `chunk_size`:
        # many tiny writes would make an archive of small files slow to serve. Entries whose
        # last byte sits in a gathered chunk are confirmed once that chunk was taken.
        buffer, pending = bytearray(), []
        for piece, completed in self._pieces(start, end, chunk_size, verify_crc):
            if len(piece) >= SMALL_PIECE:
                if buffer:
                    yield bytes(buffer)
                    buffer.clear()
                    self._confirm(pending, on_delivered, entry_of)
                yield piece
                if completed is not None:
                    self._confirm([completed], on_delivered, entry_of)
                continue
            buffer += piece
            if completed is not None:
                pending.append(completed)
            if len(buffer) >= chunk_size:
                yield bytes(buffer)
                buffer.clear()
                self._confirm(pending, on_delivered, entry_of)
        if buffer:
            yield bytes(buffer)
            self._confirm(pending, on_delivered, entry_of)

    @staticmethod
    def _confirm(indexes: list, on_delivered, entry_of) -> None:
        if on_delivered:
            for index in indexes:
                on_delivered(entry_of(index))
        indexes.clear()

    def _pieces(self, start: int, end: int, chunk_size: int, verify_crc: bool):
        """(bytes, index of the entry completed by these bytes or None) covering start..end."""
        pos = start
        count = len(self._sizes)
        index = max(bisect_right(self._offsets, pos) - 1, 0)
        # Entries, local header then data.
        while index < count and pos <= end:
            offset, size = self._offsets[index], self._sizes[index]
            header = self._local_header(index)
            data_offset = offset + len(header)
            entry_end = data_offset + size
            if pos >= entry_end:
                index += 1
                continue
            last_byte = entry_end - 1  # of the header when the entry is empty
            if pos < data_offset:
                piece = header[pos - offset : min(end, data_offset - 1) - offset + 1]
                pos += len(piece)
                yield piece, (index if size == 0 and pos - 1 == last_byte else None)
            if pos <= end and size > 0 and pos < entry_end:
                stop = min(end, last_byte)
                for chunk, is_last in self._iter_data(index, pos - data_offset, stop - data_offset,
                                                      chunk_size, verify_crc):
                    pos += len(chunk)
                    yield chunk, (index if is_last and stop == last_byte else None)
            index += 1
        # Central directory records, then the end records.
        if pos <= end and pos < self._tail_offset:
            ci = max(bisect_right(self._cd_starts, pos) - 1, 0)
            while ci < count and pos <= end:
                record = self._central_record(ci)
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

    def _name(self, index: int) -> bytes:
        return self._names[self._name_ends[index - 1] if index else 0 : self._name_ends[index]]

    def _name_length(self, index: int) -> int:
        return self._name_ends[index] - (self._name_ends[index - 1] if index else 0)

    def _open(self, index: int) -> BinaryIO:
        opener = self._openers.get(index)
        if opener is not None:
            return opener()
        if self._opener is None:
            raise FileNotFoundError(f"no source for {self.name(index)!r}")
        return self._opener(index, self.key(index))

    def _iter_data(self, index: int, first: int, last: int, chunk_size: int, verify_crc: bool):
        """(chunk, is_last) for bytes first..last of an entry's data."""
        return iter_entry_data(self._data.get(index), lambda: self._open(index), lambda: self.entry(index),
                               self._sizes[index], self._crcs[index], first, last, chunk_size, verify_crc)

    def _local_header(self, index: int) -> bytes:
        return local_header(self._name(index), self._sizes[index], self._crcs[index],
                            self._dos_time, self._dos_date)

    def _central_record(self, index: int) -> bytes:
        return central_record(self._name(index), self._sizes[index], self._crcs[index],
                              self._offsets[index], self._dos_time, self._dos_date)

    @staticmethod
    def _end_records(cd_offset: int, cd_size: int, count: int) -> bytes:
        return end_records(cd_offset, cd_size, count)


# --- records (one implementation for ZipLayout and zip_spool.SpooledZipLayout) -------------

# The data of an entry of BIG_ENTRY bytes or more is read BIG_ENTRY_READ bytes at a time. Every
# chunk costs the same Python on its way to the socket (the generators, the server's write),
# and that code runs from cold caches after each big copy. zip_bench.py, 2 GiB in 20 files
# through gunicorn, zip / single file (sendfile): 1 MiB reads 0.89-0.90, 2 MiB 0.97-1.06, 4 MiB
# 0.95-1.03 on one box; on a faster one 4 MiB did worse than 1 MiB (0.82-0.86 vs 0.88-0.94).
# 2 MiB: as fast where bigger reads help, +2 MiB of worker RSS where 4 MiB reads cost +6.
# Small entries keep the caller's chunk size (memory per download).
BIG_ENTRY = 16 * 1024 * 1024
BIG_ENTRY_READ = 2 * 1024 * 1024

_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")


def iter_entry_data(data: bytes | None, open_entry: Callable[[], BinaryIO], entry: Callable[[], ZipEntry],
                    size: int, expected_crc: int, first: int, last: int, chunk_size: int,
                    verify_crc: bool) -> Iterator[tuple[bytes, bool]]:
    """(chunk, is_last) for bytes first..last of an entry's data: `data` when in memory, else
    read through `open_entry()`, in chunks of `chunk_size` (BIG_ENTRY_READ from BIG_ENTRY bytes
    on). Read whole, the data is CRC-checked before its last chunk leaves; a missing, short or
    changed file raises ZipSourceError (`entry()` describes it)."""
    if data is not None:
        for i in range(first, last + 1, chunk_size):
            j = min(i + chunk_size, last + 1)
            yield data[i:j], j == last + 1
        return
    whole = first == 0 and last == size - 1
    if last - first + 1 >= BIG_ENTRY:
        chunk_size = max(chunk_size, BIG_ENTRY_READ)
    try:
        handle = open_entry()
    except OSError as exc:
        raise ZipSourceError(entry(), exc.strerror or str(exc)) from exc
    with handle:
        if first:
            handle.seek(first)
        remaining = last - first + 1
        crc = 0
        while remaining > 0:
            try:
                chunk = handle.read(min(chunk_size, remaining))
            except OSError as exc:
                raise ZipSourceError(entry(), exc.strerror or str(exc)) from exc
            if not chunk:
                raise ZipSourceError(entry(), "file is shorter than its recorded size")
            remaining -= len(chunk)
            if whole and verify_crc:
                crc = crc32(chunk, crc)
                if remaining == 0 and (crc & MAX32) != expected_crc:
                    raise ZipSourceError(entry(), "content does not match its recorded CRC-32")
            yield chunk, remaining == 0


def local_header(name: bytes, size: int, crc32: int, dos_time: int, dos_date: int) -> bytes:
    """The local file header of a STORED entry (zip64 extra field when the size needs it)."""
    if size < MAX32:
        return _LOCAL.pack(0x04034B50, 20, UTF8_FLAG, 0, dos_time, dos_date, crc32, size, size,
                           len(name), 0) + name
    extra = struct.pack("<HHQQ", 0x0001, 16, size, size)
    return _LOCAL.pack(0x04034B50, 45, UTF8_FLAG, 0, dos_time, dos_date, crc32, MAX32, MAX32,
                       len(name), len(extra)) + name + extra


def central_record(name: bytes, size: int, crc32: int, offset: int, dos_time: int, dos_date: int) -> bytes:
    """The central directory record of an entry whose local header is at `offset`."""
    fields = [size, size] if size >= MAX32 else []
    if offset >= MAX32:
        fields.append(offset)
    extra = struct.pack(f"<HH{len(fields)}Q", 0x0001, 8 * len(fields), *fields) if fields else b""
    size32 = MAX32 if size >= MAX32 else size
    version = 45 if extra else 20
    return _CENTRAL.pack(
        0x02014B50,
        (3 << 8) | version,     # made by: Unix, so unzip applies the permissions
        version,
        UTF8_FLAG,
        0,                      # STORE
        dos_time,
        dos_date,
        crc32,
        size32,
        size32,
        len(name),
        len(extra),
        0,                      # comment length
        0,                      # disk number start
        0,                      # internal attributes
        UNIX_FILE_ATTR,
        min(offset, MAX32),
    ) + name + extra


def end_records(cd_offset: int, cd_size: int, count: int) -> bytes:
    """The end of central directory record, after the zip64 ones when anything needs them."""
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


def layout_digest(mtime: dt.datetime):
    """The running hash of a layout's ETag: its version and timestamp, then `digest_entry`s."""
    digest = hashlib.sha256(LAYOUT_VERSION)
    digest.update(mtime.replace(tzinfo=None).isoformat().encode())
    return digest


def digest_entry(digest, name: bytes, size: int, crc32: int, sha256: str) -> None:
    digest.update(b"\0" + name + b"\0" + f"{size}:{crc32}:{sha256}".encode())


def etag_of(digest) -> str:
    return f'"zip-{digest.hexdigest()[:40]}"'


def _local_header_length(name_length: int, size: int) -> int:
    return 30 + name_length + (20 if size >= MAX32 else 0)


def _central_extra_length(size: int, offset: int) -> int:
    fields = (2 if size >= MAX32 else 0) + (1 if offset >= MAX32 else 0)
    return 4 + 8 * fields if fields else 0
