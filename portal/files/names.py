"""Unique-name rules of downloads: what a file may be called inside a zip, a metalink or a
delivery package, and how duplicates are renamed (the same everywhere)."""
from __future__ import annotations

import operator
import os
import re
import tempfile
from array import array
from bisect import bisect_left
from typing import Callable, Iterable

_FORBIDDEN = {ord(c): "_" for c in '/\\'} | {i: None for i in range(32)} | {127: None}
_COMPOUND_EXTENSIONS = (".tar.gz", ".tar.bz2", ".tar.xz", ".tar.zst")


_UNSAFE = re.compile(r"[/\\\x00-\x1f\x7f]|^\s|\s$|^\.{0,2}$")


def sanitize_filename(name: str) -> str:
    """A single path component: no separators, no control characters, never empty or a dot name."""
    if name and _UNSAFE.search(name) is None:  # the usual name, at a million files: one regex scan
        return name
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


def unique_names(items: Iterable[tuple[object, str]], reserved: Iterable[str] = (),
                 taken: Callable[[str], bool] | None = None) -> dict[object, str]:
    """Deterministic unique names: `{key: name}` for `(key, filename)` pairs.

    Names are compared case-insensitively (a download to Windows or macOS must not overwrite
    one file with another). Every distinct name keeps its spelling for the lowest key; later
    duplicates get ` (1)`, ` (2)`... before their extension, skipping names already taken.
    The result depends only on the pairs, never on their order. `taken(folded_name)` says
    whether a name outside `items` is taken too (see UniqueNames).
    """
    ordered = sorted(((sanitize_filename(name), key) for key, name in items),
                     key=lambda pair: (pair[0].casefold(), _sort_key(pair[1]), pair[0]))
    outside = taken
    taken = {sanitize_filename(name).casefold() for name in reserved}
    result: dict[object, str] = {}
    duplicates: list[tuple[str, object]] = []
    for name, key in ordered:
        if name.casefold() in taken:
            duplicates.append((name, key))
        else:
            taken.add(name.casefold())
            result[key] = name
    # Per name, the lowest counter that may still be free: every lower one is taken (taken
    # only grows), so 200,000 files called `image.tif` cost linear, not quadratic, time.
    next_counter: dict[str, int] = {}
    for name, key in duplicates:
        stem, ext = _split_extension(name)
        n = next_counter.get(name.casefold(), 1)
        while f"{stem} ({n}){ext}".casefold() in taken or (
                outside is not None and outside(f"{stem} ({n}){ext}".casefold())):
            n += 1
        next_counter[name.casefold()] = n + 1
        candidate = f"{stem} ({n}){ext}"
        taken.add(candidate.casefold())
        result[key] = candidate
    return result


def _sort_key(key: object):
    # Ids are ints; anything else sorts by its text after all ints.
    return (0, key, "") if isinstance(key, int) else (1, 0, str(key))


class UniqueNames:
    """The names `unique_names` gives, for inputs too big to hold as a dict (a million files).

    `pairs()` returns a fresh iterable of the same `(key, filename)` pairs each time it is
    called (it is read twice: e.g. a query). What is kept is 8 bytes per file (a hash of each
    folded name, sorted in 256 buckets) plus the names of the files that share a folded name
    with another or a reserved one (the only ones that can be renamed). `name(key, filename)`
    gives a file's name. Equal to `unique_names` except when two different folded names hash
    alike in a 64-bit hash and one is a renamed duplicate's candidate (the counter then skips
    one number): never a duplicate name.
    """

    def __init__(self, pairs, reserved: Iterable[str] = ()):
        reserved = list(reserved)
        reserved_hashes = {hash(sanitize_filename(name).casefold()) for name in reserved}
        buckets = [array("q") for _ in range(256)]
        self._sanitized: set = set()  # keys whose filename is not a safe name as it is
        reserved_seen = False
        for key, name in pairs():
            safe = sanitize_filename(name)
            if safe != name:
                self._sanitized.add(key)
            h = hash(safe.casefold())
            buckets[h & 0xFF].append(h)
            if h in reserved_hashes:
                reserved_seen = True
        repeated: set[int] = set()
        for index, bucket in enumerate(buckets):
            ordered = sorted(bucket)
            repeated.update(a for a, b in zip(ordered, ordered[1:]) if a == b)
            buckets[index] = array("q", ordered)
        self._buckets = buckets
        suspects = repeated | reserved_hashes
        # No name shared nor reserved (the usual order): nothing to rename, no second pass.
        chosen = [(key, name) for key, name in pairs() if hash(sanitize_filename(name).casefold()) in suspects
                  ] if repeated or reserved_seen else []
        self._renamed = unique_names(chosen, reserved=reserved, taken=self._is_taken)

    def _is_taken(self, folded: str) -> bool:
        h = hash(folded)
        bucket = self._buckets[h & 0xFF]
        i = bisect_left(bucket, h)
        return i < len(bucket) and bucket[i] == h

    def changed_keys(self) -> set:
        """The keys whose `name` may differ from their filename (renamed or sanitized): every
        other file is called by its filename, so files sorted by filename are sorted by name."""
        return self._sanitized | set(self._renamed)

    def name(self, key: object, filename: str) -> str:
        renamed = self._renamed.get(key)
        return renamed if renamed is not None else sanitize_filename(filename)


