"""A zip layout whose entries live on disk, not in memory: the order zip of a million files.

`SpooledZipLayout` lays out the same archive as `ZipLayout` (same bytes, same ETag, same
public API) but writes one fixed-size record per entry (`_RECORD`: where its name is in a
names file, its local header offset, size, int key, central record offset, CRC-32, name
length and raw SHA-256) and the names to two anonymous temporary files. What stays in memory
is a constant: the entries kept aside (odd keys, in-memory data, own openers; a few), one
block of records being read, and the output chunk.

Streaming reads the records a block at a time (`os.pread`) and, for small files the opener
can give a local path for (`opener.paths_of` for a block, or `opener.path_of(index, key)`),
reads each file with one `os.read`, checks its CRC-32 and gathers headers and data into
~1 MiB chunks, joined once. A range start
is found by binary search over the records (local header offsets, then central record
offsets). Delivered entries are reported as index ranges (`on_delivered_range(first, stop)`),
contiguous by construction.
"""
from __future__ import annotations

import bisect
import datetime as dt
import itertools
import operator
import os
import struct
import tempfile
from array import array
from typing import BinaryIO, Callable, Iterable, Iterator

from .crc import crc32
from .zip_layout import (
    _KEY_MAX,
    _KEY_MIN,
    DEFAULT_CHUNK,
    DOS_EPOCH,
    MAX32,
    SMALL_PIECE,
    UNIX_FILE_ATTR,
    ZipEntry,
    ZipSourceError,
    _central_extra_length,
    _local_header_length,
    central_record,
    dos_datetime,
    end_records,
    etag_of,
    iter_entry_data,
    layout_digest,
    local_header,
)

__all__ = ["SpooledZipLayout", "NO_SHA"]

# name offset, local header offset, size, int key, central record offset (from the central
# directory's start), CRC-32, name length, raw SHA-256 (zeros when unknown): 80 bytes.
_RECORD = struct.Struct("<QQQqQII32s")
BLOCK = 4096  # records read (and written) at a time
NO_SHA = bytes(32)


def _write_all(fd: int, data) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


_DIGEST_ENTRY = b"\0%s\0%d:%d:%s".__mod__  # = digest_entry's bytes


def _lay_out_batch(batch: list[tuple], previous: bytes | None, names_length: int, offset: int,
                   cd_offset: int) -> tuple | None:
    """The records, names and digest_entry bytes of a batch of file tuples `(name, size,
    crc32, key, sha256)` laid out from these offsets, exactly as entry by entry, with C loops
    (and the names, offsets after it); None when the batch is not the plain case: names
    increasing from `previous`, int keys, a size below 4 GiB, a 64-digit SHA-256 or none."""
    if not batch or set(map(type, batch)) != {tuple} or set(map(len, batch)) != {5}:
        return None
    texts, sizes, crcs, keys, shas = zip(*batch)
    names = list(map(str.encode, texts))
    if not ((previous is None or previous < names[0]) and all(map(operator.lt, names, names[1:]))):
        return None
    if (min(sizes) < 0 or max(sizes) >= MAX32 or min(crcs) < 0 or max(crcs) > MAX32
            or set(map(type, keys)) != {int} or min(keys) <= _KEY_MIN or max(keys) > _KEY_MAX
            or not set(map(len, shas)) <= {0, 64}):
        return None
    try:
        raws = list(map(bytes.fromhex, shas))  # "" gives b"", packed as NO_SHA
    except ValueError:
        return None
    lengths = list(map(len, names))
    n = len(batch)
    # Local headers: 30 bytes + the name (sizes below 4 GiB); central records: 46 + the name,
    # + 12 (a zip64 offset) for an entry from 4 GiB on.
    offsets = list(itertools.accumulate([30 + length + size for length, size in zip(lengths, sizes)],
                                        initial=offset))
    past = bisect.bisect_left(offsets, MAX32, 0, n)
    cd_offsets = list(itertools.accumulate([46 + length for length in lengths[:past]]
                                           + [58 + length for length in lengths[past:]], initial=cd_offset))
    name_offsets = list(itertools.accumulate(lengths, initial=names_length))
    records = b"".join(map(_RECORD.pack, name_offsets, offsets, sizes, keys, cd_offsets, crcs, lengths, raws))
    digested = b"".join(map(_DIGEST_ENTRY, zip(names, sizes, crcs, map(str.encode, shas))))
    return records, b"".join(names), digested, names[-1], name_offsets[n], offsets[n], cd_offsets[n]


