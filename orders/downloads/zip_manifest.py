"""Manifests of order zips: which files a zip held, so a resumed download (Range) gets the
same bytes even after its files became DOWNLOADED."""
from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Iterator, TextIO

from portal.catalog.storage import ORDER_CACHE, Locator
from portal.tenancy.models import Project

from ..cache import order_cache_key
from ..models import Order

if TYPE_CHECKING:
    from .archive import OrderZip

MANIFEST_VERSION = 2
# A manifest is a line per file: a million-file order keeps at most this many (~100 MB each).
MANIFESTS_KEPT = 3
NO_SHA = bytes(32)


def manifest_dir(*, project: Project, order: Order) -> str:
    """The folder of an order's zip manifests, a key in the ORDER_CACHE area of `storage.Locator`
    (in the order cache, so freeing the order frees them; on object storage every node reads them)."""
    return f"{order_cache_key(project_slug=project.slug, order_id=order.pk)}/.zip-manifests"


def etag_key(etag: str) -> str:
    return "".join(c for c in etag if c.isalnum() or c == "-")[:80]


def _manifest_lines(plan: "OrderZip") -> Iterator[bytes]:
    layout = plan.layout
    header = {"v": MANIFEST_VERSION, "etag": layout.etag, "created": plan.created.isoformat(),
              "count": plan.file_count,
              "failed": [[fid, filename, reason] for fid, (filename, reason) in sorted(plan.failed.items())]}
    yield (json.dumps(header) + "\n").encode("utf-8")
    lines = []
    for _, name, size, crc32, key, raw in layout.iter_records(0, plan.file_count):
        lines.append(b"%d\t%d\t%d\t%s\t%s\n" % (key, size, crc32, b"" if raw == NO_SHA else raw.hex().encode(),
                                                name))
        if len(lines) >= 4096:
            yield b"".join(lines)
            lines.clear()
    yield b"".join(lines)


def _latest_keys(locator: Locator, folder: str) -> list[str]:
    try:
        with locator.open(ORDER_CACHE, f"{folder}/latest") as handle:
            return handle.read().decode("utf-8").split()
    except OSError:
        return []


def manifest_save(*, project: Project, order: Order, plan: "OrderZip") -> None:
    """Remembers which files a zip held, so a resumed download (Range) gets the same bytes
    even after its files became DOWNLOADED. A JSON header line, then one line per file in
    archive order (`id size crc32 sha256 name`, tab-separated: names hold no control
    characters), written whole as it is generated. `latest` lists the kept manifests, the
    newest last; older ones are deleted."""
    locator, folder = Locator(), manifest_dir(project=project, order=order)
    key = etag_key(plan.layout.etag)
    locator.write(ORDER_CACHE, f"{folder}/{key}.manifest", _manifest_lines(plan))
    kept = [k for k in _latest_keys(locator, folder) if k != key] + [key]
    locator.write(ORDER_CACHE, f"{folder}/latest", ["\n".join(kept[-MANIFESTS_KEPT:]).encode("utf-8")])
    for old in kept[:-MANIFESTS_KEPT]:
        locator.delete(ORDER_CACHE, f"{folder}/{old}.manifest")


def manifest_open(*, project: Project, order: Order, etag: str | None) -> TextIO | None:
    """The manifest of the zip served under `etag` (the latest one when None), as text lines."""
    locator, folder = Locator(), manifest_dir(project=project, order=order)
    if etag:
        key = etag_key(etag)
    else:
        keys = _latest_keys(locator, folder)
        if not keys:
            return None
        key = keys[-1]
    try:
        raw = locator.open(ORDER_CACHE, f"{folder}/{key}.manifest")
    except OSError:
        return None
    try:
        raw.peek(1)  # a missing manifest fails here on object storage (its first GET)
    except OSError:
        raw.close()
        return None
    return io.TextIOWrapper(raw, encoding="utf-8")


def manifest_rows(handle) -> Iterator[tuple[int, str, int, int, str]]:
    """(id, name, size, crc32, sha256 hex or "") of each file, in archive order."""
    for line in handle:
        file_id, size, crc32, sha256, name = line.rstrip("\n").split("\t", 4)
        yield int(file_id), name, int(size), int(crc32), sha256