# _UNSAFE for names joined between "/"s (none holds one): a control character or backslash
# anywhere; a space after or before a "/" (a name's start or end); an empty, "." or ".." name.
_UNSAFE_JOINED = re.compile(r"/(?:\s|\.{0,2}/)|\s/")
_UNSAFE_CHARACTER = re.compile(r"[\\\x00-\x1f\x7f]")
# The first hash above bucket `top` (by the top byte of a signed 64-bit hash).
_BUCKET_BOUNDS = [-(1 << 63) + ((top + 1) << 56) for top in range(256)]


class NamesOutOfOrder(Exception):
    """Names that should come in code-point order (sorted by the database) did not: a
    collation surprise."""


class NamesNotDistinct(Exception):
    """A name is not its own unique name (to sanitize, reserved, or alike another's)."""


# DistinctNames keeps this many hashes (512 KiB) in memory; more go to its temporary file.
SPILL_HASHES = 65536


class DistinctNames:
    """Whether every name given is its own unique name, the usual order's case: safe as it is
    (sanitize_filename leaves it) and the same case-insensitively as no other name nor a
    reserved one. Then UniqueNames and unique_names give every name as it is: nothing needs
    renaming. Kept: a hash of each folded name (8 bytes, in 256 buckets), in memory up to
    SPILL_HASHES of them, the rest in an anonymous temporary file (in `temp_dir`): at a
    million names, half a megabyte in memory instead of eight. Call `close()` when done.

    `add(names)` takes a batch of names (a few thousand) and is False when one of them is not
    safe as it is, is a reserved name, or is alike another of the batch (the caller stops
    there); `distinct()` says, once every name was added, whether no two folded names of
    different batches are alike (two different names whose 64-bit hashes collide say "not
    distinct": never a false yes). The work per name is done by C loops (a regex over the
    joined batch, a sort of its hashes), not Python ones.
    """

    def __init__(self, reserved: Iterable[str] = (), temp_dir: str | None = None):
        self._reserved = {sanitize_filename(name).casefold() for name in reserved}
        self._buckets = [array("q") for _ in range(256)]  # by the hash's top byte
        self._held = 0  # hashes in the buckets
        # Spilled runs: the 256 buckets one after another; where each bucket starts, per run.
        self._spill, self._temp_dir = None, temp_dir
        self._run_starts: list[array] = []
        self._last = ""  # of add_in_order: below every name but the empty one, which is sanitized

    def add_in_order(self, names: list[str]) -> None:
        """add() of a batch that continues the previous ones in strictly increasing code-point
        order (rows sorted by name): NamesNotDistinct when a name equals the one before it or
        add() is False, NamesOutOfOrder when a name sorts before the one before it."""
        if not names:
            return
        # Strictly increasing (C loops): else two are equal (renamed) or out of order.
        if not (self._last < names[0] and all(map(operator.lt, names, names[1:]))):
            for before, after in zip([self._last, *names], names):
                if after <= before:
                    raise (NamesNotDistinct if after == before else NamesOutOfOrder)(after)
        self._last = names[-1]
        if not self.add(names):
            raise NamesNotDistinct()

    def add(self, names: list[str]) -> bool:
        if not names:
            return True
        # Joined between "/"s (which no safe name holds: their count says so), the names are
        # safe when neither regex finds anything (_UNSAFE with "/" for a name's start and end).
        joined = f"/{'/'.join(names)}/"
        if joined.count("/") != len(names) + 1 or _UNSAFE_CHARACTER.search(joined) is not None:
            return False
        if joined.isascii():  # then the only space that is no control character is " "
            if "/ " in joined or " /" in joined or "//" in joined or "/./" in joined or "/../" in joined:
                return False
        elif _UNSAFE_JOINED.search(joined) is not None:
            return False
        folded = list(map(str.casefold, names))
        if not self._reserved.isdisjoint(folded):
            return False
        hashes = sorted(map(hash, folded))
        if len(set(hashes)) != len(hashes):  # two alike in the batch: known now, not at the end
            return False
        # Sorted, each bucket's share is one slice (the top byte of a signed 64-bit hash).
        start = 0
        for top, bucket in enumerate(self._buckets):
            end = bisect_left(hashes, _BUCKET_BOUNDS[top], start)
            if end > start:
                bucket.extend(hashes[start:end])
                if end == len(hashes):
                    break
                start = end
        self._held += len(hashes)
        if self._held >= SPILL_HASHES:
            self._spill_run()
        return True

    def _spill_run(self) -> None:
        if self._spill is None:
            self._spill = tempfile.TemporaryFile(dir=self._temp_dir)
        starts = array("q", [self._spill.seek(0, os.SEEK_END)])
        for index, bucket in enumerate(self._buckets):
            bucket.tofile(self._spill)
            starts.append(starts[-1] + len(bucket) * bucket.itemsize)
            self._buckets[index] = array("q")
        self._spill.flush()  # read back with pread
        self._run_starts.append(starts)
        self._held = 0

    def distinct(self) -> bool:
        """No two names of different batches alike (each bucket with its spilled runs' share)."""
        for index, bucket in enumerate(self._buckets):
            hashes = array("q", bucket)
            for starts in self._run_starts:
                size = starts[index + 1] - starts[index]
                if size:
                    hashes.frombytes(os.pread(self._spill.fileno(), size, starts[index]))
            if len(set(hashes)) != len(hashes):
                return False
        return True

    def close(self) -> None:
        if self._spill is not None:
            self._spill.close()
            self._spill = None
