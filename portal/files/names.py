"""Unique-name rules of downloads: what a file may be called inside a zip, a metalink or a
delivery package, and how duplicates are renamed (the same everywhere)."""
from __future__ import annotations

import os
from typing import Iterable

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
    # Per name, the lowest counter that may still be free: every lower one is taken (taken
    # only grows), so 200,000 files called `image.tif` cost linear, not quadratic, time.
    next_counter: dict[str, int] = {}
    for name, key in duplicates:
        stem, ext = _split_extension(name)
        n = next_counter.get(name.casefold(), 1)
        while f"{stem} ({n}){ext}".casefold() in taken:
            n += 1
        next_counter[name.casefold()] = n + 1
        candidate = f"{stem} ({n}){ext}"
        taken.add(candidate.casefold())
        result[key] = candidate
    return result


def _sort_key(key: object):
    # Ids are ints; anything else sorts by its text after all ints.
    return (0, key, "") if isinstance(key, int) else (1, 0, str(key))
