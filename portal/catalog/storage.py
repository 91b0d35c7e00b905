"""The two storage tiers of catalog files, behind one small interface.

Where a file's bytes live: a `DataFile`'s `location` is a key relative to its tier's root,
`<project slug>/<sha256[:2]>/<sha256>` (content-addressed, so loading the same bytes twice
stores them once):

- ONLINE:   `settings.ONLINE_STORAGE_DIR / location` on local disk (the default), or the
            object `location` in the bucket named by `ORDERLY_ONLINE_STORAGE_URL`
            (`s3://bucket/prefix?endpoint_url=...`, needs `pip install django-storages[s3]`).
- NEARLINE: `settings.NEARLINE_STORAGE_DIR / location`, never read directly: it is restored
            (slowly, and possibly failing) into a target path with `restore_nearline`.

Reading goes through ONE door, `Locator` (open, size, ranged read, exists, delete), for the
tiers and for the caches that hold copies (restored NEARLINE files of orders, prepared
deliveries): it is where object storage plugs in. `open_online(file)` reads an ONLINE file;
`restore_nearline(file, target)` copies a file into a cache; `file_digests(path)` gives size,
CRC-32, MD5 and SHA-256 in one streaming pass.
"""
from __future__ import annotations

import functools
import hashlib
import os
import shutil
import time
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator
from urllib.parse import parse_qs, urlparse

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from portal.files.ranges import read_range

from .models import StorageTier

CHUNK_SIZE = 1024 * 1024


class StorageError(RuntimeError):
    pass


class NotOnline(StorageError):
    """A NEARLINE file was asked to be read directly: it must be restored first."""


class RestoreFailed(StorageError):
    """A nearline restore did not produce the file. `reason` says why, for users and logs."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


# --- digests ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Digests:
    size: int
    crc32: int
    md5: str
    sha256: str

    def __iter__(self):
        return iter((self.size, self.crc32, self.md5, self.sha256))


class _Hasher:
    def __init__(self):
        self.size, self.crc, self.md5, self.sha = 0, 0, hashlib.md5(usedforsecurity=False), hashlib.sha256()

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self.crc = zlib.crc32(chunk, self.crc)
        self.md5.update(chunk)
        self.sha.update(chunk)

    def digests(self) -> Digests:
        return Digests(self.size, self.crc & 0xFFFFFFFF, self.md5.hexdigest(), self.sha.hexdigest())


def stream_digests(chunks: Iterable[bytes]) -> Digests:
    hasher = _Hasher()
    for chunk in chunks:
        hasher.update(chunk)
    return hasher.digests()


def file_digests(path) -> Digests:
    """(size, crc32, md5, sha256) of a file, reading it once in 1 MiB chunks."""
    with open(path, "rb") as fh:
        return stream_digests(iter(lambda: fh.read(CHUNK_SIZE), b""))


def bytes_digests(data: bytes) -> Digests:
    return stream_digests([data])


# --- layout -------------------------------------------------------------------------------

# Areas beside the tiers: caches holding copies, keyed relative to their own roots.
ORDER_CACHE = "ORDER_CACHE"        # restored NEARLINE files of orders (`OrderDataFile.cache_path`)
DELIVERY_CACHE = "DELIVERY_CACHE"  # prepared delivery packages

_ROOT_SETTINGS = {StorageTier.ONLINE: "ONLINE_STORAGE_DIR", StorageTier.NEARLINE: "NEARLINE_STORAGE_DIR",
                  ORDER_CACHE: "ORDER_CACHE_DIR", DELIVERY_CACHE: "DELIVERY_CACHE_DIR"}


def tier_root(tier: str) -> Path:
    """The local root of a tier or cache area."""
    name = _ROOT_SETTINGS.get(tier)
    if name is None:
        raise StorageError(f"unknown storage tier {tier!r}")
    return Path(getattr(settings, name))


def location_for(*, project_slug: str, sha256: str) -> str:
    return f"{project_slug}/{sha256[:2]}/{sha256}"


@functools.lru_cache(maxsize=16)
def _resolved_root(root: str) -> Path:
    # Keyed by the configured text, so tests that change the setting get a fresh answer.
    return Path(root).resolve()


def local_path(*, tier: str, location: str) -> Path:
    root = _resolved_root(str(tier_root(tier)))
    path = (root / location).resolve()
    if not path.is_relative_to(root) or path == root:
        raise StorageError(f"location {location!r} escapes the {tier} storage root")
    return path


def data_file_path(data_file) -> Path:
    """Local path of a file's bytes in its tier (ONLINE on S3 has none: use `open_online`)."""
    return local_path(tier=data_file.tier, location=data_file.location)


