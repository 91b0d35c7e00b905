"""Preparing a package: files copied and verified, the zip as one artifact, signatures, failures."""
from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest
from django.conf import settings

from deliveries import preparation, services, signing
from deliveries.models import Delivery, DeliveryArtifact, DeliveryStatus
from portal.catalog import storage
from portal.catalog.models import DataFile, DataType, StorageTier
from portal.tenancy.scope import project_scope

from .conftest import SIGNING_KEY_URL, delivery_row, make_object, prepare, status_of

pytestmark = pytest.mark.django_db


def _download(member, url: str, **headers) -> bytes:
    response = member.client.get(url.replace(settings.PORTAL_BASE_URL, ""), **headers)
    assert response.status_code in (200, 206), response.content[:300]
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_a_data_object_is_prepared_with_a_verified_zip_and_signed_artifacts(member, run_tasks):
    # Given a data object with two ONLINE files and one NEARLINE file of the same name
    obj = make_object(member.project, files=((DataType.RAWDATA, 3000), (DataType.QUICKLOOK_SD, 500)),
                      names=["scene.tif", "scene.tif"])
    nearline_bytes = b"tape bytes\n" * 40
    from tests.catalog.factories import DataFileFactory
    DataFileFactory(data_object=obj, tier=StorageTier.NEARLINE, filename="tape.dat", content=nearline_bytes)

    # When it is prepared (the task runs on commit)
    response = prepare(member, obj.ip_id, run_tasks)
    assert response.status_code == 200
    body = status_of(member, obj.ip_id).json()

    # Then it is done, with the archive and one artifact per file
    assert (body["catalogId"], body["status"], body["progress"]) == (obj.ip_id, "done", 100)
    assert body["expiresAt"].endswith("Z") and "error" not in body
    keys = [a["itemKey"] for a in body["artifacts"]]
    assert keys == ["archive", "scene (1).tif", "scene.tif", "tape.dat"]
    archive = body["artifacts"][0]
    assert archive["size"] == body["size"] and archive["artifactType"] == "ARCHIVE"

    # Every artifact downloads with its hash and a signature the published key verifies
    public_pem = member.client.get(SIGNING_KEY_URL).content
    files_by_name = {}
    for artifact in body["artifacts"]:
        data = _download(member, artifact["url"])
        assert len(data) == artifact["size"]
        assert artifact["hash"] == {"algorithm": "SHA256Hex", "hash": hashlib.sha256(data).hexdigest()}
        assert signing.verify_sha256(public_pem, artifact["hash"]["hash"], artifact["signature"])
        assert not signing.verify_sha256(public_pem, hashlib.sha256(data + b"x").hexdigest(), artifact["signature"])
        assert artifact["isExecutable"] is False and artifact["arguments"] == ""
        files_by_name[artifact["itemKey"]] = data
    assert files_by_name["tape.dat"] == nearline_bytes

    # The zip holds every file and a SHA256SUMS that matches them
    with zipfile.ZipFile(io.BytesIO(files_by_name["archive"])) as archive_zip:
        assert archive_zip.testzip() is None
        names = sorted(archive_zip.namelist())
        assert names == ["SHA256SUMS", "scene (1).tif", "scene.tif", "tape.dat"]
        for name in names[1:]:
            assert archive_zip.read(name) == files_by_name[name]
        sums = archive_zip.read("SHA256SUMS").decode().splitlines()
        assert f"{hashlib.sha256(nearline_bytes).hexdigest()}  tape.dat" in sums

    # Files live in the delivery cache under the project and the delivery id
    delivery = delivery_row(member.project, obj.ip_id)
    folder = Path(settings.DELIVERY_CACHE_DIR) / "alpha" / str(delivery.pk)
    assert (folder / "g1" / "files" / "tape.dat").read_bytes() == nearline_bytes
    # ONLINE files are stored once, inside the zip (their artifacts are ranges of it): the cache
    # holds the zip and the restored NEARLINE file
    assert sorted(p.name for p in (folder / "g1" / "files").iterdir()) == ["tape.dat"]
    assert delivery.bytes_prepared == delivery.bytes_to_prepare == archive["size"] + len(nearline_bytes)


def test_item_type_filters_the_files_of_a_catalog_item(member, run_tasks):
    obj = make_object(member.project, files=((DataType.RAWDATA, 300), (DataType.QUICKLOOK_SD, 50)))
    prepare(member, obj.ip_id, run_tasks, itemType="QUICKLOOK_SD")
    body = status_of(member, obj.ip_id).json()
    assert [a["artifactType"] for a in body["artifacts"]] == ["ARCHIVE", "QUICKLOOK_SD"]
    assert prepare(member, obj.ip_id, itemType="NOPE").status_code == 400


def test_a_dataset_is_prepared_with_all_its_objects(member, run_tasks):
    first = make_object(member.project)
    make_object(member.project, dataset=first.dataset)
    prepare(member, first.dataset.ip_id, run_tasks)
    body = status_of(member, first.dataset.ip_id).json()
    assert body["status"] == "done" and len(body["artifacts"]) == 3


def test_a_corrupted_file_gives_not_verified_and_leaves_nothing_in_the_cache(member, run_tasks):
    obj = make_object(member.project, files=((DataType.RAWDATA, 2000),))
    data_file = DataFile.unscoped_objects.get(data_object=obj)
    path = storage.data_file_path(data_file)
    path.write_bytes(b"X" + path.read_bytes()[1:])  # same size, one byte changed

    prepare(member, obj.ip_id, run_tasks)
    body = status_of(member, obj.ip_id).json()

    assert body["status"] == "error" and body["artifacts"] == []
    assert body["error"]["errorCode"] == "DELIVERY.notVerified"
    assert data_file.filename in body["error"]["message"]
    delivery = delivery_row(member.project, obj.ip_id)
    assert not services.delivery_dir(project_slug="alpha", delivery_id=delivery.pk).exists()


