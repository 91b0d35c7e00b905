"""The two storage tiers of catalog files, behind one small interface.

Where a file's bytes live: a `DataFile`'s `location` is a key relative to its tier's root,
`<project slug>/<sha256[:2]>/<sha256>` (content-addressed, so loading the same bytes twice
stores them once):

- ONLINE:   `settings.ONLINE_STORAGE_DIR / location` on local disk (the default), or the
            object `<prefix>/location` in the bucket of `ORDERLY_ONLINE_STORAGE_URL`.
- NEARLINE: the same under `NEARLINE_STORAGE_DIR` / `ORDERLY_NEARLINE_STORAGE_URL`, never read
            directly: it is restored (slowly, and possibly failing) into a cache with
            `restore_nearline`.
- caches:   ORDER_CACHE and DELIVERY_CACHE, their directories or `order-cache/` and
            `delivery-cache/` under `ORDERLY_CACHE_STORAGE_URL`.

A storage URL is `s3://bucket/prefix?endpoint_url=...&region=...` (any S3-compatible store,
through django-storages + boto3; credentials from the standard AWS variables); empty is local
disk. Every byte goes through ONE door, `Locator` (open, size, ranged read, exists, write,
delete): on object storage reads are streamed (ranged) GETs, nothing is spooled to disk.
`open_online(file)` reads an ONLINE file; `restore_nearline(file, area=, key=)` copies a file
into a cache; `file_digests(path)` gives size, CRC-32, MD5 and SHA-256 in one streaming pass.
"""
from __future__ import annotations

import functools
import hashlib
import io
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator
from urllib.parse import parse_qs, urlparse

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from portal.errors import Unavailable
from portal.files.block_writer import write_new_file
from portal.files.chunks import ChunkReader
from portal.files.crc import crc32
from portal.files.ranges import read_range

from .models import StorageTier

CHUNK_SIZE = 1024 * 1024


class StorageError(RuntimeError):
    pass


class StorageUnavailable(StorageError, Unavailable):
    """The object store cannot be reached (connection refused, timeout, 5xx): nothing is wrong
    with the file, try again later (503 at the API edge)."""

    def __init__(self, message: str):
        Unavailable.__init__(self, "STORAGE_UNAVAILABLE", message)


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
        self.crc = crc32(chunk, self.crc)
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
KEYS = "KEYS"                      # keys every node needs (the generated delivery signing key)

_ROOT_SETTINGS = {StorageTier.ONLINE: "ONLINE_STORAGE_DIR", StorageTier.NEARLINE: "NEARLINE_STORAGE_DIR",
                  ORDER_CACHE: "ORDER_CACHE_DIR", DELIVERY_CACHE: "DELIVERY_CACHE_DIR", KEYS: "DATA_DIR"}


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


# --- object storage (S3-compatible), chosen by URL --------------------------------------------

# Which setting names the storage URL of an area, and the folder of the area under it.
_URL_SETTINGS = {StorageTier.ONLINE: ("ONLINE_STORAGE_URL", ""), StorageTier.NEARLINE: ("NEARLINE_STORAGE_URL", ""),
                 ORDER_CACHE: ("CACHE_STORAGE_URL", "order-cache"),
                 DELIVERY_CACHE: ("CACHE_STORAGE_URL", "delivery-cache"), KEYS: ("CACHE_STORAGE_URL", "keys")}
_URL_OPTIONS = {"endpoint_url": "endpoint_url", "region": "region_name", "region_name": "region_name"}


def storage_url(area: str) -> str:
    """The configured URL of an area's storage ('' = local disk under ORDERLY_DATA_DIR)."""
    name, _ = _URL_SETTINGS.get(area, ("", ""))
    return getattr(settings, name, "") if name else ""


@dataclass(frozen=True)
class _Bucket:
    storage: object  # storages.backends.s3.S3Storage: credentials, endpoint, one boto3 resource per thread
    bucket: str
    prefix: str      # "" or "some/prefix/" (with its slash)

    @property
    def client(self):
        return self.storage.connection.meta.client

    def name(self, key: str) -> str:
        return self.prefix + key


