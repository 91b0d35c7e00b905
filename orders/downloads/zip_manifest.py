"""Manifests of order zips: which files a zip held, so a resumed download (Range) gets the
same bytes even after its files became DOWNLOADED."""
from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from portal.tenancy.models import Project

from ..cache import order_cache_dir
from ..models import Order

if TYPE_CHECKING:
    from .archive import OrderZip

MANIFEST_VERSION = 2
MANIFESTS_KEPT = 10
NO_SHA = bytes(32)


def manifest_dir(*, project: Project, order: Order) -> Path:
    return order_cache_dir(project_slug=project.slug, order_id=order.pk) / ".zip-manifests"


def etag_key(etag: str) -> str:
    return "".join(c for c in etag if c.isalnum() or c == "-")[:80]


def manifest_save(*, project: Project, order: Order, plan: "OrderZip") -> None:
    """Remembers which files a zip held, so a resumed download (Range) gets the same bytes
    even after its files became DOWNLOADED. A JSON header line, then one line per file in
    archive order (`id size crc32 sha256 name`, tab-separated: names hold no control
    characters), written as it goes to a temp name and renamed."""
    folder = manifest_dir(project=project, order=order)
    folder.mkdir(parents=True, exist_ok=True)
    layout, shas = plan.layout, plan.sources.shas
    header = {"v": MANIFEST_VERSION, "etag": layout.etag, "created": plan.created.isoformat(),
              "count": plan.file_count,
              "failed": [[fid, filename, reason] for fid, (filename, reason) in sorted(plan.failed.items())]}
    key = etag_key(layout.etag)
    tmp = folder / f".{key}.{uuid.uuid4().hex}"
    with open(tmp, "w", encoding="utf-8") as out:
        out.write(json.dumps(header) + "\n")
        lines = []
        for i in range(plan.file_count):
            raw = shas[32 * i : 32 * i + 32]
            _, size = layout.data_span(i)
            lines.append(f"{layout.key(i)}\t{size}\t{layout.entry_crc32(i)}\t"
                         f"{'' if raw == NO_SHA else raw.hex()}\t{layout.name(i)}\n")
            if len(lines) >= 1000:
                out.write("".join(lines))
                lines.clear()
        out.write("".join(lines))
    os.replace(tmp, folder / f"{key}.manifest")
    latest = folder / f".latest.{uuid.uuid4().hex}"
    latest.write_text(key)
    os.replace(latest, folder / "latest")
    manifests = sorted(folder.glob("*.manifest"), key=lambda p: p.stat().st_mtime)
    for old in manifests[:-MANIFESTS_KEPT]:
        old.unlink(missing_ok=True)


def manifest_rows(handle) -> Iterator[tuple[int, str, int, int, bytes]]:
    for line in handle:
        file_id, size, crc32, sha256, name = line.rstrip("\n").split("\t", 4)
        yield int(file_id), name, int(size), int(crc32), bytes.fromhex(sha256) if sha256 else NO_SHA
