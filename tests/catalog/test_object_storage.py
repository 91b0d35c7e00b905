"""The Locator on a real S3 endpoint (moto in server mode on 127.0.0.1): every area by URL,
streamed ranged reads, whole-or-nothing writes, folder deletes, exclusive writes."""
from __future__ import annotations

import hashlib
import json

import pytest
from django.core.exceptions import ImproperlyConfigured

from portal.catalog import storage
from portal.catalog.models import DataFile, StorageTier
from portal.files.ranges import ShortRead
from portal.tenancy.models import Project
from portal.tenancy.scope import project_scope

from .factories import DataFileFactory

pytestmark = pytest.mark.django_db

DATA = bytes(range(256)) * 12_000  # ~3 MiB: several chunks


def test_each_area_is_on_the_bucket_under_its_url_prefix(s3_storage, project):
    online = DataFileFactory(project=project, content=b"online bytes")
    nearline = DataFileFactory(project=project, tier=StorageTier.NEARLINE, content=b"tape bytes")
    locator = storage.Locator()
    locator.write(storage.ORDER_CACHE, "alpha/1/x", [b"a"])
    locator.write(storage.DELIVERY_CACHE, "alpha/2/g1/y", [b"b"])
    assert s3_storage.keys() == sorted([f"online/{online.location}", f"nearline/{nearline.location}",
                                        "cache/order-cache/alpha/1/x", "cache/delivery-cache/alpha/2/g1/y"])
    assert not any(locator.is_local(area) for area in (StorageTier.ONLINE, StorageTier.NEARLINE,
                                                         storage.ORDER_CACHE, storage.DELIVERY_CACHE))
    with storage.open_online(online) as handle:
        assert handle.read() == b"online bytes"
    with pytest.raises(storage.StorageError):
        locator.path(StorageTier.ONLINE, online.location)  # no local paths on object storage


def test_ranged_reads_stream_the_requested_bytes(s3_storage):
    locator = storage.Locator()
    assert locator.write(storage.ORDER_CACHE, "alpha/1/big", [DATA[:1000], DATA[1000:]])
    assert locator.size(storage.ORDER_CACHE, "alpha/1/big") == len(DATA)
    chunks = list(locator.read_range(storage.ORDER_CACHE, "alpha/1/big", 5, 600_000, chunk_size=256 * 1024))
    assert b"".join(chunks) == DATA[5:600_005] and len(chunks) == 3
    with locator.open(storage.ORDER_CACHE, "alpha/1/big") as handle:
        handle.seek(len(DATA) - 10)
        assert handle.read() == DATA[-10:]
        handle.seek(3)
        assert handle.read(4) == DATA[3:7]
    with pytest.raises(ShortRead):
        list(locator.read_range(storage.ORDER_CACHE, "alpha/1/big", len(DATA) - 5, 10))


def test_a_write_hashes_what_it_stores(s3_storage):
    locator = storage.Locator()
    digest = hashlib.sha256()
    assert locator.write(storage.DELIVERY_CACHE, "alpha/2/g1/package.zip", [DATA[:7], b"", DATA[7:]], digest=digest)
    with locator.open(storage.DELIVERY_CACHE, "alpha/2/g1/package.zip") as handle:
        assert handle.read() == DATA
    assert digest.hexdigest() == hashlib.sha256(DATA).hexdigest()


def test_missing_objects_are_os_errors_and_bad_keys_refused(s3_storage):
    locator = storage.Locator()
    assert not locator.exists(storage.ORDER_CACHE, "alpha/1/none")
    with pytest.raises(FileNotFoundError):
        locator.size(storage.ORDER_CACHE, "alpha/1/none")
    with pytest.raises(FileNotFoundError), locator.open(storage.ORDER_CACHE, "alpha/1/none") as handle:
        handle.read()
    assert locator.problem(storage.ORDER_CACHE, "alpha/1/none", 3, missing="gone") == "gone"
    locator.write(storage.ORDER_CACHE, "alpha/1/three", [b"abc"])
    assert locator.problem(storage.ORDER_CACHE, "alpha/1/three", 3, missing="gone") is None
    assert "differs" in locator.problem(storage.ORDER_CACHE, "alpha/1/three", 4, missing="gone")
    for bad in ("../x", "/abs", "a/../../b", ""):
        with pytest.raises(storage.StorageError):
            locator.write(storage.ORDER_CACHE, bad, [b"x"])
        assert not locator.exists(storage.ORDER_CACHE, bad)


def test_a_failing_write_leaves_nothing_even_multipart(s3_storage):
    locator = storage.Locator()

    def chunks():
        for _ in range(20):  # 20 MiB: past the multipart threshold
            yield b"z" * storage.CHUNK_SIZE
        raise storage.RestoreFailed("corrupt")

    with pytest.raises(storage.RestoreFailed):
        locator.write(storage.ORDER_CACHE, "alpha/1/half", chunks())
    assert not locator.exists(storage.ORDER_CACHE, "alpha/1/half")
    assert s3_storage.client.list_multipart_uploads(Bucket=s3_storage.bucket).get("Uploads", []) == []
    big = [DATA] * 7  # ~21 MiB in a multipart upload
    locator.write(storage.ORDER_CACHE, "alpha/1/whole", big)
    digest = hashlib.sha256()
    for chunk in locator.read_range(storage.ORDER_CACHE, "alpha/1/whole", 0, 7 * len(DATA)):
        digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(DATA * 7).hexdigest()


