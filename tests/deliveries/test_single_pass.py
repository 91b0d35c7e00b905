"""One pass over the sources: files stored once inside the zip (their artifacts are ranges of
it), artifacts written in batches, signatures made when read, a large status body streamed."""
from __future__ import annotations

import hashlib
import json

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deliveries import apis, preparation, signing
from deliveries.models import DeliveryArtifact
from portal.catalog import storage
from portal.catalog.models import DataFile, DataType

from .conftest import SIGNING_KEY_URL, STATUS_URL, delivery_row, make_object, prepare, status_of

pytestmark = pytest.mark.django_db


def _get(member, url: str, **headers):
    return member.client.get(url.replace(settings.PORTAL_BASE_URL, ""), **headers)


def _bytes(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_file_artifacts_are_ranges_of_the_package_with_the_source_bytes(member, run_tasks, monkeypatch):
    # Given a package of more files than a batch of artifact rows (sizes that differ, one empty)
    monkeypatch.setattr(preparation, "ARTIFACT_BATCH", 2)
    sizes = [5000, 1, 0, 4096, 777]
    obj = make_object(member.project, files=[(DataType.RAWDATA, size) for size in sizes])
    sources = {f.filename: storage.data_file_path(f).read_bytes()
               for f in DataFile.unscoped_objects.filter(data_object=obj)}

    # When it is prepared
    with CaptureQueriesContext(connection) as queries:
        prepare(member, obj.ip_id, run_tasks)

    # Then the rows were streamed into the table: COPY on PostgreSQL, else batches (the
    # archive, then 5 files by 2)
    sqls = [q["sql"] for q in queries.captured_queries]
    inserts = [q for q in sqls if q.startswith('INSERT INTO "deliveries_deliveryartifact"')]
    if connection.vendor == "postgresql":  # (COPY goes past Django's query log)
        assert len(inserts) == 1 and DeliveryArtifact.unscoped_objects.count() == 1 + 5
    else:
        assert len(inserts) == 1 + 3
    body = status_of(member, obj.ip_id).json()
    assert [a["itemKey"] for a in body["artifacts"]] == ["archive", *sorted(sources)]
    rows = DeliveryArtifact.unscoped_objects.filter(delivery=delivery_row(member.project, obj.ip_id))
    archive_row = rows.get(item_key="archive")
    assert archive_row.archive_offset is None
    assert all(r.path == archive_row.path and r.archive_offset > 0 for r in rows.exclude(item_key="archive"))

    # And every file URL serves exactly its source's bytes, whole, HEAD and ranges of it
    for artifact in body["artifacts"][1:]:
        data = sources[artifact["itemKey"]]
        whole = _get(member, artifact["url"])
        assert whole.status_code == 200 and _bytes(whole) == data
        assert whole["Content-Length"] == str(len(data)) and whole["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'
        assert _get(member, artifact["url"], REQUEST_METHOD="HEAD")["Content-Length"] == str(len(data))
        if len(data) >= 2:
            tail = _get(member, artifact["url"], HTTP_RANGE="bytes=-2", HTTP_IF_RANGE=whole["ETag"])
            assert tail.status_code == 206 and _bytes(tail) == data[-2:]
            assert tail["Content-Range"] == f"bytes {len(data) - 2}-{len(data) - 1}/{len(data)}"
            head = _get(member, artifact["url"], HTTP_RANGE="bytes=0-0")
            assert head.status_code == 206 and _bytes(head) == data[:1]
        elif data:
            assert _get(member, artifact["url"], HTTP_RANGE=f"bytes={len(data)}-").status_code == 416


def test_signatures_are_made_when_read_and_verify_with_the_published_key(member, run_tasks, settings):
    obj = make_object(member.project, files=((DataType.RAWDATA, 300), (DataType.RAWDATA, 40)))
    prepare(member, obj.ip_id, run_tasks)
    rows = DeliveryArtifact.unscoped_objects.filter(delivery=delivery_row(member.project, obj.ip_id))
    assert set(rows.values_list("signature", flat=True)) == {""}  # only the SHA-256 is stored

    public_pem = member.client.get(SIGNING_KEY_URL).content
    for artifact in status_of(member, obj.ip_id).json()["artifacts"]:
        assert artifact["signature"] == signing.sign_sha256(artifact["hash"]["hash"])  # deterministic
        assert signing.verify_sha256(public_pem, artifact["hash"]["hash"], artifact["signature"])
        download = _get(member, artifact["url"])
        assert download["X-Signature-Ed25519"] == artifact["signature"]

    # A key given in the settings is used (and published) at once: the key is cached per settings
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    settings.DELIVERY_SIGNING_KEY_PEM = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    new_pem = member.client.get(SIGNING_KEY_URL).content
    assert new_pem != public_pem
    artifact = status_of(member, obj.ip_id).json()["artifacts"][1]
    assert signing.verify_sha256(new_pem, artifact["hash"]["hash"], artifact["signature"])
    assert not signing.verify_sha256(public_pem, artifact["hash"]["hash"], artifact["signature"])


def test_a_stored_signature_is_kept(member, run_tasks):
    obj = make_object(member.project)
    prepare(member, obj.ip_id, run_tasks)
    row = DeliveryArtifact.unscoped_objects.filter(delivery=delivery_row(member.project, obj.ip_id)).last()
    DeliveryArtifact.unscoped_objects.filter(pk=row.pk).update(signature="c3RvcmVk")
    assert status_of(member, obj.ip_id).json()["artifacts"][-1]["signature"] == "c3RvcmVk"


@pytest.mark.parametrize("source", ["cache", "remote"])
def test_a_large_status_body_is_streamed_with_the_same_bytes(member, run_tasks, monkeypatch, source):
    obj = make_object(member.project, files=[(DataType.RAWDATA, 30 + i) for i in range(7)],
                      names=[f"é{i}\u2603.dat" for i in range(7)])
    prepare(member, obj.ip_id, run_tasks)
    small = status_of(member, obj.ip_id, source=source)
    assert not small.streaming and len(small.json()["artifacts"]) == 8

    monkeypatch.setattr(apis, "STREAM_ABOVE", 3)
    monkeypatch.setattr(apis, "ARTIFACTS_PER_QUERY", 2)
    monkeypatch.setattr(apis, "STREAM_CHUNK", 100)
    streamed = status_of(member, obj.ip_id, source=source)
    assert streamed.streaming and streamed.status_code == 200
    assert streamed["Content-Type"] == small["Content-Type"]
    chunks = list(streamed.streaming_content)
    assert len(chunks) > 2
    assert b"".join(chunks) == small.content
    assert json.loads(b"".join(chunks)) == small.json()


def test_a_streamed_body_of_a_delivery_not_done_is_the_usual_one(member):
    obj = make_object(member.project)
    prepare(member, obj.ip_id)  # pending: no task ran
    response = member.client.get(f"{STATUS_URL}/{obj.ip_id}")
    delivery = delivery_row(member.project, obj.ip_id)
    streamed = b"".join(apis.delivery_body_chunks(delivery, project=member.project))
    assert streamed == response.content and json.loads(streamed)["artifacts"] == []


@pytest.mark.parametrize("read_whole_up_to", [1024 * 1024, 100])
def test_every_source_is_verified_on_its_way_into_the_zip(member, run_tasks, monkeypatch, read_whole_up_to):
    # Small files are read whole, bigger ones streamed: both paths verify size, SHA-256 and CRC
    monkeypatch.setattr(preparation, "READ_WHOLE_UP_TO", read_whole_up_to)
    good = make_object(member.project, files=[(DataType.RAWDATA, 500), (DataType.RAWDATA, 50)])
    prepare(member, good.ip_id, run_tasks)
    body = status_of(member, good.ip_id).json()
    assert body["status"] == "done"
    for artifact in body["artifacts"][1:]:
        source = DataFile.unscoped_objects.get(data_object=good, filename=artifact["itemKey"])
        assert _bytes(_get(member, artifact["url"])) == storage.data_file_path(source).read_bytes()

    corrupt = make_object(member.project, files=[(DataType.RAWDATA, 500)])
    path = storage.data_file_path(DataFile.unscoped_objects.get(data_object=corrupt))
    path.write_bytes(path.read_bytes()[:-1] + b"!")
    longer = make_object(member.project, files=[(DataType.RAWDATA, 500)])
    path = storage.data_file_path(DataFile.unscoped_objects.get(data_object=longer))
    path.write_bytes(path.read_bytes() + b"more")
    bad_crc = make_object(member.project, files=[(DataType.RAWDATA, 500)])
    DataFile.unscoped_objects.filter(data_object=bad_crc).update(crc32=12345)
    for obj in (corrupt, longer, bad_crc):
        prepare(member, obj.ip_id, run_tasks)
        body = status_of(member, obj.ip_id).json()
        assert (body["status"], body["error"]["errorCode"]) == ("error", "DELIVERY.notVerified"), obj