# --- optional S3-compatible ONLINE tier ---------------------------------------------------

_s3_storage = None


def online_object_storage():
    """The django-storages S3 backend when ORDERLY_ONLINE_STORAGE_URL is set, else None."""
    global _s3_storage
    url = getattr(settings, "ONLINE_STORAGE_URL", "")
    if not url:
        return None
    if _s3_storage is None:
        try:
            from storages.backends.s3 import S3Storage
        except ImportError as exc:  # pragma: no cover - optional dependency
            raise ImproperlyConfigured(
                "ORDERLY_ONLINE_STORAGE_URL needs django-storages[s3] (pip install 'django-storages[s3]')"
            ) from exc
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ImproperlyConfigured("ORDERLY_ONLINE_STORAGE_URL must look like s3://bucket/prefix")
        options = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        _s3_storage = S3Storage(bucket_name=parsed.netloc, location=parsed.path.strip("/"),
                                file_overwrite=True, **options)
    return _s3_storage


# --- the one door to bytes -----------------------------------------------------------------

class Locator:
    """Where stored bytes are, and the only way to read them: `open`, `size`, `read_range`,
    `exists`, `delete` of a key (a location relative to its area's root) in an area (a tier,
    ORDER_CACHE or DELIVERY_CACHE).

    Roots are resolved once per locator and keys checked lexically against them (resolving
    every path cost more than the rest of planning a zip of small files). ONLINE keys go to
    the object storage when ORDERLY_ONLINE_STORAGE_URL is set.
    """

    def __init__(self):
        self._roots: dict[str, str] = {}
        self._s3 = online_object_storage()

    def _object_storage(self, area: str):
        return self._s3 if area == StorageTier.ONLINE else None

    def is_local(self, area: str) -> bool:
        return self._object_storage(area) is None

    def root(self, area: str) -> str:
        root = self._roots.get(area)
        if root is None:
            root = self._roots[area] = str(_resolved_root(str(tier_root(area))))
        return root

    def path(self, area: str, key: str) -> str:
        """The local path of a key (StorageError when it escapes its root)."""
        root = self.root(area)
        path = os.path.normpath(os.path.join(root, key))
        if not path.startswith(root + os.sep):
            raise StorageError(f"location {key!r} escapes the {area} storage root")
        return path

    def open(self, area: str, key: str) -> BinaryIO:
        """A binary file object on the bytes (the caller closes it); OSError when missing."""
        s3 = self._object_storage(area)
        if s3 is not None:  # pragma: no cover - S3 deployments
            return s3.open(key, "rb")
        return open(self.path(area, key), "rb")

    def size(self, area: str, key: str) -> int:
        """Bytes stored under the key; OSError when missing."""
        s3 = self._object_storage(area)
        if s3 is not None:  # pragma: no cover
            return s3.size(key)
        return os.stat(self.path(area, key)).st_size

    def exists(self, area: str, key: str) -> bool:
        s3 = self._object_storage(area)
        if s3 is not None:  # pragma: no cover
            return s3.exists(key)
        try:
            return os.path.exists(self.path(area, key))
        except StorageError:
            return False

    def read_range(self, area: str, key: str, start: int, length: int,
                   chunk_size: int = 256 * 1024) -> Iterator[bytes]:
        """`length` bytes from `start`, in chunks (ShortRead when the stored file is shorter)."""
        return read_range(self.open(area, key), start, length, chunk_size)

    def delete(self, area: str, key: str) -> None:
        """Removes a file or a whole folder (a cache of an order or a delivery); harmless when gone."""
        s3 = self._object_storage(area)
        if s3 is not None:  # pragma: no cover
            s3.delete(key)
            return
        path = self.path(area, key)
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def problem(self, area: str, key: str, size: int, *, missing: str) -> str | None:
        """None when the bytes are there with the expected size, else why not (one `stat`)."""
        if not self.is_local(area):  # pragma: no cover - S3 deployments: checked when read
            return None
        try:
            actual = self.size(area, key)
        except StorageError as exc:
            return str(exc)
        except OSError:
            return missing
        if actual != size:
            return f"stored size {actual} differs from the expected {size} bytes"
        return None


# --- writing ------------------------------------------------------------------------------

