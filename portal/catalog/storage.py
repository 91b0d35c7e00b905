"""The two storage tiers of catalog files, behind one small interface.

Where a file's bytes live: a `DataFile`'s `location` is a key relative to its tier's root,
`<project slug>/<sha256[:2]>/<sha256>` (content-addressed, so loading the same bytes twice
stores them once):

- ONLINE:   `settings.ONLINE_STORAGE_DIR / location` on local disk (the default), or the
            object `location` in the bucket named by `ORDERLY_ONLINE_STORAGE_URL`
            (`s3://bucket/prefix?endpoint_url=...`, needs `pip install django-storages[s3]`).
- NEARLINE: `settings.NEARLINE_STORAGE_DIR / location`, never read directly: it is restored
            (slowly, and possibly failing) into a target path with `restore_nearline`.

`open_online(file)` reads an ONLINE file; `restore_nearline(file, target)` copies a file into
a cache; `file_digests(path)` gives size, CRC-32, MD5 and SHA-256 in one streaming pass.
"""
from __future__ import annotations

import functools
import hashlib
import os
import time
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable
from urllib.parse import parse_qs, urlparse

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

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

def tier_root(tier: str) -> Path:
    if tier == StorageTier.ONLINE:
        return Path(settings.ONLINE_STORAGE_DIR)
    if tier == StorageTier.NEARLINE:
        return Path(settings.NEARLINE_STORAGE_DIR)
    raise StorageError(f"unknown storage tier {tier!r}")


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
    s3 = online_object_storage()
    if s3 is not None:  # pragma: no cover
        return s3.open(data_file.location, "rb")
    return open(data_file_path(data_file), "rb")


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
        source = open_online(data_file) if data_file.tier == StorageTier.ONLINE \
            else open(data_file_path(data_file), "rb")
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