@functools.lru_cache(maxsize=16)
def _bucket_for(url: str, folder: str) -> _Bucket:
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ImproperlyConfigured(f"a storage URL must look like s3://bucket/prefix?endpoint_url=...: {url!r}")
    from storages.backends.s3 import S3Storage

    options = {}
    for name, values in parse_qs(parsed.query).items():
        if name not in _URL_OPTIONS:
            raise ImproperlyConfigured(f"unknown storage URL option {name!r} (endpoint_url, region)")
        options[_URL_OPTIONS[name]] = values[-1]
    prefix = "/".join(part for part in (parsed.path.strip("/"), folder) if part)
    from botocore.config import Config

    # Few, quick retries: a store that is down answers 503 at the edge in seconds, not minutes.
    client_config = Config(connect_timeout=5, read_timeout=60, retries={"mode": "standard", "max_attempts": 3},
                           max_pool_connections=20)
    s3 = S3Storage(bucket_name=parsed.netloc, location=prefix, file_overwrite=True, client_config=client_config,
                   **options)
    return _Bucket(storage=s3, bucket=parsed.netloc, prefix=f"{prefix}/" if prefix else "")


def object_bucket(area: str) -> _Bucket | None:
    """The S3 bucket and prefix of an area when its storage URL is set, else None (local disk)."""
    url = storage_url(area)
    if not url:
        return None
    return _bucket_for(url, _URL_SETTINGS[area][1])


def online_object_storage():
    """The django-storages backend of the ONLINE tier when ORDERLY_ONLINE_STORAGE_URL is set, else None."""
    bucket = object_bucket(StorageTier.ONLINE)
    return bucket.storage if bucket else None


def _missing(exc) -> bool:
    error = getattr(exc, "response", {}).get("Error", {})
    return str(error.get("Code")) in ("404", "NoSuchKey", "NotFound")


def _storage_error(exc: Exception, key: str) -> StorageError:
    """The Locator's error for a failed object storage call: unreachable, or a plain failure."""
    from botocore.exceptions import ConnectionError as BotoConnectionError

    status = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0
    if isinstance(exc, BotoConnectionError) or status >= 500:
        return StorageUnavailable(f"object storage unreachable ({exc.__class__.__name__}) reading {key!r}")
    return StorageError(f"object storage: {exc}")


class _ObjectReader(io.RawIOBase):
    """A seekable binary file over one S3 object, read with streamed (ranged) GETs: nothing
    is downloaded before it is read, nothing goes to local disk. The GET starts at the first
    read from the current position, so `seek(n)` then `read()` is one request from byte n.
    A missing object raises FileNotFoundError at that first read."""

    def __init__(self, bucket: _Bucket, key: str):
        self._bucket, self._key = bucket, key
        self._pos, self._body = 0, None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self._pos
        elif whence == io.SEEK_END:
            offset += self._object_size()
        if offset != self._pos:
            self._drop()
            self._pos = offset
        return self._pos

    def _object_size(self) -> int:
        return _ObjectBackend(self._bucket).size(self._key)

    def _drop(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def readinto(self, buffer) -> int:
        if self._body is None:
            try:
                reply = self._bucket.client.get_object(Bucket=self._bucket.bucket, Key=self._bucket.name(self._key),
                                                       Range=f"bytes={self._pos}-")
            except Exception as exc:
                if _missing(exc):
                    raise FileNotFoundError(f"no object {self._key!r}") from exc
                if "InvalidRange" in str(exc):  # at or past the end
                    return 0
                error = _storage_error(exc, self._key)
                if isinstance(error, StorageUnavailable):
                    raise error from exc
                raise OSError(str(error)) from exc
            self._body = reply["Body"]
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self) -> None:
        self._drop()
        super().close()