def test_a_corrupted_nearline_file_gives_not_verified(member, run_tasks):
    obj = make_object(member.project, files=((DataType.RAWDATA, 200),), tier=StorageTier.NEARLINE)
    path = storage.data_file_path(DataFile.unscoped_objects.get(data_object=obj))
    path.write_bytes(b"Y" + path.read_bytes()[1:])
    prepare(member, obj.ip_id, run_tasks)
    assert status_of(member, obj.ip_id).json()["error"]["errorCode"] == "DELIVERY.notVerified"


def test_a_missing_file_gives_not_exist_and_an_error_is_prepared_again(member, run_tasks):
    obj = make_object(member.project, files=((DataType.RAWDATA, 200),))
    path = storage.data_file_path(DataFile.unscoped_objects.get(data_object=obj))
    content = path.read_bytes()
    path.unlink()
    prepare(member, obj.ip_id, run_tasks)
    assert status_of(member, obj.ip_id).json()["error"]["errorCode"] == "DELIVERY.notExist"

    # Once the file is back, preparing again works (error -> prepared again, a new generation)
    path.write_bytes(content)
    response = prepare(member, obj.ip_id, run_tasks)
    assert response.status_code == 200
    assert status_of(member, obj.ip_id).json()["status"] == "done"
    assert delivery_row(member.project, obj.ip_id).generation == 2


def test_progress_is_reported_while_copying(member, monkeypatch):
    # Given a package of 3 x 1 MB files and a report every 512 KB
    monkeypatch.setattr(preparation, "PROGRESS_EVERY_BYTES", 512 * 1024)
    monkeypatch.setattr(preparation, "CHUNK", 256 * 1024)
    obj = make_object(member.project, files=[(DataType.RAWDATA, 1024 * 1024)] * 3)
    assert prepare(member, obj.ip_id).status_code == 200  # no task run: pending
    delivery = delivery_row(member.project, obj.ip_id)
    assert delivery.status == DeliveryStatus.PENDING
    seen = []
    real_report = preparation.Worker.report

    def spy(self, *, force=False, **fields):
        real_report(self, force=force, **fields)
        seen.append(Delivery.unscoped_objects.values_list("progress", "status").get(pk=delivery.pk))

    monkeypatch.setattr(preparation.Worker, "report", spy)
    with project_scope(member.project):
        assert preparation.delivery_build(project=member.project, delivery_id=delivery.pk, generation=1) == "done"
    progresses = [p for p, s in seen if s == DeliveryStatus.IN_PROGRESS]
    assert progresses == sorted(progresses)
    assert len(set(progresses)) >= 4 and 0 < progresses[len(progresses) // 2] < 99
    assert delivery_row(member.project, obj.ip_id).progress == 100


def test_a_task_run_twice_prepares_once_and_a_stale_generation_is_skipped(member, run_tasks):
    obj = make_object(member.project)
    prepare(member, obj.ip_id, run_tasks)
    delivery = delivery_row(member.project, obj.ip_id)
    with project_scope(member.project):
        assert preparation.delivery_build(project=member.project, delivery_id=delivery.pk, generation=1) == "skipped"
        assert preparation.delivery_build(project=member.project, delivery_id=delivery.pk, generation=7) == "skipped"
    assert DeliveryArtifact.unscoped_objects.filter(delivery=delivery).count() == 2


def test_a_redelivered_task_takes_over_an_interrupted_preparation(member):
    # Given a worker that died mid-copy (status inProgress, a claim token nobody holds)
    obj = make_object(member.project, files=[(DataType.RAWDATA, 500)] * 2)
    prepare(member, obj.ip_id)
    delivery = delivery_row(member.project, obj.ip_id)
    Delivery.unscoped_objects.filter(pk=delivery.pk).update(status=DeliveryStatus.IN_PROGRESS,
                                                            claim_token="dead-worker", progress=40)
    # When the task is delivered again, it claims and finishes the preparation
    with project_scope(member.project):
        assert preparation.delivery_build(project=member.project, delivery_id=delivery.pk, generation=1) == "done"
    assert status_of(member, obj.ip_id).json()["status"] == "done"


def test_a_delivery_deleted_mid_preparation_stops_the_worker_and_frees_its_files(member, monkeypatch):
    obj = make_object(member.project, files=[(DataType.RAWDATA, 500)] * 3)
    prepare(member, obj.ip_id)
    delivery = delivery_row(member.project, obj.ip_id)
    real_open = preparation.open_local

    def open_then_delete(package_file, *args):
        source = real_open(package_file, *args)
        with project_scope(member.project):
            services.delivery_delete(project=member.project, delivery=delivery_row(member.project, obj.ip_id))
        return source

    monkeypatch.setattr(preparation, "open_local", open_then_delete)
    with project_scope(member.project):
        assert preparation.delivery_build(project=member.project, delivery_id=delivery.pk, generation=1) == "skipped"
    assert delivery_row(member.project, obj.ip_id).status == DeliveryStatus.DELETE
    assert not services.delivery_dir(project_slug="alpha", delivery_id=delivery.pk).exists()
    assert not DeliveryArtifact.unscoped_objects.filter(delivery=delivery).exists()
