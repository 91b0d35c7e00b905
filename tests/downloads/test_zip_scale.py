"""The order zip at scale: compact layouts, generated SHA256SUMS, line manifests, background marking."""
from __future__ import annotations

import io
import threading
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from django.db import OperationalError, connection, transaction

from portal.catalog.storage import ORDER_CACHE, Locator
from portal.files.zip_layout import ZipEntry, ZipLayout
from orders.downloads import archive, zip_manifest
from orders.models import FileState, OrderDataFile
from tests.orders.conftest import make_objects, order_of

from .conftest import body_of, order_files, reload, states
from .test_zip_api import zip_url


def test_a_layout_of_50_000_entries_costs_columns_not_objects():
    names = [f"scene_{i:06d}.dat" for i in range(50_000)]
    tracemalloc.start()
    layout = ZipLayout(ZipEntry(name=n, size=1000 + i, crc32=i, key=i) for i, n in enumerate(names))
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # ~50 bytes of arrays plus the 16-byte name per entry (a ZipEntry alone is ~150 bytes).
    assert current / 50_000 < 100, current
    assert layout.entry_count == 50_000 and layout.key(49_999) == 49_999
    assert layout.name(123) == names[123] and not layout.is_zip64
    with zipfile.ZipFile(io.BytesIO(b"".join(layout.iter_range(layout.central_directory_offset)).rjust(
            len(layout), b"\0"))) as zf:
        infos = zf.infolist()
    assert len(infos) == 50_000 and infos[-1].file_size == 1000 + 49_999 and infos[7].CRC == 7
    assert infos[-1].header_offset == layout.entry_span(49_999)[0]


def test_unsorted_duplicates_are_refused_too():
    with pytest.raises(ValueError):
        ZipLayout([ZipEntry.from_bytes(n, b"x") for n in ("b", "c", "a", "c")])
    ZipLayout([ZipEntry.from_bytes(n, b"x") for n in ("b", "c", "a", "ab")])


def test_a_range_starting_inside_the_generated_sha256sums_is_the_same_slice(member, staged_order):
    full = member.client.get(zip_url(staged_order))
    blob, etag = body_of(full), full["ETag"]
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        info = zf.getinfo("SHA256SUMS")
    middle = info.header_offset + 30 + len("SHA256SUMS") + info.file_size // 2
    part = member.client.get(zip_url(staged_order), HTTP_RANGE=f"bytes={middle}-", HTTP_IF_RANGE=etag)
    assert part.status_code == 206 and body_of(part) == blob[middle:]


def test_a_manifest_that_cannot_be_read_gives_the_whole_current_zip(member, staged_order):
    head = member.client.head(zip_url(staged_order))
    folder = zip_manifest.manifest_dir(project=member.project, order=staged_order)
    manifest = Path(Locator().path(ORDER_CACHE, f"{folder}/{zip_manifest.etag_key(head['ETag'])}.manifest"))
    assert manifest.read_text().count("\n") == 1 + 3  # header, then one line per file
    manifest.write_text('{"v": 1, "etag": "x", "files": []}\n')
    # Meanwhile a file was fetched alone: the current zip differs, the old one is lost.
    OrderDataFile.unscoped_objects.filter(pk=order_files(staged_order)[0].pk).update(state=FileState.DOWNLOADED)
    response = member.client.get(zip_url(staged_order), HTTP_RANGE="bytes=10-", HTTP_IF_RANGE=head["ETag"])
    assert response.status_code == 200 and len(body_of(response)) == int(response["Content-Length"])


def _join_marking_threads() -> None:
    """Waits for the zip's marking thread: it was started before the chunk we asked for came."""
    for thread in threading.enumerate():
        if thread.name == "zip-marker":
            thread.join(timeout=30)
            assert not thread.is_alive()


