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


# Every element with its own text: its colour against the first opaque background behind it.
LOW_CONTRAST_JS = """() => {
  const rgb = s => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
                                    .reduce((acc, v, i) => acc + v * [0.2126, 0.7152, 0.0722][i], 0);
  const background = el => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.9)) { return c.slice(0, 3); }
    }
    return [255, 255, 255];
  };
  const bad = [];
  for (const el of document.querySelectorAll('body *')) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    const style = getComputedStyle(el);
    if (!own || style.visibility === 'hidden' || !el.getClientRects().length) { continue; }
    const [a, b] = [lum(rgb(style.color).slice(0, 3)), lum(background(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize), bold = +style.fontWeight >= 700;
    const needed = (size >= 24 || (bold && size >= 18.66)) ? 3 : 4.5;
    if (ratio < needed) { bad.push(`${el.tagName}.${el.className}: ${ratio.toFixed(2)} "${el.textContent.trim().slice(0, 30)}"`); }
  }
  return bad;
}"""
