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
    header = {"v": MANIFEST_VERSION, "etag": plan.layout.etag, "created": plan.created.isoformat(),
              "count": plan.file_count,
              "failed": [[fid, filename, reason] for fid, (filename, reason) in sorted(plan.failed.items())]}
    yield (json.dumps(header) + "\n").encode("utf-8")
    body = plan.manifest_body
    body.seek(0)
    yield from iter(lambda: body.read(1 << 20), b"")


_ZERO_SHA = "0" * 64


def manifest_lines(files: list[tuple[str, int, int, int, str]]) -> bytes:
    """The manifest lines of these files of a zip, (name, size, crc32, id, sha256 hex or "")
    each (its layout entry), with the SHA-256 as the layout keeps it: lower-case hex, or ""
    when there is none (or it is zeros). The usual batch (every SHA-256 so already) is checked
    at once."""
    shas = "".join([entry[4] for entry in files])
    if len(shas) == 64 * len(files) and _ZERO_SHA not in shas and bytes.fromhex(shas).hex() == shas:
        lines = [f"{key}\t{size}\t{crc32}\t{sha}\t{name}\n" for name, size, crc32, key, sha in files]
    else:
        lines = [f"{key}\t{size}\t{crc32}\t{_layout_sha(sha)}\t{name}\n" for name, size, crc32, key, sha in files]
    return "".join(lines).encode("utf-8")


def _layout_sha(sha256: str) -> str:
    """The SHA-256 as SpooledZipLayout keeps it (32 bytes, NO_SHA when it is none), in hex."""
    raw = NO_SHA
    if len(sha256) == 64:
        try:
            raw = bytes.fromhex(sha256).ljust(32, b"\0")
        except ValueError:
            pass
    return "" if raw == NO_SHA else raw.hex()


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
    newest last; older ones are deleted. The lines of the files were written while the zip was
    planned (`plan.manifest_body`, see manifest_lines)."""
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


def manifest_rows(handle) -> Iterator[tuple[str, int, int, int, str]]:
    """(name, size, crc32, id, sha256 hex or "") of each file, in archive order."""
    for line in handle:
        file_id, size, crc32, sha256, name = line.rstrip("\n").split("\t", 4)
        yield name, int(size), int(crc32), int(file_id), sha256
