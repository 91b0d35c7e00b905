"""The whole order path with every storage on S3 (moto in server mode on 127.0.0.1): build,
NEARLINE restore into the order cache, files/available, a single file with Range, the zip with
Range/If-Range resume, metalinks, a prepared delivery (hashes, signatures) and expiry freeing
the objects. Nothing is read from local disk: the tiers hold no local files at all."""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.utils import timezone
from lxml import etree

from deliveries import signing
from orders import sweeps
from orders.models import FileState, Order, OrderDataFile, OrderStatus
from portal.catalog.models import DataFile, DataType, StorageTier
from tests.catalog.factories import DataFileFactory, DataObjectFactory, DatasetFactory
from tests.deliveries.conftest import SIGNING_KEY_URL, prepare, status_of

from .conftest import order_of, reload

pytestmark = pytest.mark.django_db

API = "/api/v1/rs-order"


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def _catalog(project) -> tuple[list, dict[str, bytes]]:
    """Two objects, each with an ONLINE and a NEARLINE file (bytes differ per file)."""
    dataset = DatasetFactory(project=project, label="Scenes on S3")
    objects, contents = [], {}
    for n in range(2):
        obj = DataObjectFactory(dataset=dataset)
        for tier in (StorageTier.ONLINE, StorageTier.NEARLINE):
            content = hashlib.sha256(f"{n}{tier}".encode()).digest() * (4000 + n)
            name = f"scene_{n}_{tier.lower()}.dat"
            DataFileFactory(data_object=obj, data_type=DataType.RAWDATA, tier=tier, filename=name, content=content)
            contents[name] = content
        objects.append(obj)
    return objects, contents


def test_the_whole_order_path_on_object_storage(s3_storage, member, run_tasks):
    project = member.project
    objects, contents = _catalog(project)
    stored = DataFile.unscoped_objects.filter(project=project)
    assert stored.count() == 4 and not any(  # nothing on local disk
        (settings.ONLINE_STORAGE_DIR / f.location).exists() or (settings.NEARLINE_STORAGE_DIR / f.location).exists()
        for f in stored)

    # Build and staging: NEARLINE files are restored into the order cache on S3.
    order = reload(order_of(member, objects, run=run_tasks))
    assert order.status == OrderStatus.DONE
    files = {f.filename: f for f in OrderDataFile.unscoped_objects.filter(order_id=order.pk)}
    assert {f.state for f in files.values()} == {FileState.AVAILABLE}
    cached = s3_storage.keys(f"cache/order-cache/{project.slug}/{order.pk}/")
    assert len(cached) == 2 and all(files[n].cache_path for n in files if "nearline" in n)

    # files/available lists them; each uri downloads its bytes.
    listing = member.client.get(f"{API}/orders/{order.pk}/files/available?size=10")
    assert listing.status_code == 200 and listing.json()["metadata"]["totalElements"] == 4
    for item in listing.json()["content"]:
        assert _body(member.client.get(_path(item["uri"]))) == contents[item["filename"]]

    # A single (restored) file with Range / If-Range.
    tape = files["scene_1_nearline.dat"]
    url = f"{API}/orders/files/{tape.pk}"
    part = member.client.get(url, HTTP_RANGE="bytes=1000-70999", HTTP_IF_RANGE=f'"sha256-{tape.sha256}"')
    assert part.status_code == 206 and _body(part) == contents[tape.filename][1000:71000]

    # The zip, then a resume of the same zip after its files became DOWNLOADED.
    OrderDataFile.unscoped_objects.filter(order_id=order.pk).update(state=FileState.AVAILABLE)
    whole = member.client.get(f"{API}/user/orders/{order.pk}/download")
    blob, etag = _body(whole), whole["ETag"]
    assert whole.status_code == 200 and len(blob) == int(whole["Content-Length"])
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        assert {name: archive.read(name) for name in contents} == contents
        assert archive.testzip() is None
    assert s3_storage.keys(f"cache/order-cache/{project.slug}/{order.pk}/.zip-manifests/")
    assert set(OrderDataFile.unscoped_objects.filter(order_id=order.pk).values_list("state", flat=True)) == {
        FileState.DOWNLOADED}
    middle = len(blob) // 3
    resumed = member.client.get(f"{API}/user/orders/{order.pk}/download", HTTP_RANGE=f"bytes={middle}-",
                                HTTP_IF_RANGE=etag)
    assert resumed.status_code == 206 and _body(resumed) == blob[middle:]

    # Metalink: every file, with its hash and a URL that serves it.
    metalink = member.client.get(f"{API}/user/orders/{order.pk}/metalink/download?version=4")
    assert metalink.status_code == 200
    tree = etree.fromstring(_body(metalink))
    names = tree.xpath("//*[local-name()='file']/@name")
    assert sorted(names) == sorted(contents)

    # A prepared delivery of the order: files and archive in the delivery cache on S3, hashed and signed.
    assert prepare(member, f"order-{order.pk}", run_tasks).status_code == 200
    body = status_of(member, f"order-{order.pk}").json()
    assert body["status"] == "done"
    public_pem = member.client.get(SIGNING_KEY_URL).content
    assert s3_storage.keys("cache/keys/") == ["cache/keys/delivery-signing-key.pem"]
    for artifact in body["artifacts"]:
        data = _body(member.client.get(_path(artifact["url"])))
        assert hashlib.sha256(data).hexdigest() == artifact["hash"]["hash"]
        assert signing.verify_sha256(public_pem, artifact["hash"]["hash"], artifact["signature"])
        if artifact["itemKey"] in contents:
            assert data == contents[artifact["itemKey"]]
    archive_url = _path(next(a for a in body["artifacts"] if a["itemKey"] == "archive")["url"])
    ranged = member.client.get(archive_url, HTTP_RANGE="bytes=100-199")
    assert ranged.status_code == 206 and len(_body(ranged)) == 100
    # The archive, and the NEARLINE files restored on their own (ONLINE files are ranges of the archive).
    nearline = [a for a in body["artifacts"] if json.loads(a["metaData"]).get("tier") == "NEARLINE"]
    assert len(s3_storage.keys("cache/delivery-cache/")) == 1 + len(nearline)
    with run_tasks():  # the files go once the deletion commits
        deleted = member.client.delete(f"/api/v1/delivery/preparedDelivery/order-{order.pk}")
    assert deleted.status_code == 200
    assert s3_storage.keys("cache/delivery-cache/") == []

    # Expiry frees the order's objects (restored copies and manifests); the catalog stays.
    Order.unscoped_objects.filter(pk=order.pk).update(expiration_date=timezone.now() - timedelta(minutes=1))
    with run_tasks():
        assert sweeps.orders_expire_sweep() == 1
    assert reload(order).status == OrderStatus.EXPIRED
    assert s3_storage.keys(f"cache/order-cache/{project.slug}/{order.pk}/") == []
    assert len(s3_storage.keys("online/")) == 2 and len(s3_storage.keys("nearline/")) == 2


