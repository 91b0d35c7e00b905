"""The order zip through the API: exact length, resumable ranges, NOTICE.txt, names, states."""
from __future__ import annotations

import io
import re
import subprocess
import zipfile

from orders.models import FileState, Order, OrderDataFile, OrderStatus
from portal.catalog import storage
from tests.catalog.factories import DataFileFactory, DataObjectFactory, DatasetFactory

from .conftest import API, body_of, order_files, order_of, reload, states


def zip_url(order) -> str:
    return f"{API}/user/orders/{order.pk}/download"


def test_zip_of_available_files_reads_back_and_marks_them_downloaded(member, staged_order, tmp_path):
    response = member.client.get(zip_url(staged_order))
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert re.fullmatch(rf"attachment;filename=order_{staged_order.pk}_\d{{8}}-\d{{6}}\.zip",
                        response["Content-Disposition"])
    assert response["Accept-Ranges"] == "bytes" and response["ETag"].startswith('"zip-')
    assert all(s == FileState.AVAILABLE for s in states(staged_order).values())
    blob = body_of(response)
    assert len(blob) == int(response["Content-Length"])
    archive = tmp_path / "order.zip"
    archive.write_bytes(blob)
    tested = subprocess.run(["unzip", "-t", str(archive)], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout
    files = order_files(staged_order)
    with zipfile.ZipFile(archive) as zf:
        assert zf.testzip() is None
        names = zf.namelist()
        assert names == sorted(f.filename for f in files) + ["SHA256SUMS"]
        for f in files:
            assert zf.read(f.filename) == storage.data_file_path(f).read_bytes()
        sums = zf.read("SHA256SUMS").decode()
    assert all(f"{f.sha256}  {f.filename}\n" in sums for f in files)
    assert set(states(staged_order).values()) == {FileState.DOWNLOADED}
    # Nothing is AVAILABLE any more: no zip.
    assert member.client.get(zip_url(staged_order)).status_code == 204


def test_zip_resumes_in_three_ranges_equal_to_the_full_download(member, staged_order):
    full = member.client.get(zip_url(staged_order))
    etag, blob = full["ETag"], body_of(full)
    size = len(blob)
    a, b = size // 3, 2 * size // 3
    parts = []
    for first, last in ((0, a - 1), (a, b - 1), (b, size - 1)):
        # The files are DOWNLOADED by now: the range still comes from the same zip.
        part = member.client.get(zip_url(staged_order), HTTP_RANGE=f"bytes={first}-{last}", HTTP_IF_RANGE=etag)
        assert part.status_code == 206 and part["Content-Range"] == f"bytes {first}-{last}/{size}"
        assert part["ETag"] == etag
        parts.append(body_of(part))
    assert b"".join(parts) == blob
    # Without If-Range (curl -C -), the latest zip is resumed too.
    tail = member.client.get(zip_url(staged_order), HTTP_RANGE=f"bytes={size - 100}-")
    assert tail.status_code == 206 and body_of(tail) == blob[-100:]
    assert member.client.get(zip_url(staged_order), HTTP_RANGE=f"bytes={size}-",
                             HTTP_IF_RANGE=etag).status_code == 416


def test_a_range_resume_marks_only_files_whose_end_it_sent(member, staged_order):
    head = member.client.head(zip_url(staged_order))
    assert head.status_code == 200 and head.content == b""
    size, etag = int(head["Content-Length"]), head["ETag"]
    # The first 100 bytes hold the start of the first file only.
    part = member.client.get(zip_url(staged_order), HTTP_RANGE="bytes=0-99", HTTP_IF_RANGE=etag)
    assert part.status_code == 206 and len(body_of(part)) == 100
    assert set(states(staged_order).values()) == {FileState.AVAILABLE}
    rest = member.client.get(zip_url(staged_order), HTTP_RANGE="bytes=100-", HTTP_IF_RANGE=etag)
    assert rest.status_code == 206 and len(body_of(rest)) == size - 100
    assert set(states(staged_order).values()) == {FileState.DOWNLOADED}


def test_a_stale_if_range_gets_the_whole_current_zip(member, staged_order):
    response = member.client.get(zip_url(staged_order), HTTP_RANGE="bytes=10-", HTTP_IF_RANGE='"zip-old"')
    assert response.status_code == 200
    assert len(body_of(response)) == int(response["Content-Length"])


def test_unreadable_files_are_listed_in_notice_and_become_download_errors(member, staged_order):
    broken = order_files(staged_order)[1]
    storage.data_file_path(broken).unlink()
    response = member.client.get(zip_url(staged_order))
    with zipfile.ZipFile(io.BytesIO(body_of(response))) as zf:
        assert broken.filename not in zf.namelist()
        notice = zf.read("NOTICE.txt").decode()
    assert notice == (f"Failed to download file ({broken.filename}): "
                      f"the file is missing from online storage.\n")
    after = states(staged_order)
    assert after.pop(broken.pk) == FileState.DOWNLOAD_ERROR
    assert set(after.values()) == {FileState.DOWNLOADED}
    assert reload(staged_order).files_in_error_count == 1


def test_duplicate_and_non_ascii_names_stay_readable(member, project, run_tasks, tmp_path):
    dataset = DatasetFactory(project=project, label="Dups")
    objects = []
    for i, name in enumerate(["scene.nc", "scene.nc", "Scène_東京.nc", "SCENE.nc"]):
        obj = DataObjectFactory(dataset=dataset)
        DataFileFactory(data_object=obj, filename=name, content=f"content {i}\n".encode() * 10)
        objects.append(obj)
    order = reload(order_of(member, objects, run=run_tasks))
    response = member.client.get(zip_url(order))
    with zipfile.ZipFile(io.BytesIO(body_of(response))) as zf:
        names = zf.namelist()
        infos = {i.filename: i for i in zf.infolist()}
    assert names == sorted(["scene.nc", "scene (1).nc", "SCENE (2).nc", "Scène_東京.nc"]) + ["SHA256SUMS"]
    assert infos["Scène_東京.nc"].flag_bits & 0x800
    # unzip extracts all four into one folder, none overwriting another.
    archive = tmp_path / "d.zip"
    archive.write_bytes(body_of(member.client.get(zip_url(order), HTTP_RANGE="bytes=0-",
                                                  HTTP_IF_RANGE=response["ETag"])))
    subprocess.run(["unzip", "-q", str(archive), "-d", str(tmp_path / "x")], check=True)
    assert len(list((tmp_path / "x").iterdir())) == 5


def test_zip_is_403_404_410_as_the_order(member, staged_order):
    from tests.conftest import make_member

    assert make_member(member.project).client.get(zip_url(staged_order)).status_code == 403
    assert member.client.get(f"{API}/user/orders/999999/download").status_code == 404
    Order.unscoped_objects.filter(pk=staged_order.pk).update(status=OrderStatus.EXPIRED)
    assert member.client.get(zip_url(staged_order)).status_code == 410


def test_zip_content_does_not_depend_on_when_it_is_asked(member, staged_order):
    first = member.client.head(zip_url(staged_order))
    second = member.client.head(zip_url(staged_order))
    assert first["ETag"] == second["ETag"] and first["Content-Length"] == second["Content-Length"]
    # A changed file set changes the ETag.
    OrderDataFile.unscoped_objects.filter(pk=order_files(staged_order)[0].pk).update(state=FileState.DOWNLOADED)
    assert member.client.head(zip_url(staged_order))["ETag"] != first["ETag"]


def test_sha256sums_verify_the_extracted_files(member, staged_order, tmp_path):
    archive = tmp_path / "o.zip"
    archive.write_bytes(body_of(member.client.get(zip_url(staged_order))))
    zipfile.ZipFile(archive).extractall(tmp_path / "x")
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=tmp_path / "x", capture_output=True, text=True)
    assert check.returncode == 0 and check.stdout.count(": OK") == 3