class SpooledZipLayout:
    """The layout of an archive of `entries` (kept in the given order), spooled to disk.

    Same contract as ZipLayout (duplicate names refused, `len`, `etag`, `iter_range`...).
    An entry may also be a tuple `(name, size, crc32, key, sha256)`: a file read through
    `opener` (a million ZipEntry objects cost more than the records); and a list of such
    tuples is a batch of entries, laid out together (C loops instead of a Python one per file).
    `opener(index, key)` opens an entry that has neither data nor its own opener; when it
    also has `path_of(index, key)` returning a local path (or None), small files are read
    through that path; or `paths_of(first, sha256s)`, the paths (or Nones) of the entries
    first, first + 1... given their raw SHA-256s: a block of entries asked at once. `temp_dir`: where the two anonymous spool files go. Call `close()`
    (or let the layout be collected) to free them.
    """

    def __init__(self, entries: Iterable[ZipEntry], *, mtime: dt.datetime = DOS_EPOCH,
                 opener: Callable[[int, object], BinaryIO] | None = None, temp_dir: str | None = None):
        self.mtime = mtime
        self._dos_date, self._dos_time = dos_datetime(mtime)
        self._opener = opener
        self._path_of = getattr(opener, "path_of", None)
        self._paths_of = getattr(opener, "paths_of", None)
        self._records = tempfile.TemporaryFile(dir=temp_dir)
        self._names = tempfile.TemporaryFile(dir=temp_dir)
        self._rfd, self._nfd = self._records.fileno(), self._names.fileno()
        self._odd_keys: dict[int, object] = {}
        self._data: dict[int, bytes] = {}
        self._openers: dict[int, Callable[[], BinaryIO]] = {}
        self._cache: tuple[int, list, bytes, int] = (-1, [], b"", 0)
        self._count = 0
        self._sorted_upto = 0
        self._unsorted: set[bytes] = set()
        try:
            self._build(entries)
        except BaseException:
            self.close()
            raise

    def _build(self, entries: Iterable[ZipEntry]) -> None:
        digest = layout_digest(self.mtime)
        records, names = bytearray(), bytearray()
        pack, update, fromhex = _RECORD.pack, digest.update, bytes.fromhex
        key_min, key_max, max32, block, no_sha = _KEY_MIN, _KEY_MAX, MAX32, BLOCK, NO_SHA
        digested: list[bytes] = []  # digest_entry of each entry of the block, hashed together
        names_length = offset = cd_offset = count = sorted_upto = 0
        previous = None
        for item in entries:
            if type(item) is list:
                if count == sorted_upto:
                    laid = _lay_out_batch(item, previous, names_length, offset, cd_offset)
                    if laid is not None:
                        batch_records, batch_names, batch_digested, previous, names_length, offset, cd_offset = laid
                        records += batch_records
                        names += batch_names
                        digested.append(batch_digested)
                        count += len(item)
                        sorted_upto = count
                        if len(records) >= block * _RECORD.size:
                            update(b"".join(digested))
                            digested.clear()
                            self._spill(records, names)
                        continue
                batch = item
            else:
                batch = (item,)
            for entry in batch:
                if type(entry) is tuple:  # (name, size, crc32, key, sha256): a file, no ZipEntry built
                    text, size, crc, key, sha = entry
                    data = opener = None
                else:
                    text, size, crc, key, sha = entry.name, entry.size, entry.crc32, entry.key, entry.sha256
                    data, opener = entry.data, entry.opener
                name = text.encode("utf-8")
                if size < 0 or not 0 <= crc <= max32:
                    raise ValueError(f"bad size or crc32 for {text!r}")
                if count == sorted_upto and (previous is None or name > previous):
                    sorted_upto += 1
                    previous = name
                else:
                    self._spill(records, names)
                    self._count, self._sorted_upto = count, sorted_upto
                    self._check_unsorted_name(name, text)
                if type(key) is not int or not key_min < key <= key_max:
                    self._odd_keys[count] = key
                    key = key_min
                if data is not None:
                    self._data[count] = data
                elif opener is not None:
                    self._openers[count] = opener
                raw = no_sha
                if len(sha) == 64:  # the raw SHA-256 (NO_SHA when none or not hex)
                    try:
                        raw = fromhex(sha)
                    except ValueError:
                        pass
                length = len(name)
                records += pack(names_length, offset, size, key, cd_offset, crc, length, raw)
                names += name
                names_length += length
                digested.append(b"\0%s\0%d:%d:%s" % (name, size, crc, sha.encode()))  # = digest_entry
                if size < max32 and offset < max32:
                    cd_offset += 46 + length
                    offset += 30 + length + size
                else:
                    cd_offset += 46 + length + _central_extra_length(size, offset)
                    offset += _local_header_length(length, size) + size
                count += 1
                if not count % block:
                    update(b"".join(digested))
                    digested.clear()
                    self._spill(records, names)
        update(b"".join(digested))
        self._sorted_upto = sorted_upto
        self._spill(records, names)
        self._count = count
        self.central_directory_offset = offset
        self.central_directory_size = cd_offset
        self._tail = end_records(offset, cd_offset, count)
        self.size = offset + cd_offset + len(self._tail)
        self.etag = etag_of(digest)

    def _spill(self, records: bytearray, names: bytearray) -> None:
        """Appends the records and names laid out so far to their spool files, and empties them."""
        _write_all(self._rfd, records)
        _write_all(self._nfd, names)
        records.clear()
        names.clear()

    def _check_unsorted_name(self, name: bytes, text: str) -> None:
        """Like ZipLayout: binary search of the sorted prefix (on disk), then the unsorted rest
        (in memory: the few entries after the sorted ones, e.g. SHA256SUMS)."""
        lo, hi = 0, self._sorted_upto
        while lo < hi:
            mid = (lo + hi) // 2
            if self._name(mid) < name:
                lo = mid + 1
            else:
                hi = mid
        if (lo < self._sorted_upto and self._name(lo) == name) or name in self._unsorted:
            raise ValueError(f"duplicate archive name {text!r}")
        self._unsorted.add(name)

    # --- records ------------------------------------------------------------------------

    def _block(self, number: int) -> tuple[list, bytes, int]:
        """(records, their names, offset of the first name) of block `number`."""
        cached = self._cache
        if cached[0] == number:
            return cached[1], cached[2], cached[3]
        raw = os.pread(self._rfd, BLOCK * _RECORD.size, number * BLOCK * _RECORD.size)
        records = list(_RECORD.iter_unpack(raw))
        base = records[0][0] if records else 0
        last = records[-1] if records else None
        names = os.pread(self._nfd, last[0] + last[6] - base, base) if last else b""
        self._cache = (number, records, names, base)
        return records, names, base

    def _block_paths(self, number: int, records: list) -> list:
        """The opener's local path (or None) of every entry of block `number` (its `records`)."""
        first = number * BLOCK
        if self._paths_of is not None:
            return self._paths_of(first, [record[7] for record in records])
        key_of, path_of = self._key_of, self._path_of
        return [path_of(first + i, key_of(first + i, record[3])) for i, record in enumerate(records)]

    def _record(self, index: int) -> tuple:
        if not 0 <= index < self._count:
            raise IndexError(index)
        cached = self._cache
        if cached[0] == index // BLOCK:
            return cached[1][index % BLOCK]
        return _RECORD.unpack(os.pread(self._rfd, _RECORD.size, index * _RECORD.size))

    def _name(self, index: int) -> bytes:
        record = self._record(index)
        return os.pread(self._nfd, record[6], record[0])

    def _key_of(self, index: int, int_key: int) -> object:
        return self._odd_keys.get(index) if int_key == _KEY_MIN else int_key

    def _bisect(self, pos: int, field: int, base: int = 0) -> int:
        """The last index whose record `field` (+ base) is <= pos (0 when none)."""
        lo, hi = 0, self._count
        while lo < hi:
            mid = (lo + hi) // 2
            if base + self._record(mid)[field] <= pos:
                lo = mid + 1
            else:
                hi = mid
        return max(lo - 1, 0)

    # --- public -------------------------------------------------------------------------

    def close(self) -> None:
        self._records.close()
        self._names.close()

    def __len__(self) -> int:
        return self.size

    @property
    def entry_count(self) -> int:
        return self._count

    def entry(self, index: int) -> ZipEntry:
        _, _, size, key, _, crc, _, sha = self._record(index)
        return ZipEntry(name=self.name(index), size=size, crc32=crc, opener=self._openers.get(index),
                        data=self._data.get(index), key=self._key_of(index, key),
                        sha256="" if sha == NO_SHA else sha.hex())

    def key(self, index: int) -> object:
        return self._key_of(index, self._record(index)[3])

    def entry_crc32(self, index: int) -> int:
        return self._record(index)[5]

    def entry_sha256(self, index: int) -> bytes:
        """The raw SHA-256 the entry was given (32 zero bytes when none)."""
        return self._record(index)[7]

    def name(self, index: int) -> str:
        return self._name(index).decode("utf-8")

    @property
    def entries(self) -> list[ZipEntry]:
        return [self.entry(i) for i in range(self.entry_count)]

    @property
    def is_zip64(self) -> bool:
        return len(self._tail) > 22

    def entry_span(self, index: int) -> tuple[int, int]:
        data_offset, size = self.data_span(index)
        return self._record(index)[1], data_offset + size - 1

    def data_span(self, index: int) -> tuple[int, int]:
        _, offset, size, _, _, _, name_length, _ = self._record(index)
        return offset + _local_header_length(name_length, size), size

    def iter_records(self, first: int = 0, stop: int | None = None
                     ) -> Iterator[tuple[int, bytes, int, int, object, bytes]]:
        """(index, UTF-8 name, size, crc32, key, raw sha256) of entries first..stop-1, read
        a block at a time."""
        stop = self._count if stop is None else min(stop, self._count)
        index = first
        while index < stop:
            number = index // BLOCK
            records, names, base = self._block(number)
            for record in records[index - number * BLOCK : stop - number * BLOCK]:
                name_offset, _, size, key, _, crc, name_length, sha = record
                start = name_offset - base
                yield (index, names[start : start + name_length], size, crc,
                       self._odd_keys.get(index) if key == _KEY_MIN else key, sha)
                index += 1

    def int_keys(self, first: int, stop: int) -> array:
        """The int keys of entries first..stop-1 (others left out)."""
        keys = array("q")
        stop = min(stop, self._count)
        index = first
        while index < stop:
            number = index // BLOCK
            records = self._block(number)[0]
            for record in records[index - number * BLOCK : stop - number * BLOCK]:
                if record[3] != _KEY_MIN:
                    keys.append(record[3])
            index = (number + 1) * BLOCK
        return keys

    def __iter__(self) -> Iterator[bytes]:
        return self.iter_range(0, self.size - 1)

    def iter_range(self, start: int = 0, end: int | None = None, *, chunk_size: int = DEFAULT_CHUNK,
                   on_delivered: Callable[[ZipEntry], None] | None = None,
                   verify_crc: bool = True,
                   on_delivered_key: Callable[[object], None] | None = None,
                   on_delivered_range: Callable[[int, int], None] | None = None) -> Iterator[bytes]:
        """Bytes `start..end` (inclusive, clamped), as ZipLayout.iter_range. Delivered entries
        (their last byte yielded and taken) are also reported as `on_delivered_range(first,
        stop)`: the entries first..stop-1, in order, each once."""
        end = self.size - 1 if end is None else min(end, self.size - 1)
        if start > end:
            return
        if on_delivered_range is not None:
            report = on_delivered_range
        elif on_delivered_key is not None:
            def report(first, stop):
                for i in range(first, stop):
                    on_delivered_key(self.key(i))
        elif on_delivered is not None:
            def report(first, stop):
                for i in range(first, stop):
                    on_delivered(self.entry(i))
        else:
            report = None
        count = self._count
        index = self._bisect(start, 1) if count else 0
        confirmed = done = index  # entries confirmed / completed by the bytes produced so far
        pos = start
        # The chunk being gathered, as pieces joined once when it is full (one copy of each
        # byte; a bytearray copied them twice: appended, then made bytes).
        pieces: list[bytes] = []
        filled = 0
        dos_time, dos_date = self._dos_time, self._dos_date
        fast = self._path_of is not None or self._paths_of is not None
        special = self._data or self._openers
        small = min(SMALL_PIECE, chunk_size + 1)
        local_pack = struct.Struct("<IHHHHHIIIHH").pack  # zip_layout's _LOCAL
        central_pack = struct.Struct("<IHHHHHHIIIHHHHHII").pack  # zip_layout's _CENTRAL
        open_, read, close, rdonly = os.open, os.read, os.close, os.O_RDONLY
        # Entries: local header, then data.
        while index < count and pos <= end:
            number = index // BLOCK
            records, names, base = self._block(number)
            paths = None  # the local paths of this block's entries, asked when one is wanted
            for record in records[index - number * BLOCK :]:
                if pos > end:
                    break
                name_offset, offset, size, key, _, crc, name_length, _ = record
                data_offset = offset + 30 + name_length + (20 if size >= MAX32 else 0)
                entry_end = data_offset + size
                if pos >= entry_end:
                    index += 1
                    done = confirmed = index
                    continue
                name = names[name_offset - base : name_offset - base + name_length]
                path = None
                if (fast and pos == offset and entry_end <= end + 1 and size < small and name_length < 60000
                        and not (special and index in special)):
                    if paths is None:
                        paths = self._block_paths(number, records)
                    path = paths[index - number * BLOCK]
                if path is not None:
                    # The common case at a million files: the whole small entry, in one read.
                    if size:
                        try:
                            fd = open_(path, rdonly)
                            try:
                                data = read(fd, size)
                            finally:
                                close(fd)
                        except OSError:
                            data = b""
                        if len(data) != size or (verify_crc and crc32(data) != crc):
                            data = self._read_small(index, path, size, crc, verify_crc)  # raises why
                        pieces += (local_pack(0x04034B50, 20, 1 << 11, 0, dos_time, dos_date, crc, size, size,
                                              name_length, 0), name, data)
                        filled += 30 + name_length + size
                    else:
                        header = local_header(name, size, crc, dos_time, dos_date)
                        pieces.append(header)
                        filled += len(header)
                    pos = entry_end
                    index += 1
                    done = index
                    if filled >= chunk_size:
                        yield b"".join(pieces)
                        pieces.clear()
                        filled = 0
                        if report is not None and done > confirmed:
                            report(confirmed, done)
                        confirmed = done
                    continue
                for piece, completes in self._entry_pieces(index, record, name, pos, end, chunk_size,
                                                           verify_crc):
                    pos += len(piece)
                    if len(piece) >= SMALL_PIECE:
                        if pieces:
                            yield b"".join(pieces)
                            pieces.clear()
                            filled = 0
                            if report is not None and done > confirmed:
                                report(confirmed, done)
                            confirmed = done
                        yield piece
                        if completes:
                            done = index + 1
                        if report is not None and done > confirmed:
                            report(confirmed, done)
                        confirmed = done
                        continue
                    pieces.append(piece)
                    filled += len(piece)
                    if completes:
                        done = index + 1
                    if filled >= chunk_size:
                        yield b"".join(pieces)
                        pieces.clear()
                        filled = 0
                        if report is not None and done > confirmed:
                            report(confirmed, done)
                        confirmed = done
                index += 1
        # Central directory records, then the end records.
        cd_start = self.central_directory_offset
        tail_offset = cd_start + self.central_directory_size
        if pos <= end and pos < tail_offset:
            ci = self._bisect(pos, 4, cd_start)
            while ci < count and pos <= end:
                number = ci // BLOCK
                records, names, base = self._block(number)
                for record in records[ci - number * BLOCK :]:
                    if pos > end:
                        break
                    name_offset, offset, size, _, rec_start, crc, name_length, _ = record
                    name = names[name_offset - base : name_offset - base + name_length]
                    rec_start += cd_start
                    if (pos == rec_start and size < MAX32 and offset < MAX32
                            and rec_start + 46 + name_length <= end + 1):
                        # The common case, whole: central_record's bytes without a zip64 extra.
                        pieces += (central_pack(0x02014B50, 0x314, 20, 1 << 11, 0, dos_time, dos_date, crc,
                                                size, size, name_length, 0, 0, 0, 0, UNIX_FILE_ATTR, offset),
                                   name)
                        pos += 46 + name_length
                        filled += 46 + name_length
                    else:
                        central = central_record(name, size, crc, offset, dos_time, dos_date)
                        piece = central[pos - rec_start : min(end, rec_start + len(central) - 1) - rec_start + 1]
                        pos += len(piece)
                        pieces.append(piece)
                        filled += len(piece)
                    ci += 1
                    if filled >= chunk_size:
                        yield b"".join(pieces)
                        pieces.clear()
                        filled = 0
                        if report is not None and done > confirmed:
                            report(confirmed, done)
                        confirmed = done
        if pos <= end:
            pieces.append(self._tail[pos - tail_offset : end - tail_offset + 1])
        if pieces:
            yield b"".join(pieces)
            if report is not None and done > confirmed:
                report(confirmed, done)

    # --- internals ----------------------------------------------------------------------

    def _read_small(self, index: int, path: str, size: int, crc: int, verify_crc: bool) -> bytes:
        try:
            fd = os.open(path, os.O_RDONLY)
            try:
                data = os.read(fd, size)
                while len(data) < size:
                    more = os.read(fd, size - len(data))
                    if not more:
                        break
                    data += more
            finally:
                os.close(fd)
        except OSError as exc:
            raise ZipSourceError(self.entry(index), exc.strerror or str(exc)) from exc
        if len(data) < size:
            raise ZipSourceError(self.entry(index), "file is shorter than its recorded size")
        if verify_crc and crc32(data) & MAX32 != crc:
            raise ZipSourceError(self.entry(index), "content does not match its recorded CRC-32")
        return data

    def _entry_pieces(self, index: int, record: tuple, name: bytes, pos: int, end: int, chunk_size: int,
                      verify_crc: bool) -> Iterator[tuple[bytes, bool]]:
        """(bytes, whether they complete the entry) of entry `index` from `pos` (ZipLayout._pieces)."""
        _, offset, size, key, _, crc, _, _ = record
        header = local_header(name, size, crc, self._dos_time, self._dos_date)
        data_offset = offset + len(header)
        last_byte = data_offset + size - 1  # of the header when the entry is empty
        if pos < data_offset:
            piece = header[pos - offset : min(end, data_offset - 1) - offset + 1]
            pos += len(piece)
            yield piece, size == 0 and pos - 1 == last_byte
        if pos <= end and size > 0 and pos <= last_byte:
            stop = min(end, last_byte)
            for chunk, is_last in self._iter_data(index, self._key_of(index, key), size, crc,
                                                  pos - data_offset, stop - data_offset, chunk_size,
                                                  verify_crc):
                yield chunk, is_last and stop == last_byte

    def _open(self, index: int, key: object) -> BinaryIO:
        opener = self._openers.get(index)
        if opener is not None:
            return opener()
        if self._opener is None:
            raise FileNotFoundError(f"no source for {self.name(index)!r}")
        return self._opener(index, key)

    def _iter_data(self, index: int, key: object, size: int, expected_crc: int, first: int, last: int,
                   chunk_size: int, verify_crc: bool) -> Iterator[tuple[bytes, bool]]:
        return iter_entry_data(self._data.get(index), lambda: self._open(index, key), lambda: self.entry(index),
                               size, expected_crc, first, last, chunk_size, verify_crc)