def test_two_nodes_share_the_signing_key_through_the_cache_storage(s3_storage):
    signing._cache.clear()
    first = signing.public_key_pem()
    signing._cache.clear()  # another node: nothing in memory, the same key from the bucket
    assert signing.public_key_pem() == first
    assert s3_storage.keys("cache/keys/") == ["cache/keys/delivery-signing-key.pem"]


def test_the_signing_key_may_come_from_the_environment(settings, s3_storage):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    settings.DELIVERY_SIGNING_KEY_PEM = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    signing._cache.clear()
    assert signing.public_key_pem() == key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert s3_storage.keys("cache/keys/") == []  # nothing made


def test_a_missing_restored_copy_goes_to_notice_txt_not_a_broken_zip(s3_storage, member, run_tasks):
    objects, contents = _catalog(member.project)
    order = reload(order_of(member, objects[:1], run=run_tasks))
    tape = OrderDataFile.unscoped_objects.get(order_id=order.pk, tier=StorageTier.NEARLINE)
    s3_storage.client.delete_object(Bucket=s3_storage.bucket, Key=f"cache/order-cache/{tape.cache_path}")
    blob = _body(member.client.get(f"{API}/user/orders/{order.pk}/download"))
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        assert "NOTICE.txt" in archive.namelist() and tape.filename not in archive.namelist()
        assert "missing from the order cache" in archive.read("NOTICE.txt").decode()
    assert reload(order) and OrderDataFile.unscoped_objects.get(pk=tape.pk).state == FileState.DOWNLOAD_ERROR


def test_an_unreachable_object_store_is_503_and_marks_nothing(s3_storage, member, run_tasks, settings):
    from tests.conftest import free_port

    objects, contents = _catalog(member.project)
    order = reload(order_of(member, objects[:1], run=run_tasks))
    files = list(OrderDataFile.unscoped_objects.filter(order_id=order.pk).order_by("id"))
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    for name in ("ONLINE_STORAGE_URL", "NEARLINE_STORAGE_URL", "CACHE_STORAGE_URL"):
        setattr(settings, name, getattr(settings, name).replace(s3_storage.endpoint, down))
    for f in files:
        response = member.client.get(f"{API}/orders/files/{f.pk}")
        assert response.status_code == 503, response.content
        assert response.json()["messages"] == ["STORAGE_UNAVAILABLE"]
    assert set(OrderDataFile.unscoped_objects.filter(order_id=order.pk).values_list("state", flat=True)) == {
        FileState.AVAILABLE}  # nothing is wrong with the files: nothing marked
    data_file = DataFile.unscoped_objects.get(pk=files[0].data_file_id)
    catalog = member.client.get(f"/api/v1/rs-catalog/{objects[0].ip_id}/files/{data_file.checksum}")
    assert catalog.status_code == 503
    ready = member.client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["storage"].startswith("error: ONLINE storage")