class _ObjectBackend:
    """The Locator's operations on one S3 bucket/prefix."""

    def __init__(self, bucket: _Bucket):
        self.bucket = bucket

    def _call(self, method: str, key: str, **kwargs):
        try:
            return getattr(self.bucket.client, method)(Bucket=self.bucket.bucket, Key=self.bucket.name(key), **kwargs)
        except Exception as exc:
            if _missing(exc):
                raise FileNotFoundError(f"no object {key!r}") from exc
            if isinstance(exc, (OSError, StorageError)):
                raise
            raise _storage_error(exc, key) from exc

    def open(self, key: str) -> BinaryIO:
        return io.BufferedReader(_ObjectReader(self.bucket, key), buffer_size=CHUNK_SIZE)

    def size(self, key: str) -> int:
        return int(self._call("head_object", key)["ContentLength"])

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except FileNotFoundError:
            return False
        return True

    def read_range(self, key: str, start: int, length: int, chunk_size: int) -> Iterator[bytes]:
        if length <= 0:
            return
        body = self._call("get_object", key, Range=f"bytes={start}-{start + length - 1}")["Body"]
        yield from read_range(body, 0, length, chunk_size)  # the body starts at `start`

    def write(self, key: str, chunks: Iterable[bytes], *, exclusive: bool) -> bool:
        if exclusive:  # a conditional PUT: the first writer wins (small objects only)
            try:
                self._call("put_object", key, Body=b"".join(chunks), IfNoneMatch="*")
            except StorageError as exc:
                if "PreconditionFailed" in str(exc) or "ConditionalRequestConflict" in str(exc):
                    return False
                raise
            return True
        # One PUT, or a multipart upload for big files; an exception raised by `chunks` aborts
        # it (and propagates). No threads: `chunks` runs in the caller's thread (its database
        # connection, its project scope).
        from boto3.exceptions import Boto3Error
        from boto3.s3.transfer import TransferConfig
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.bucket.client.upload_fileobj(
                ChunkReader(chunks), self.bucket.bucket, self.bucket.name(key),
                Config=TransferConfig(multipart_threshold=16 * CHUNK_SIZE, multipart_chunksize=16 * CHUNK_SIZE,
                                      use_threads=False))
        except (Boto3Error, BotoCoreError, ClientError) as exc:
            raise _storage_error(exc, key) from exc
        return True

    def delete(self, key: str) -> None:
        """The object `key` and every object under `key/`."""
        client, bucket = self.bucket.client, self.bucket.bucket
        try:
            client.delete_object(Bucket=bucket, Key=self.bucket.name(key))
            paginator = client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=bucket, Prefix=self.bucket.name(key.rstrip("/") + "/")):
                objects = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if objects:
                    client.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
        except Exception as exc:
            if not _missing(exc):
                raise _storage_error(exc, key) from exc


# --- the one door to bytes -----------------------------------------------------------------

