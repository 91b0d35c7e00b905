"""Conversions of one file: image format and size (Pillow), gzip compression (any file).

A conversion is an ordered list of steps, each `{"type", "value"}` as the Content Hub API
writes them (SPEC section 3):

    {"type": "fileExtension", "value": "png" | "jpeg" | "webp" | "tiff"}   an image's format
    {"type": "resize", "value": {"width"?: n, "height"?: n}}             keeps the aspect ratio,
                                                                          never enlarges
    {"type": "compression", "value": "gzip"}                             any file; adds `.gz`

`conversion_validate` checks steps when an order is created (an `Invalid` naming the bad one);
`convert` runs them on a file on disk and writes the result (a `ConversionFailed` when the
file cannot take them, e.g. a resize of a non-image). `convert` touches no database, so the
preparation may run many at once in threads (Pillow releases the GIL while it decodes,
resizes and encodes; zlib while it compresses).
"""
from __future__ import annotations

import gzip
import io
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from portal.catalog import storage
from portal.errors import Invalid

FILE_EXTENSION, RESIZE, COMPRESSION = "fileExtension", "resize", "compression"
STEP_TYPES = (FILE_EXTENSION, RESIZE, COMPRESSION)
# Format name -> (Pillow format, file extension, mime type).
IMAGE_FORMATS = {
    "png": ("PNG", ".png", "image/png"),
    "jpeg": ("JPEG", ".jpg", "image/jpeg"),
    "webp": ("WEBP", ".webp", "image/webp"),
    "tiff": ("TIFF", ".tiff", "image/tiff"),
}
FORMAT_ALIASES = {"jpg": "jpeg", "tif": "tiff"}
COMPRESSIONS = ("gzip",)
MAX_DIMENSION = 65535
JPEG_QUALITY = 90


class ConversionInvalid(Invalid):
    """A conversion step the portal does not know, or a value it cannot take."""

    default_code = "UNKNOWN_CONVERSION"


class ConversionFailed(Exception):
    """A valid conversion that this file cannot take; `reason` says why (goes to the NOTICE)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Converted:
    """What `convert` wrote: the new name, mime type and the digests of the bytes."""

    filename: str
    mime_type: str
    digests: storage.Digests
    path: Path


# --- validation (at creation) ----------------------------------------------------------------

def _positive_dimension(name: str, value) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DIMENSION:
        raise ConversionInvalid(message=f"resize {name} must be a whole number of pixels from 1 to {MAX_DIMENSION}, "
                                        f"not {value!r}")
    return value


def step_validate(step) -> dict:
    """One step in its normal form, or `ConversionInvalid` naming what is wrong."""
    if not isinstance(step, dict) or "type" not in step:
        raise ConversionInvalid(message=f"a conversion step is an object with `type` and `value`, not {step!r}")
    kind, value = step.get("type"), step.get("value")
    if kind == FILE_EXTENSION:
        name = FORMAT_ALIASES.get(str(value).lower(), str(value).lower()) if isinstance(value, str) else None
        if name not in IMAGE_FORMATS:
            raise ConversionInvalid(message=f"unknown conversion fileExtension {value!r}: one of "
                                            f"{', '.join(IMAGE_FORMATS)}", conversion=f"{kind}:{value}")
        return {"type": kind, "value": name}
    if kind == RESIZE:
        if not isinstance(value, dict) or not set(value) <= {"width", "height"}:
            raise ConversionInvalid(message=f"conversion resize takes {{\"width\"?, \"height\"?}}, not {value!r}",
                                    conversion=kind)
        width, height = _positive_dimension("width", value.get("width")), _positive_dimension("height",
                                                                                            value.get("height"))
        if width is None and height is None:
            raise ConversionInvalid(message="conversion resize needs a width or a height", conversion=kind)
        return {"type": kind, "value": {k: v for k, v in (("width", width), ("height", height)) if v is not None}}
    if kind == COMPRESSION:
        if value not in COMPRESSIONS:
            raise ConversionInvalid(message=f"unknown conversion compression {value!r}: one of "
                                            f"{', '.join(COMPRESSIONS)}", conversion=f"{kind}:{value}")
        return {"type": kind, "value": value}
    raise ConversionInvalid(message=f"unknown conversion {kind!r}: one of {', '.join(STEP_TYPES)}",
                            conversion=str(kind))


def conversion_validate(steps) -> list[dict]:
    """A conversion (a non-empty list of steps) in its normal form. Image steps after a
    compression would work on compressed bytes: refused."""
    if not isinstance(steps, list) or not steps:
        raise ConversionInvalid(message=f"a conversion is a non-empty list of steps, not {steps!r}")
    normal = [step_validate(step) for step in steps]
    compressed = False
    for step in normal:
        if step["type"] == COMPRESSION:
            compressed = True
        elif compressed:
            raise ConversionInvalid(message=f"conversion {step['type']} cannot follow a compression",
                                    conversion=step["type"])
    return normal


def converted_name(filename: str, steps: list[dict]) -> str:
    """The name a file gets from validated steps: a format's extension, `.gz` for gzip."""
    for step in steps:
        if step["type"] == FILE_EXTENSION:
            filename = os.path.splitext(filename)[0] + IMAGE_FORMATS[step["value"]][1]
        elif step["type"] == COMPRESSION:
            filename += ".gz"
    return filename


