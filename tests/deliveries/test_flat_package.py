"""The package of a big target, planned from the database and spooled (flat memory): the same
zip bytes as a ZipLayout of the same entries, and, on PostgreSQL outside a caller's
transaction, artifact rows streamed into a COPY beside the zip with progress on a second
connection."""
from __future__ import annotations

import hashlib

import pytest
from django.conf import settings
from django.db import connection

from deliveries import preparation
from deliveries.models import Delivery, DeliveryArtifact, DeliveryStatus
from portal.catalog import storage
from portal.catalog.models import DataFile, DataType, StorageTier
from portal.files import block_writer
from portal.files.names import unique_names
from portal.files.zip_layout import ZipEntry, ZipLayout, sha256sums_content
from portal.tenancy.scope import project_scope
from tests.catalog.factories import DataFileFactory

from .conftest import delivery_row, make_object, prepare, status_of

# Names around SHA256SUMS, duplicates (case too), sanitized names, non-ASCII, an empty file.
NAMES = ["scene.tif", "Scene.TIF", "scene.tif", "A.dat", "SHA256SUMS.txt", "SHA", "zz.dat", "a/b.dat",
         "é.dat", "\u2603 x.dat", "SHA256SUMS", "sha256sums"]


def _bytes(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def _expected_zip(files: list[DataFile]) -> bytes:
    names = unique_names(((f.pk, f.filename) for f in files), reserved=["SHA256SUMS"])
    entries = [ZipEntry.from_bytes(names[f.pk], _content(f)) for f in files]
    entries.append(ZipEntry.from_bytes("SHA256SUMS", sha256sums_content((names[f.pk], f.sha256) for f in files)))
    return b"".join(ZipLayout(sorted(entries, key=lambda e: e.name.encode())))


def _content(data_file: DataFile) -> bytes:
    if data_file.tier == StorageTier.NEARLINE:
        return storage.local_path(tier=StorageTier.NEARLINE, location=data_file.location).read_bytes()
    return storage.data_file_path(data_file).read_bytes()


def _object_with_many_names(project):
    obj = make_object(project, files=[(DataType.RAWDATA, 50 + 7 * i) for i in range(len(NAMES))], names=NAMES)
    DataFileFactory(data_object=obj, tier=StorageTier.NEARLINE, filename="tape.dat", content=b"tape\n" * 30)
    DataFileFactory(data_object=obj, filename="empty.dat", content=b"")
    return obj


def _check_package(member, obj) -> list[dict]:
    body = status_of(member, obj.ip_id).json()
    assert body["status"] == "done", body
    files = list(DataFile.unscoped_objects.filter(data_object=obj).order_by("pk"))
    archive = _bytes(member.client.get(body["artifacts"][0]["url"].replace(settings.PORTAL_BASE_URL, "")))
    assert archive == _expected_zip(files)
    assert body["artifacts"][0]["hash"]["hash"] == hashlib.sha256(archive).hexdigest()
    names = unique_names(((f.pk, f.filename) for f in files), reserved=["SHA256SUMS"])
    assert [a["itemKey"] for a in body["artifacts"][1:]] == sorted(names.values(), key=str.encode)
    by_name = {names[f.pk]: f for f in files}
    for artifact in body["artifacts"][1:]:
        source = by_name[artifact["itemKey"]]
        data = _bytes(member.client.get(artifact["url"].replace(settings.PORTAL_BASE_URL, "")))
        assert data == _content(source) and artifact["size"] == len(data)
    return body["artifacts"]


@pytest.mark.django_db
@pytest.mark.parametrize("sorted_by_database", [True, False])
def test_the_package_has_the_bytes_of_a_zip_layout_of_its_entries(member, run_tasks, monkeypatch,
                                                                  sorted_by_database):
    if not sorted_by_database:  # a collation surprise: the files are sorted in memory instead
        real = preparation.selectors.package_rows

        def reversed_rows(**kwargs):
            return iter(sorted(real(**kwargs), key=lambda row: row[1], reverse=kwargs.get("by_name", False)))

        monkeypatch.setattr(preparation.selectors, "package_rows", reversed_rows)
    monkeypatch.setattr(preparation, "_SPOOL_BATCH", 3)
    obj = _object_with_many_names(member.project)
    prepare(member, obj.ip_id, run_tasks)
    artifacts = _check_package(member, obj)
    assert DeliveryArtifact.unscoped_objects.filter(delivery=delivery_row(member.project, obj.ip_id)).count() == \
        len(artifacts) == len(NAMES) + 3


@pytest.mark.django_db
def test_a_package_of_many_blocks_is_written_and_hashed_by_the_writer_thread(member, run_tasks, monkeypatch):
    # Blocks of 4 KiB: the package (~5 KiB of files and their headers) goes through the writer
    # thread, its last block padded for O_DIRECT and the file truncated back.
    monkeypatch.setattr(block_writer, "BLOCK", block_writer.ALIGN)
    obj = _object_with_many_names(member.project)
    DataFileFactory(data_object=obj, filename="big.dat", content=bytes(range(256)) * 20)
    prepare(member, obj.ip_id, run_tasks)
    archive = _check_package(member, obj)[0]
    assert archive["size"] > 2 * block_writer.ALIGN and archive["size"] % block_writer.ALIGN


def _build(member, obj) -> str:
    prepare(member, obj.ip_id)
    delivery = delivery_row(member.project, obj.ip_id)
    with project_scope(member.project):
        return preparation.delivery_build(project=member.project, delivery_id=delivery.pk,
                                          generation=delivery.generation)


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_rows_go_into_a_copy_and_progress_through_a_second_connection(member, monkeypatch):
    # Given a package of files above the progress step, built the way a Celery worker does
    monkeypatch.setattr(preparation, "PROGRESS_EVERY_BYTES", 1024)
    obj = _object_with_many_names(member.project)
    sides = []
    real_side = preparation._SideConnection

    def spy():
        sides.append(real_side())
        return sides[-1]

    monkeypatch.setattr(preparation, "_SideConnection", spy)
    assert _build(member, obj) == DeliveryStatus.DONE
    _check_package(member, obj)
    assert len(sides) == (1 if connection.vendor == "postgresql" else 0)
    assert delivery_row(member.project, obj.ip_id).progress == 100

    # A corrupt file: nothing of the rows is kept, the delivery is in error
    corrupt = make_object(member.project, files=[(DataType.RAWDATA, 500)] * 3)
    path = storage.data_file_path(DataFile.unscoped_objects.filter(data_object=corrupt).last())
    path.write_bytes(path.read_bytes()[:-1] + b"!")
    assert _build(member, corrupt) == DeliveryStatus.ERROR
    row = delivery_row(member.project, corrupt.ip_id)
    assert row.error_code == "DELIVERY.notVerified" and not DeliveryArtifact.unscoped_objects.filter(delivery=row)


@pytest.mark.django_db(transaction=True)
def test_a_delivery_deleted_while_its_rows_stream_stops_the_worker(member, monkeypatch):
    monkeypatch.setattr(preparation, "PROGRESS_EVERY_BYTES", 1)
    obj = make_object(member.project, files=[(DataType.RAWDATA, 500)] * 3)
    prepare(member, obj.ip_id)
    delivery = delivery_row(member.project, obj.ip_id)
    real_open = preparation.open_local
    # The worker's connection streams a COPY on PostgreSQL: another worker takes the delivery
    # over from a connection of its own.
    beside = preparation._copy_beside()

    def open_then_take_over(*args):
        if beside:
            _update_elsewhere(delivery.pk)
        else:
            Delivery.unscoped_objects.filter(pk=delivery.pk).update(claim_token="someone-else")
        return real_open(*args)

    monkeypatch.setattr(preparation, "open_local", open_then_take_over)
    with project_scope(member.project):
        assert preparation.delivery_build(project=member.project, delivery_id=delivery.pk, generation=1) == "skipped"
    assert not DeliveryArtifact.unscoped_objects.filter(delivery=delivery).exists()


def _update_elsewhere(delivery_id: int) -> None:
    # As a transition does (the row locked FOR UPDATE first): the streaming worker must not hold
    # the delivery row (a lock wait here would hang the worker, which waits for nothing else).
    other = connection.get_new_connection(connection.get_connection_params())
    try:
        with other.transaction():
            other.execute("SET LOCAL lock_timeout = '5s'")
            other.execute(f'SELECT 1 FROM "{Delivery._meta.db_table}" WHERE "id" = %s FOR UPDATE', [delivery_id])
            other.execute(f'UPDATE "{Delivery._meta.db_table}" SET "claim_token" = %s WHERE "id" = %s',
                          ["someone-else", delivery_id])
    finally:
        other.close()


@pytest.mark.django_db
@pytest.mark.parametrize("names, one_pass", [
    (["b.dat", "c.dat", "d.dat", "e.dat", "f.dat", "a \u2603.dat", "SHA256SUMS.txt"], True),
    # Alike only across batches (of 3 here): seen at the end of the pass, the names plan is made instead
    (["B.DAT", "C.dat", "D.dat", "b.dat", "e.dat"], False),
])
def test_a_package_whose_files_keep_their_filenames_is_planned_in_one_pass(member, run_tasks, monkeypatch, names,
                                                                          one_pass):
    real_names = preparation.selectors.package_names
    calls = []
    monkeypatch.setattr(preparation.selectors, "package_names",
                        lambda **kwargs: calls.append(1) or real_names(**kwargs))
    monkeypatch.setattr(preparation, "_SPOOL_BATCH", 3)
    obj = make_object(member.project, files=[(DataType.RAWDATA, 40 + i) for i in range(len(names))], names=names)
    prepare(member, obj.ip_id, run_tasks)
    artifacts = _check_package(member, obj)
    assert len(artifacts) == len(names) + 1
    # No pass over the names first when every file is called by its filename
    assert calls == ([] if one_pass else [1])