@pytest.mark.django_db(transaction=True)
def test_files_are_marked_in_batches_while_the_zip_streams(member, run_tasks, monkeypatch):
    order = reload(order_of(member, make_objects(member.project, count=4, files=(("RAWDATA", 200_000),)),
                            run=run_tasks))
    monkeypatch.setattr(archive, "MARK_BATCH_FILES", 1)
    stream = member.client.get(zip_url(order)).streaming_content
    names = sorted(f.filename for f in order_files(order))
    # Header, data of the 1st file, header, data of the 2nd: asking for the 4th chunk confirmed
    # the 1st file (its last chunk was taken) and handed it to the marking thread.
    taken = [next(stream) for _ in range(4)]
    _join_marking_threads()
    marked = {f.filename for f in order_files(order) if f.state == FileState.DOWNLOADED}
    assert marked == {names[0]}
    rest = b"".join(stream)
    with zipfile.ZipFile(io.BytesIO(b"".join(taken) + rest)) as zf:
        assert zf.testzip() is None
    assert set(states(order).values()) == {FileState.DOWNLOADED}


@pytest.mark.django_db(transaction=True)
def test_readers_are_not_refused_while_the_marking_thread_writes(member, run_tasks):
    # The cause of "database table is locked" on the embedded default: a request reading order
    # files while another thread's write transaction on them is open. It must simply read.
    order = reload(order_of(member, make_objects(member.project, count=2, files=(("RAWDATA", 100),)),
                            run=run_tasks))
    writing, release = threading.Event(), threading.Event()

    def writer():
        try:
            with transaction.atomic():
                OrderDataFile.unscoped_objects.filter(order_id=order.pk).update(error_reason="")
                writing.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert writing.wait(10)
        seen = states(order)
    finally:
        release.set()
        thread.join()
    assert set(seen.values()) == {FileState.AVAILABLE} and len(seen) == 2


@pytest.mark.django_db(transaction=True)
def test_a_batch_the_marking_thread_could_not_write_is_written_at_the_end(member, run_tasks, monkeypatch):
    order = reload(order_of(member, make_objects(member.project, count=3, files=(("RAWDATA", 100_000),)),
                            run=run_tasks))
    monkeypatch.setattr(archive, "MARK_BATCH_FILES", 1)
    real_mark = archive.order_progress.order_files_mark_downloaded
    failures = []

    def locked_once(**kwargs):
        if threading.current_thread().name == "zip-marker" and not failures:
            failures.append(kwargs["file_ids"])
            raise OperationalError("database is locked")
        return real_mark(**kwargs)

    monkeypatch.setattr(archive.order_progress, "order_files_mark_downloaded", locked_once)
    blob = body_of(member.client.get(zip_url(order)))
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        assert zf.testzip() is None
    assert failures, "the marking thread never ran"
    assert set(states(order).values()) == {FileState.DOWNLOADED}


def test_restored_nearline_files_are_read_from_the_order_cache(member, project, run_tasks):
    from portal.catalog.models import StorageTier

    objects = make_objects(project, count=2, files=(("RAWDATA", 70_000),), tier=StorageTier.NEARLINE,
                           label="Tapes")
    objects += make_objects(project, count=1, files=(("RAWDATA", 500),))
    order = reload(order_of(member, objects, run=run_tasks))
    files = order_files(order)
    assert {f.tier for f in files} == {StorageTier.NEARLINE, StorageTier.ONLINE}
    assert all(f.state == FileState.AVAILABLE for f in files)
    full = member.client.get(zip_url(order))
    blob = body_of(full)
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        assert zf.testzip() is None and len(zf.namelist()) == 4
        for f in files:
            assert zf.getinfo(f.filename).CRC == f.crc32
    # A resumed range reads the same bytes (sources found again from the manifest).
    part = member.client.get(zip_url(order), HTTP_RANGE="bytes=100-", HTTP_IF_RANGE=full["ETag"])
    assert part.status_code == 206 and body_of(part) == blob[100:]


def test_many_files_with_one_name_are_renamed_in_linear_time():
    # 100,000 files called image.tif: the quadratic version never finished this test.
    from portal.files.zip_layout import unique_names

    names = unique_names([(i, "image.tif") for i in range(100_000)] + [(100_000, "IMAGE (3).tif")])
    assert names[0] == "image.tif" and names[1] == "image (1).tif"
    assert names[100_000] == "IMAGE (3).tif"
    assert names[3] == "image (4).tif"  # (3) is taken case-insensitively by the explicit name
    assert len({n.casefold() for n in names.values()}) == 100_001