def test_deleting_a_folder_deletes_only_what_is_under_it(s3_storage):
    locator = storage.Locator()
    for key in ("alpha/1/a", "alpha/1/sub/b", "alpha/10/c", "alpha/1"):
        locator.write(storage.ORDER_CACHE, key, [b"x"])
    locator.delete(storage.ORDER_CACHE, "alpha/1")
    assert s3_storage.keys("cache/") == ["cache/order-cache/alpha/10/c"]
    locator.delete(storage.ORDER_CACHE, "alpha/1")  # harmless when gone


def test_an_exclusive_write_keeps_the_first(s3_storage):
    locator = storage.Locator()
    assert locator.write(storage.KEYS, "k.pem", [b"first"], exclusive=True)
    assert not locator.write(storage.KEYS, "k.pem", [b"second"], exclusive=True)
    with locator.open(storage.KEYS, "k.pem") as handle:
        assert handle.read() == b"first"


def test_restore_nearline_into_the_cache_verifies_before_storing(s3_storage, project):
    f = DataFileFactory(project=project, tier=StorageTier.NEARLINE, content=DATA)
    assert storage.restore_nearline(f, area=storage.ORDER_CACHE, key="alpha/9/f") == "alpha/9/f"
    assert b"".join(storage.Locator().read_range(storage.ORDER_CACHE, "alpha/9/f", 0, len(DATA))) == DATA
    corrupt = DataFileFactory(project=project, tier=StorageTier.NEARLINE, content=b"abc", sha256="0" * 64)
    with pytest.raises(storage.RestoreFailed, match="SHA-256"):
        storage.restore_nearline(corrupt, area=storage.ORDER_CACHE, key="alpha/9/corrupt")
    assert not storage.Locator().exists(storage.ORDER_CACHE, "alpha/9/corrupt")
    missing = DataFileFactory.build(project=project, tier=StorageTier.NEARLINE, location="alpha/00/none",
                                    sha256="1" * 64)
    with pytest.raises(storage.RestoreFailed, match="missing"):
        storage.restore_nearline(missing, area=storage.ORDER_CACHE, key="alpha/9/missing")


def test_a_bad_storage_url_is_a_configuration_error(settings):
    settings.CACHE_STORAGE_URL = "ftp://somewhere/x"
    with pytest.raises(ImproperlyConfigured):
        storage.Locator().exists(storage.ORDER_CACHE, "a")
    settings.CACHE_STORAGE_URL = "s3://bucket/x?colour=blue"
    with pytest.raises(ImproperlyConfigured):
        storage.Locator().exists(storage.ORDER_CACHE, "a")


def test_load_catalog_stores_files_in_the_buckets(s3_storage, project, tmp_path):
    from django.core.management import call_command

    (tmp_path / "a.tif").write_bytes(b"raw A" * 100)
    (tmp_path / "b.tif").write_bytes(b"raw B on tape")
    (tmp_path / "m.json").write_text(json.dumps({"datasets": [{"label": "Scenes", "objects": [
        {"label": "A", "files": [{"dataType": "RAWDATA", "path": "a.tif", "tier": "ONLINE"}]},
        {"label": "B", "files": [{"dataType": "RAWDATA", "path": "b.tif", "tier": "NEARLINE"}]}]}]}))
    call_command("load_catalog", project.slug, str(tmp_path / "m.json"))
    with project_scope(project):
        online = DataFile.objects.get(tier=StorageTier.ONLINE)
        nearline = DataFile.objects.get(tier=StorageTier.NEARLINE)
    assert s3_storage.keys() == sorted([f"online/{online.location}", f"nearline/{nearline.location}"])
    with storage.open_online(online) as handle:
        assert handle.read() == b"raw A" * 100
    call_command("load_catalog", project.slug, str(tmp_path / "m.json"))  # idempotent
    assert len(s3_storage.keys()) == 2


def test_build_demo_writes_its_files_to_the_buckets(s3_storage):
    from django.core.management import call_command
    from PIL import Image

    call_command("build_demo")
    project = Project.objects.get(slug="demo")
    with project_scope(project):
        quicklook = DataFile.objects.filter(data_type="QUICKLOOK_SD").first()
        nearline = DataFile.objects.filter(tier=StorageTier.NEARLINE).first()
        with storage.open_online(quicklook) as handle:
            assert Image.open(handle).size == (96, 96)
    assert s3_storage.keys(f"online/{quicklook.location}") and s3_storage.keys(f"nearline/{nearline.location}")
    with storage.Locator().open(StorageTier.NEARLINE, nearline.location) as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == nearline.sha256


def test_readiness_checks_the_object_storage(client, s3_storage, settings):
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["storage"] == "ok"
    settings.CACHE_STORAGE_URL = f"s3://no-such-bucket/x?endpoint_url={s3_storage.endpoint}&region=us-east-1"
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["status"] == "error"
    assert response.json()["storage"].startswith("error: ORDER_CACHE storage")