def _write_atomically(target: Path, chunks: Iterable[bytes]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.part-{uuid.uuid4().hex}")
    try:
        with open(tmp, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def store_file(*, tier: str, location: str, source, size: int | None = None) -> None:
    """Puts the bytes of `source` (a path or bytes) at `location` in `tier`.

    Content-addressed locations make this idempotent: an existing file of the right size is kept.
    """
    data = source if isinstance(source, (bytes, bytearray)) else None
    s3 = online_object_storage() if tier == StorageTier.ONLINE else None
    if s3 is not None:  # pragma: no cover - exercised only against real object storage
        from django.core.files.base import ContentFile, File

        if s3.exists(location) and (size is None or s3.size(location) == size):
            return
        if data is not None:
            s3.save(location, ContentFile(bytes(data)))
        else:
            with open(source, "rb") as fh:
                s3.save(location, File(fh))
        return
    target = local_path(tier=tier, location=location)
    if target.exists() and size is not None and target.stat().st_size == size:
        return
    if data is not None:
        _write_atomically(target, [bytes(data)])
    else:
        with open(source, "rb") as fh:
            _write_atomically(target, iter(lambda: fh.read(CHUNK_SIZE), b""))


# --- reading ------------------------------------------------------------------------------

def open_online(data_file) -> BinaryIO:
    """A binary file object on an ONLINE file's bytes (the caller closes it)."""
    if data_file.tier != StorageTier.ONLINE:
        raise NotOnline(f"{data_file.filename} is on the {data_file.tier} tier: restore it first")
    return Locator().open(StorageTier.ONLINE, data_file.location)


def restore_would_fail(data_file, attempt: int = 0) -> bool:
    """Whether the simulated nearline tier fails this restore: a deterministic draw per file
    (and attempt) against NEARLINE_RESTORE_FAILURE_RATE, so tests know which files fail."""
    rate = float(getattr(settings, "NEARLINE_RESTORE_FAILURE_RATE", 0.0))
    if rate <= 0:
        return False
    if rate >= 1:
        return True
    seed = f"{data_file.sha256}:{data_file.location}:{data_file.pk}:{attempt}".encode()
    draw = int.from_bytes(hashlib.sha256(seed).digest()[:8], "big") / 2**64
    return draw < rate


def restore_nearline(data_file, target_path, *, attempt: int = 0) -> Path:
    """Restores a file into `target_path` and returns the path written.

    `target_path` is the destination file; when it is an existing directory the file is written
    inside it under its `filename`. Waits NEARLINE_RESTORE_DELAY_SECONDS, then copies at no more
    than NEARLINE_RESTORE_BANDWIDTH_BPS to a temporary name, checks the SHA-256 and renames.
    Raises `RestoreFailed(reason)` for a simulated tape failure (NEARLINE_RESTORE_FAILURE_RATE),
    a missing source or corrupt bytes; nothing is left at the target then. ONLINE files are
    simply copied, so callers may restore any file.
    """
    target = Path(target_path)
    if target.is_dir():
        target = target / Path(data_file.filename).name
    delay = float(getattr(settings, "NEARLINE_RESTORE_DELAY_SECONDS", 0) or 0)
    if delay > 0:
        time.sleep(delay)
    if data_file.tier == StorageTier.NEARLINE and restore_would_fail(data_file, attempt):
        raise RestoreFailed(f"nearline restore of {data_file.filename} failed (simulated tape error)")
    try:
        source = Locator().open(data_file.tier, data_file.location)
    except (FileNotFoundError, StorageError) as exc:
        raise RestoreFailed(f"{data_file.filename} is missing from {data_file.tier} storage") from exc

    bandwidth = int(getattr(settings, "NEARLINE_RESTORE_BANDWIDTH_BPS", 0) or 0)
    hasher = _Hasher()

    def throttled_chunks():
        started = time.monotonic()
        with source:
            while chunk := source.read(CHUNK_SIZE):
                hasher.update(chunk)
                yield chunk
                if bandwidth > 0:
                    ahead = hasher.size / bandwidth - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.part-{uuid.uuid4().hex}")
    try:
        with open(tmp, "wb") as out:
            for chunk in throttled_chunks():
                out.write(chunk)
        if hasher.digests().sha256 != data_file.sha256:
            raise RestoreFailed(f"{data_file.filename} restored with a wrong SHA-256 (corrupt copy)")
        os.replace(tmp, target)
    except OSError as exc:
        raise RestoreFailed(f"could not write {target.name}: {exc.strerror or exc}") from exc
    finally:
        if tmp.exists():
            tmp.unlink()
    return target
