"""Browser test helpers: a small catalog with real PNG previews, page checks."""
from __future__ import annotations

import io

from PIL import Image

from tests.catalog.factories import DataFileFactory, DataObjectFactory, DatasetFactory

PHONE = {"width": 390, "height": 844}


def png(size: int, colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(out, format="PNG")
    return out.getvalue()


def pictured_objects(project, *, count: int = 3, label: str = "Optical scenes"):
    """Objects with RAWDATA, a THUMBNAIL and a QUICKLOOK_SD (real PNGs)."""
    dataset = DatasetFactory(project=project, label=label)
    objects = []
    for i in range(count):
        obj = DataObjectFactory(dataset=dataset, label=f"Scene {i + 1} of a rather long pass name", tags=["clear"])
        DataFileFactory(data_object=obj, content=b"raw " * (100 + i), filename=f"scene_{i + 1}.tif")
        DataFileFactory(data_object=obj, data_type="THUMBNAIL", mime_type="image/png",
                        content=png(24, (40 * i % 256, 120, 200)), filename=f"scene_{i + 1}_thumb.png")
        DataFileFactory(data_object=obj, data_type="QUICKLOOK_SD", mime_type="image/png",
                        content=png(96, (40 * i % 256, 120, 200)), filename=f"scene_{i + 1}_ql.png")
        objects.append(obj)
    return objects


def horizontal_overflow(page) -> int:
    """How far the page scrolls sideways (0: not at all)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def tab_to(page, selector: str, limit: int = 60) -> None:
    """Presses Tab until the focused element matches `selector` (keyboard only)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")