class Locator:
    """Where stored bytes are, and the only way to reach them: `open`, `size`, `read_range`,
    `exists`, `write`, `delete` of a key (a location relative to its area's root) in an area
    (a tier, ORDER_CACHE or DELIVERY_CACHE).

    Each area is on local disk (its directory setting) or, when its storage URL is set
    (ORDERLY_ONLINE_STORAGE_URL, ORDERLY_NEARLINE_STORAGE_URL, ORDERLY_CACHE_STORAGE_URL for
    both caches), in an S3-compatible bucket, read with streamed ranged GETs. Local roots are
    resolved once per locator and keys checked lexically against them (resolving every path
    cost more than the rest of planning a zip of small files).
    """

    def __init__(self):
        self._roots: dict[str, str] = {}
        self._objects: dict[str, _ObjectBackend | None] = {}

    def _object_storage(self, area: str) -> _ObjectBackend | None:
        if area not in self._objects:
            bucket = object_bucket(area)
            self._objects[area] = _ObjectBackend(bucket) if bucket else None
        return self._objects[area]

    def is_local(self, area: str) -> bool:
        return self._object_storage(area) is None

    def root(self, area: str) -> str:
        root = self._roots.get(area)
        if root is None:
            root = self._roots[area] = str(_resolved_root(str(tier_root(area))))
        return root

    def path(self, area: str, key: str) -> str:
        """The local path of a key (StorageError when it escapes its root; local areas only)."""
        if not self.is_local(area):
            raise StorageError(f"the {area} storage is object storage: it has no local paths")
        root = self.root(area)
        path = os.path.normpath(os.path.join(root, key))
        if not path.startswith(root + os.sep):
            raise StorageError(f"location {key!r} escapes the {area} storage root")
        return path

    @staticmethod
    def _check_key(area: str, key: str) -> str:
        if not key or key.startswith("/") or any(part in ("", ".", "..") for part in key.rstrip("/").split("/")):
            raise StorageError(f"location {key!r} escapes the {area} storage root")
        return key

    def open(self, area: str, key: str) -> BinaryIO:
        """A binary file object on the bytes (the caller closes it); OSError when missing
        (on object storage: at the first read)."""
        s3 = self._object_storage(area)
        if s3 is not None:
            return s3.open(self._check_key(area, key))
        return open(self.path(area, key), "rb")

    def size(self, area: str, key: str) -> int:
        """Bytes stored under the key; OSError when missing."""
        s3 = self._object_storage(area)
        if s3 is not None:
            return s3.size(self._check_key(area, key))
        return os.stat(self.path(area, key)).st_size

    def exists(self, area: str, key: str) -> bool:
        s3 = self._object_storage(area)
        try:
            if s3 is not None:
                return s3.exists(self._check_key(area, key))
            return os.path.exists(self.path(area, key))
        except StorageUnavailable:
            raise
        except StorageError:
            return False

    def read_range(self, area: str, key: str, start: int, length: int,
                   chunk_size: int = 256 * 1024) -> Iterator[bytes]:
        """`length` bytes from `start`, in chunks (ShortRead when the stored file is shorter);
        on object storage one ranged GET, streamed."""
        s3 = self._object_storage(area)
        if s3 is not None:
            return s3.read_range(self._check_key(area, key), start, length, chunk_size)
        return read_range(self.open(area, key), start, length, chunk_size)

    def write(self, area: str, key: str, chunks: Iterable[bytes], *, exclusive: bool = False,
              digest=None) -> bool:
        """Stores the bytes of `chunks` under the key, whole or not at all (an exception raised
        while iterating leaves nothing). `exclusive`: only when nothing is stored there yet
        (returns False then). `digest` (a hashlib object) is updated with every byte stored
        (of a big local file, by the thread that writes it). Returns True when written."""
        s3 = self._object_storage(area)
        if digest is not None and (s3 is not None or exclusive):
            chunks = _digested(chunks, digest)  # (a big local file is hashed by its writer thread)
        if s3 is not None:
            return s3.write(self._check_key(area, key), chunks, exclusive=exclusive)
        target = Path(self.path(area, key))
        if exclusive:
            return _write_once(target, chunks)
        _write_atomically(target, chunks, digest)
        return True

    def delete(self, area: str, key: str) -> None:
        """Removes a file or a whole folder (a cache of an order or a delivery); harmless when gone."""
        s3 = self._object_storage(area)
        if s3 is not None:
            s3.delete(self._check_key(area, key))
            return
        path = self.path(area, key)
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def problem(self, area: str, key: str, size: int, *, missing: str, trust_online: bool = True) -> str | None:
        """None when the bytes are there with the expected size, else why not (one `stat`, or
        one HEAD on object storage, where the content-addressed ONLINE tier is trusted, checked
        when read, unless `trust_online` is False). StorageUnavailable when the store cannot
        be reached: that is no problem of the file."""
        if area == StorageTier.ONLINE and trust_online and not self.is_local(area):
            return None
        try:
            actual = self.size(area, key)
        except StorageUnavailable:
            raise
        except StorageError as exc:
            return str(exc)
        except OSError:
            return missing
        if actual != size:
            return f"stored size {actual} differs from the expected {size} bytes"
        return None


def storage_check() -> str:
    """"ok" when every area's storage answers (a one-key listing of each bucket prefix, the
    local roots exist or can be made), else what fails: for readiness probes."""
    for area in _ROOT_SETTINGS:
        bucket = object_bucket(area)
        try:
            if bucket is None:
                tier_root(area).mkdir(parents=True, exist_ok=True)
            else:
                bucket.client.list_objects_v2(Bucket=bucket.bucket, Prefix=bucket.prefix, MaxKeys=1)
        except Exception as exc:  # probes report, they do not raise
            return f"error: {area} storage: {exc.__class__.__name__}"
    return "ok"