# --- running -----------------------------------------------------------------------------------

def _resized(image: Image.Image, width: int | None, height: int | None) -> Image.Image:
    """Fits the image in width x height (either may be open), keeping its aspect ratio; never
    enlarges."""
    w, h = image.size
    scale = min(width / w if width else 1.0, height / h if height else 1.0, 1.0)
    if scale >= 1.0:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if image.mode not in ("RGB", "RGBA", "L", "LA", "I", "F", "I;16"):
        image = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _for_format(image: Image.Image, pil_format: str) -> Image.Image:
    if pil_format == "JPEG" and image.mode not in ("RGB", "L", "CMYK"):
        if image.mode in ("RGBA", "LA", "P", "PA") or "transparency" in image.info:
            rgba = image.convert("RGBA")
            background = Image.new("RGB", rgba.size, (255, 255, 255))
            background.paste(rgba, mask=rgba.getchannel("A"))  # transparent -> white, as viewers show it
            return background
        return image.convert("RGB")
    if pil_format in ("PNG", "WEBP") and image.mode in ("CMYK", "I;16", "F", "YCbCr"):
        return image.convert("RGB")
    return image


def _opened(source: "Path | bytes"):
    return io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else open(source, "rb")


def _image_steps(source: "Path | bytes", steps: list[dict], filename: str, out) -> tuple[str, str]:
    """Opens the image, applies the format and size steps, encodes into `out`."""
    try:
        image = Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source)
        image.load()
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as exc:
        raise ConversionFailed(f"not an image Pillow can read ({type(exc).__name__})") from None
    pil_format = image.format or "PNG"
    stem, extension = os.path.splitext(filename)
    mime_type = Image.MIME.get(pil_format, "application/octet-stream")
    for step in steps:
        if step["type"] == RESIZE:
            image = _resized(image, step["value"].get("width"), step["value"].get("height"))
        else:
            pil_format, extension, mime_type = IMAGE_FORMATS[step["value"]]
    options = {"quality": JPEG_QUALITY} if pil_format in ("JPEG", "WEBP") else {}
    try:
        _for_format(image, pil_format).save(out, format=pil_format, **options)
    except (OSError, ValueError, KeyError) as exc:
        raise ConversionFailed(f"cannot be written as {pil_format} ({exc})") from None
    return stem + extension, mime_type


def _write(source: "Path | bytes", image_steps: list[dict], filename: str, mime_type: str, out) -> tuple[str, str]:
    if image_steps:
        return _image_steps(source, image_steps, filename, out)
    with _opened(source) as src:
        shutil.copyfileobj(src, out, storage.CHUNK_SIZE)
    return filename, mime_type


def convert(*, source: "Path | bytes", filename: str, mime_type: str, steps: list[dict], target_dir: Path) -> Converted:
    """Applies `steps` (validated) to the file at `source` (a path, or the bytes); writes the result into `target_dir`
    under a temporary name (`Converted.path`, the caller renames it) and returns its new
    filename, mime type and digests. Raises ConversionFailed when the file cannot take them."""
    image_steps = [s for s in steps if s["type"] in (FILE_EXTENSION, RESIZE)]
    gzip_it = any(s["type"] == COMPRESSION for s in steps)
    tmp = target_dir / f".convert-{uuid.uuid4().hex}"
    try:
        with open(tmp, "wb") as raw:
            if gzip_it:
                # mtime=0 and no name in the header: the same input always gives the same bytes.
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as out:
                    filename, mime_type = _write(source, image_steps, filename, mime_type, out)
                filename, mime_type = filename + ".gz", "application/gzip"
            else:
                filename, mime_type = _write(source, image_steps, filename, mime_type, raw)
        digests = storage.file_digests(tmp)
        final = target_dir / f".converted-{uuid.uuid4().hex}"
        os.replace(tmp, final)
        return Converted(filename=filename, mime_type=mime_type, digests=digests, path=final)
    finally:
        tmp.unlink(missing_ok=True)
