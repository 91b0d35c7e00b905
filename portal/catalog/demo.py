"""The demo catalog: a manifest of three datasets and a few thousand objects with real, small,
deterministic files of both tiers (TIFF/PNG/JPEG images made with Pillow, binary and text
data), written into a folder and loaded with the normal loader (so it is idempotent too)."""
from __future__ import annotations

import hashlib
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from PIL import Image, ImageDraw

OPTICAL_OBJECTS = 1200
RADAR_OBJECTS = 900
CLIMATE_OBJECTS = 900
QUICKLOOK_VARIANTS = 24
# Distinct payloads per dataset: objects share them (under their own file names), which keeps
# the build to a few hundred small files on disk.
RAW_VARIANTS = 100
EPOCH = datetime(2023, 1, 1, tzinfo=timezone.utc)


def _image(index: int, size: int, fmt: str) -> bytes:
    """A small gradient picture with a stripe pattern; the same index gives the same bytes."""
    hue = (index * 37) % 256
    img = Image.new("RGB", (size, size), ((hue * 3) % 256, (hue * 5) % 256, (hue * 7) % 256))
    draw = ImageDraw.Draw(img)
    for y in range(0, size, 4):
        shade = (hue + y * 8) % 256
        draw.line([(0, y), (size - 1, (y + index) % size)], fill=(shade, 255 - shade, (shade * 2) % 256))
    out = io.BytesIO()
    img.save(out, format=fmt, **({"quality": 80} if fmt == "JPEG" else {}))
    return out.getvalue()


def _noise(seed: str, size: int) -> bytes:
    """Deterministic pseudo-random bytes (a radar swath's payload)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def write_demo_manifest(folder: Path) -> Path:
    folder = Path(folder)
    files = folder / "files"
    files.mkdir(parents=True, exist_ok=True)

    written: set[str] = set()

    def put(name: str, make) -> str:
        """Writes a source file once; `make` builds its bytes (called only the first time)."""
        if name not in written:
            (files / name).write_bytes(make() if callable(make) else make)
            written.add(name)
        return f"files/{name}"

    quicklooks = [put(f"quicklook_{i:02d}.png", _image(i, 96, "PNG")) for i in range(QUICKLOOK_VARIANTS)]
    thumbnails = [put(f"thumbnail_{i:02d}.png", _image(i, 24, "PNG")) for i in range(QUICKLOOK_VARIANTS)]
    radar_looks = [put(f"radar_ql_{i:02d}.jpg", _image(i + 100, 64, "JPEG")) for i in range(QUICKLOOK_VARIANTS)]
    guide = put("product_guide.txt", b"Orderly demo archive\n\nProduct guide for the demo datasets.\n" * 20)

    optical = []
    for i in range(OPTICAL_OBJECTS):
        cloud = (i * 7919) % 101
        optical.append({
            "label": f"Optical scene {i:04d}",
            "creationDate": (EPOCH + timedelta(hours=7 * i)).isoformat().replace("+00:00", "Z"),
            "tags": ["optical", "cloudy" if cloud > 60 else "clear"] + (["night"] if i % 9 == 0 else []),
            "properties": {"instrument": ("OLI", "MSI", "HRV")[i % 3], "cloudCover": cloud,
                           "orbit": 10000 + i, "platform": ("SAT-A", "SAT-B")[i % 2]},
            "files": [
                {"dataType": "RAWDATA", "path": put(f"optical_{i % RAW_VARIANTS:03d}.tif",
                                                    lambda: _image(i % RAW_VARIANTS, 32, "TIFF")),
                 "filename": f"optical_scene_{i:04d}.tif",
                 "tier": "NEARLINE" if i % 5 == 0 else "ONLINE", "mimeType": "image/tiff"},
                {"dataType": "QUICKLOOK_SD", "path": quicklooks[i % QUICKLOOK_VARIANTS], "tier": "ONLINE"},
                {"dataType": "THUMBNAIL", "path": thumbnails[i % QUICKLOOK_VARIANTS], "tier": "ONLINE"},
            ],
        })

    radar = []
    for i in range(RADAR_OBJECTS):
        radar.append({
            "label": f"Radar swath {i:04d}",
            "creationDate": (EPOCH + timedelta(hours=9 * i + 3)).isoformat().replace("+00:00", "Z"),
            "tags": ["radar", ("ascending", "descending")[i % 2]],
            "properties": {"instrument": "SAR", "polarisation": ("VV", "VH", "HH")[i % 3],
                           "orbit": 20000 + i, "platform": "SAT-R"},
            "files": [
                {"dataType": "RAWDATA", "path": put(f"radar_{i % RAW_VARIANTS:03d}.dat",
                                                    lambda: _noise(f"radar-{i % RAW_VARIANTS}", 2048 + (i % 16) * 256)),
                 "filename": f"radar_swath_{i:04d}.dat",
                 "tier": "NEARLINE", "mimeType": "application/octet-stream"},
                {"dataType": "QUICKLOOK_MD", "path": radar_looks[i % QUICKLOOK_VARIANTS], "tier": "ONLINE"},
            ],
        })

    climate = []
    for i in range(CLIMATE_OBJECTS):
        variable = ("temperature", "precipitation", "wind")[i % 3]
        v = i % RAW_VARIANTS
        rows = "".join(f"{d},{variable},{(v * 31 + d * 17) % 400 / 10:.1f}\n" for d in range(40))
        climate.append({
            "label": f"Climate series {variable} {i:04d}",
            "creationDate": (EPOCH + timedelta(days=i // 3)).isoformat().replace("+00:00", "Z"),
            "tags": ["climate", variable],
            "properties": {"variable": variable, "station": f"ST{i % 50:03d}", "year": 2023 + (i % 2)},
            "files": [
                {"dataType": "RAWDATA", "path": put(f"climate_{variable}_{v:03d}.csv",
                                                    lambda: f"day,variable,value\n{rows}".encode()),
                 "filename": f"climate_{variable}_{i:04d}.csv",
                 "tier": "NEARLINE" if i % 4 == 0 else "ONLINE", "mimeType": "text/csv"},
                {"dataType": "DOCUMENT", "path": guide, "tier": "ONLINE", "mimeType": "text/plain"},
            ],
        })

    manifest = folder / "manifest.json"
    manifest.write_text(json.dumps({"datasets": [
        {"label": "Optical scenes", "properties": {"mission": "Demo optical"}, "objects": optical},
        {"label": "Radar swaths", "properties": {"mission": "Demo radar"}, "objects": radar},
        {"label": "Climate series", "properties": {"mission": "Demo climate"}, "objects": climate},
    ]}))
    return manifest