# --- writing ------------------------------------------------------------------------------

def _write_atomically(target: Path, chunks: Iterable[bytes], digest=None) -> None:
    """Writes a temporary file beside `target` (big ones in aligned blocks by a thread, see
    block_writer), renamed to it when complete."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.part-{uuid.uuid4().hex}")
    try:
        write_new_file(str(tmp), chunks, digest=digest)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _digested(chunks: Iterable[bytes], digest) -> Iterator[bytes]:
    for chunk in chunks:
        digest.update(chunk)
        yield chunk


def _write_once(target: Path, chunks: Iterable[bytes]) -> bool:
    """Writes unless a file is there; two processes racing keep the first (link is atomic)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
        try:
            os.link(tmp, target)
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _file_chunks(path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        yield from iter(lambda: fh.read(CHUNK_SIZE), b"")


def store_file(*, tier: str, location: str, source, size: int | None = None) -> None:
    """Puts the bytes of `source` (a path or bytes) at `location` in `tier`.

    Content-addressed locations make this idempotent: an existing file of the right size is kept.
    """
    locator = Locator()
    try:
        if size is not None and locator.size(tier, location) == size:
            return
    except FileNotFoundError:
        pass
    if isinstance(source, (bytes, bytearray)):
        locator.write(tier, location, [bytes(source)])
    else:
        locator.write(tier, location, _file_chunks(source))


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


def restore_nearline(data_file, target_path=None, *, area: str | None = None, key: str | None = None,
                     attempt: int = 0) -> Path | str:
    """Restores a file into a cache and returns where it was written: the `key` in `area`
    (through the Locator, so on object storage when that area is) or a local `target_path`
    (an existing directory gets the file under its `filename`).

    Waits NEARLINE_RESTORE_DELAY_SECONDS, then copies at no more than
    NEARLINE_RESTORE_BANDWIDTH_BPS and checks the SHA-256 before the copy becomes visible.
    Raises `RestoreFailed(reason)` for a simulated tape failure (NEARLINE_RESTORE_FAILURE_RATE),
    a missing source or corrupt bytes; nothing is left at the target then. ONLINE files are
    simply copied, so callers may restore any file.
    """
    target = None
    if area is None:
        target = Path(target_path)
        if target.is_dir():
            target = target / Path(data_file.filename).name
    delay = float(getattr(settings, "NEARLINE_RESTORE_DELAY_SECONDS", 0) or 0)
    if delay > 0:
        time.sleep(delay)
    if data_file.tier == StorageTier.NEARLINE and restore_would_fail(data_file, attempt):
        raise RestoreFailed(f"nearline restore of {data_file.filename} failed (simulated tape error)")
    locator = Locator()
    try:
        source = locator.open(data_file.tier, data_file.location)
        source.peek(1)  # a missing object fails here (its first GET), not mid-copy
    except StorageUnavailable:
        raise  # nothing is wrong with the file: the caller tries again later
    except (FileNotFoundError, StorageError) as exc:
        raise RestoreFailed(f"{data_file.filename} is missing from {data_file.tier} storage") from exc

    bandwidth = int(getattr(settings, "NEARLINE_RESTORE_BANDWIDTH_BPS", 0) or 0)

    def verified_chunks():
        hasher, started = _Hasher(), time.monotonic()
        with source:
            while chunk := source.read(CHUNK_SIZE):
                hasher.update(chunk)
                yield chunk
                if bandwidth > 0:
                    ahead = hasher.size / bandwidth - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
        if hasher.digests().sha256 != data_file.sha256:  # raised before the copy is committed
            raise RestoreFailed(f"{data_file.filename} restored with a wrong SHA-256 (corrupt copy)")

    try:
        if target is None:
            locator.write(area, key, verified_chunks())
            return key
        _write_atomically(target, verified_chunks())
    except OSError as exc:
        name = key if target is None else target.name
        raise RestoreFailed(f"could not write {name}: {exc.strerror or exc}") from exc
    except StorageError as exc:
        if isinstance(exc, (RestoreFailed, StorageUnavailable)):
            raise
        raise RestoreFailed(f"could not write {data_file.filename}: {exc}") from exc
    return target
