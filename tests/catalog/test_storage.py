"""Storage tiers on real files: digests, ONLINE reads, NEARLINE restores (delay, bandwidth, failures)."""
import hashlib
import time
import zlib

import pytest

from portal.catalog import storage
from portal.catalog.models import StorageTier

from .factories import DataFileFactory

pytestmark = pytest.mark.django_db


def test_file_digests_in_one_pass(tmp_path):
    data = bytes(range(256)) * 5000  # > 1 MiB: several chunks
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    size, crc, md5, sha = storage.file_digests(path)
    assert size == len(data)
    assert crc == zlib.crc32(data)
    assert md5 == hashlib.md5(data).hexdigest()
    assert sha == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("exclusive", [False, True])
@pytest.mark.parametrize("size", [3, 9 * 1024 * 1024 + 5])  # in line; in blocks by the writer thread
def test_a_local_write_hashes_what_it_stores(settings, tmp_path, exclusive, size):
    settings.DELIVERY_CACHE_DIR = tmp_path / "delivery-cache"
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    digest = hashlib.sha256()
    chunks = (data[i:i + 1_000_000] for i in range(0, size, 1_000_000))
    assert storage.Locator().write(storage.DELIVERY_CACHE, "alpha/2/g1/package.zip", chunks, exclusive=exclusive,
                                   digest=digest)
    assert (tmp_path / "delivery-cache/alpha/2/g1/package.zip").read_bytes() == data
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    assert [p.name for p in (tmp_path / "delivery-cache/alpha/2/g1").iterdir()] == ["package.zip"]  # no part left


def test_factory_file_lives_where_location_says(project, settings):
    f = DataFileFactory(project=project, content=b"hello")
    path = settings.ONLINE_STORAGE_DIR / f.location
    assert path.read_bytes() == b"hello"
    assert f.location == f"{project.slug}/{f.sha256[:2]}/{f.sha256}"
    assert (f.size, f.checksum) == (5, hashlib.md5(b"hello").hexdigest())
    nearline = DataFileFactory(project=project, tier=StorageTier.NEARLINE, content=b"tape")
    assert (settings.NEARLINE_STORAGE_DIR / nearline.location).read_bytes() == b"tape"


def test_open_online_reads_bytes_and_refuses_nearline(project):
    f = DataFileFactory(project=project, content=b"online bytes")
    with storage.open_online(f) as fh:
        assert fh.read() == b"online bytes"
    nearline = DataFileFactory(project=project, tier=StorageTier.NEARLINE)
    with pytest.raises(storage.NotOnline):
        storage.open_online(nearline)


def test_location_cannot_escape_the_tier_root(project):
    f = DataFileFactory.build(project=project, location="../../etc/passwd")
    with pytest.raises(storage.StorageError):
        storage.data_file_path(f)


def test_restore_copies_after_delay_at_bandwidth(project, settings, tmp_path):
    settings.NEARLINE_RESTORE_DELAY_SECONDS = 0.2
    settings.NEARLINE_RESTORE_BANDWIDTH_BPS = 1_000_000
    content = b"x" * 300_000
    f = DataFileFactory(project=project, tier=StorageTier.NEARLINE, content=content)
    started = time.monotonic()
    target = storage.restore_nearline(f, tmp_path / "cache" / "out.dat")
    elapsed = time.monotonic() - started
    assert target.read_bytes() == content
    assert elapsed >= 0.2 + 0.3 * 0.9  # delay + 300 kB at 1 MB/s
    assert [p.name for p in target.parent.iterdir()] == ["out.dat"]  # no temporary left


def test_restore_into_directory_uses_filename(project, tmp_path):
    f = DataFileFactory(project=project, tier=StorageTier.NEARLINE, filename="scene.tif")
    assert storage.restore_nearline(f, tmp_path) == tmp_path / "scene.tif"


def test_restore_failure_rate_is_deterministic_per_file(project, settings, tmp_path):
    settings.NEARLINE_RESTORE_FAILURE_RATE = 0.5
    files = [DataFileFactory(project=project, tier=StorageTier.NEARLINE) for _ in range(30)]
    outcomes = []
    for f in files:
        target = tmp_path / f"{f.pk}.dat"
        try:
            storage.restore_nearline(f, target)
            outcomes.append(True)
        except storage.RestoreFailed as exc:
            assert "failed" in exc.reason
            assert not target.exists()
            outcomes.append(False)
        # The draw is predictable, so tests can tell which files will fail.
        assert outcomes[-1] is not storage.restore_would_fail(f)
    assert 5 <= outcomes.count(False) <= 25


def test_restore_failure_rate_extremes(project, settings, tmp_path):
    f = DataFileFactory(project=project, tier=StorageTier.NEARLINE)
    settings.NEARLINE_RESTORE_FAILURE_RATE = 1.0
    with pytest.raises(storage.RestoreFailed):
        storage.restore_nearline(f, tmp_path / "a")
    settings.NEARLINE_RESTORE_FAILURE_RATE = 0.0
    assert storage.restore_nearline(f, tmp_path / "a").exists()


def test_restore_of_corrupt_or_missing_bytes_fails_cleanly(project, tmp_path):
    corrupt = DataFileFactory(project=project, tier=StorageTier.NEARLINE, content=b"good")
    storage.data_file_path(corrupt).write_bytes(b"evil")
    with pytest.raises(storage.RestoreFailed, match="SHA-256"):
        storage.restore_nearline(corrupt, tmp_path / "c")
    assert list(tmp_path.iterdir()) == []
    missing = DataFileFactory(project=project, tier=StorageTier.NEARLINE, content=b"gone")
    storage.data_file_path(missing).unlink()
    with pytest.raises(storage.RestoreFailed, match="missing"):
        storage.restore_nearline(missing, tmp_path / "m")
