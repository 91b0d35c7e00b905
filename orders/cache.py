"""Where staged (restored NEARLINE) files of an order live: ORDER_CACHE_DIR/<project>/<order>/."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

from django.conf import settings

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def order_cache_dir(*, project_slug: str, order_id: int) -> Path:
    return Path(settings.ORDER_CACHE_DIR) / project_slug / str(order_id)


def order_file_cache_relpath(*, project_slug: str, order_id: int, order_file_id: int, filename: str) -> str:
    """Relative to ORDER_CACHE_DIR (what OrderDataFile.cache_path stores)."""
    safe = _UNSAFE.sub("_", filename)[:150] or "file"
    return f"{project_slug}/{order_id}/{order_file_id}_{safe}"


def order_file_cache_path(order_file) -> Path | None:
    """Absolute path of a staged NEARLINE file, None for files read from their tier directly."""
    if not order_file.cache_path:
        return None
    return Path(settings.ORDER_CACHE_DIR) / order_file.cache_path


def order_cache_free(*, project_slug: str, order_id: int) -> None:
    shutil.rmtree(order_cache_dir(project_slug=project_slug, order_id=order_id), ignore_errors=True)
