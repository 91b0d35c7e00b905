"""The spooled zip layout: the same bytes and ETag as ZipLayout, with its entries on disk."""
from __future__ import annotations

import hashlib
import io
import random
import subprocess
import zipfile
import zlib

import pytest

from portal.files.zip_layout import ZipEntry, ZipLayout, ZipSourceError
from portal.files.zip_spool import BLOCK, SpooledZipLayout


class PathOpener:
    """A layout opener over {key: path}, with `path_of` (the spooled layout's fast path)."""

    def __init__(self, paths: dict):
        self.paths = paths
        self.opened = 0

    def __call__(self, index, key):
        self.opened += 1
        return open(self.paths[key], "rb")

    def path_of(self, index, key):
        return self.paths.get(key)


def _random_entries(tmp_path, rng: random.Random, count: int):
    """Sorted names (odd ones too), files of random sizes on disk (some empty, some above
    the gathering threshold), then in-memory entries after the sorted ones."""
    names = set()
    while len(names) < count:
        stem = "".join(rng.choice("abcxyzÄé東 _-.()") for _ in range(rng.randint(1, 12)))
        names.add(stem.strip() or "x")
    paths, entries = {}, []
    for key, name in enumerate(sorted(names)):
        size = rng.choice((0, 1, 17, 4096, 70_000, rng.randint(0, 200_000)))
        data = rng.randbytes(size)
        path = tmp_path / f"f{key}"
        path.write_bytes(data)
        paths[key] = str(path)
        sha = hashlib.sha256(data).hexdigest() if key % 3 else ""
        entries.append(ZipEntry(name=name, size=size, crc32=zlib.crc32(data), key=key, sha256=sha))
    entries.append(ZipEntry.from_bytes("SHA256SUMS", b"sums\n", key="SHA256SUMS"))
    entries.append(ZipEntry.from_bytes("NOTICE.txt", b"", key=None))
    return entries, PathOpener(paths)


def _boundaries(layout: ZipLayout) -> list[int]:
    """Every region edge: local headers, data, central records, end records."""
    edges = {0, layout.central_directory_offset, len(layout) - 1}
    cd = layout.central_directory_offset
    for i in range(layout.entry_count):
        first, last = layout.entry_span(i)
        data_offset, _ = layout.data_span(i)
        edges.update((first, first + 1, data_offset - 1, data_offset, last, last + 1))
        edges.add(cd)
        cd += len(layout._central_record(i))
        edges.update((cd - 1, cd))
    edges.update((len(layout) - 22, len(layout) - 21))
    return sorted(e for e in edges if 0 <= e < len(layout))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_same_bytes_and_etag_as_zip_layout_for_random_entries(tmp_path, seed):
    rng = random.Random(seed)
    entries, opener = _random_entries(tmp_path, rng, rng.randint(1, 60))
    memory = ZipLayout(entries, opener=opener)
    spooled = SpooledZipLayout(entries, opener=opener, temp_dir=str(tmp_path))
    assert (len(spooled), spooled.etag, spooled.entry_count, spooled.is_zip64) == (
        len(memory), memory.etag, memory.entry_count, memory.is_zip64)
    full = b"".join(memory)
    assert b"".join(spooled) == full
    for chunk_size in (7, 4096, 1024 * 1024):
        assert b"".join(spooled.iter_range(0, None, chunk_size=chunk_size)) == full
    edges = _boundaries(memory)
    for start in edges:
        end = rng.choice(edges + [len(full) - 1])
        assert b"".join(spooled.iter_range(start, end, chunk_size=rng.choice((100, 65536)))) == \
            full[start : end + 1], (start, end)
    for i in range(memory.entry_count):
        assert spooled.name(i) == memory.name(i) and spooled.key(i) == memory.key(i)
        assert spooled.data_span(i) == memory.data_span(i) and spooled.entry_span(i) == memory.entry_span(i)
    with zipfile.ZipFile(io.BytesIO(full)) as zf:
        assert zf.testzip() is None


def test_more_records_than_a_block_and_zip64_end_records(tmp_path):
    entries = [ZipEntry.from_bytes(f"f{i:05d}", b"" if i % 2 else b"x", key=i) for i in range(70_000)]
    memory, spooled = ZipLayout(entries), SpooledZipLayout(entries, temp_dir=str(tmp_path))
    assert spooled.is_zip64 and spooled.entry_count > BLOCK
    assert spooled.etag == memory.etag and b"".join(spooled) == b"".join(memory)
    cd = memory.central_directory_offset
    for start in (memory.entry_span(BLOCK)[0] - 3, cd - 1, cd + 46 * BLOCK + 5, len(memory) - 60):
        assert b"".join(spooled.iter_range(start, start + 200_000)) == \
            b"".join(memory.iter_range(start, start + 200_000))
    assert spooled.int_keys(BLOCK - 2, BLOCK + 2).tolist() == list(range(BLOCK - 2, BLOCK + 2))


def test_zip64_offsets_of_a_sparse_4_1_gib_file(tmp_path):
    big_size = 4 * 1024**3 + 100 * 1024**2
    big = tmp_path / "big.raw"
    subprocess.run(["truncate", "-s", str(big_size), str(big)], check=True)
    small = tmp_path / "small"
    small.write_bytes(b"after the big one\n")
    paths = {1: str(small), 2: str(big), 3: str(small)}
    crc = zlib.crc32(b"after the big one\n")
    entries = [ZipEntry(name="a.txt", size=18, crc32=crc, key=1),
               ZipEntry(name="big.raw", size=big_size, crc32=12345, key=2),
               ZipEntry(name="z.txt", size=18, crc32=crc, key=3)]
    memory = ZipLayout(entries, opener=PathOpener(paths))
    spooled = SpooledZipLayout(entries, opener=PathOpener(paths), temp_dir=str(tmp_path))
    assert spooled.is_zip64 and spooled.etag == memory.etag and len(spooled) == len(memory)
    data_offset, size = memory.data_span(1)
    for start, end in ((0, data_offset + 1000), (data_offset + size - 5, len(memory) - 1),
                       (memory.central_directory_offset + 3, len(memory) - 1)):
        assert b"".join(spooled.iter_range(start, end, verify_crc=False)) == \
            b"".join(memory.iter_range(start, end, verify_crc=False))
    # The whole big entry is checked: its recorded CRC-32 is wrong, so the stream aborts there.
    with pytest.raises(ZipSourceError):
        for _ in spooled.iter_range(data_offset - 10, data_offset + size):
            pass


def test_duplicate_names_are_refused_sorted_or_not(tmp_path):
    for names in (("a", "b", "b"), ("b", "c", "a", "c"), ("a", "b", "c", "SHA", "b")):
        with pytest.raises(ValueError, match="duplicate"):
            SpooledZipLayout([ZipEntry.from_bytes(n, b"x") for n in names], temp_dir=str(tmp_path))
    layout = SpooledZipLayout([ZipEntry.from_bytes(n, b"x") for n in ("b", "c", "a", "ab", "A")],
                              temp_dir=str(tmp_path))
    assert [layout.name(i) for i in range(5)] == ["b", "c", "a", "ab", "A"]


def _small_files(tmp_path, contents: list[bytes]):
    paths, entries = {}, []
    for i, data in enumerate(contents):
        path = tmp_path / f"s{i}"
        path.write_bytes(data)
        paths[i] = str(path)
        entries.append(ZipEntry(name=f"n{i:03d}", size=len(data), crc32=zlib.crc32(data), key=i))
    return entries, PathOpener(paths)


def test_a_wrong_crc_or_a_missing_small_file_aborts_and_is_not_delivered(tmp_path):
    entries, opener = _small_files(tmp_path, [b"a" * 1000, b"b" * 1000, b"c" * 1000])
    for broken in ("crc", "missing", "short"):
        bad = list(entries)
        if broken == "crc":
            bad[1] = ZipEntry(name="n001", size=1000, crc32=99, key=1)
        elif broken == "short":
            bad[1] = ZipEntry(name="n001", size=1001, crc32=entries[1].crc32, key=1)
        paths = dict(opener.paths)
        if broken == "missing":
            paths[1] = str(tmp_path / "gone")
        layout = SpooledZipLayout(bad, opener=PathOpener(paths), temp_dir=str(tmp_path))
        delivered = []
        with pytest.raises(ZipSourceError) as raised:
            for _ in layout.iter_range(0, None, on_delivered_range=lambda a, b: delivered.append((a, b))):
                pass
        assert raised.value.entry.key == 1
        assert delivered == []  # n000 was gathered in the chunk that never left
    # verify_crc=False sends the bytes as they are.
    bad = [entries[0], ZipEntry(name="n001", size=1000, crc32=99, key=1)]
    assert len(b"".join(SpooledZipLayout(bad, opener=opener, temp_dir=str(tmp_path)).iter_range(
        0, None, verify_crc=False))) > 2000


def test_delivered_ranges_are_confirmed_once_their_chunk_was_taken(tmp_path):
    entries, opener = _small_files(tmp_path, [bytes([i]) * 3000 for i in range(40)])
    layout = SpooledZipLayout(entries, opener=opener, temp_dir=str(tmp_path))
    ranges, keys = [], []
    stream = layout.iter_range(0, None, chunk_size=10_000, on_delivered_range=lambda a, b: ranges.append((a, b)))
    first = next(stream)
    assert ranges == []  # taken, not yet confirmed (the consumer did not ask for more)
    next(stream)
    assert ranges and ranges[0][0] == 0
    assert ranges[-1][1] * 3034 <= len(first)  # only entries whole in the first chunk
    rest = list(stream)
    assert sum(b - a for a, b in ranges) == 40 and all(x[1] == y[0] for x, y in zip(ranges, ranges[1:]))
    assert opener.opened == 0  # every small file went through path_of
    # A range from the middle of an entry delivers it (its last byte was sent) and the next ones.
    list(layout.iter_range(layout.entry_span(5)[0] + 40, layout.entry_span(7)[1],
                           on_delivered_key=keys.append))
    assert keys == [5, 6, 7]
    assert b"".join([first, *rest][:1]) == b"".join(ZipLayout(entries, opener=opener))[: len(first)]


# --- the order zip through the API, planned in name order from the database -----------------

def _zip_url(order) -> str:
    from .conftest import API

    return f"{API}/user/orders/{order.pk}/download"


def test_renamed_and_sanitized_names_are_merged_in_name_order(member, project, run_tasks):
    from orders.downloads.selectors import RESERVED_ZIP_NAMES
    from portal.files.names import unique_names
    from tests.catalog.factories import DataFileFactory, DataObjectFactory, DatasetFactory

    from .conftest import body_of, order_files, order_of, reload

    dataset = DatasetFactory(project=project, label="Odd names")
    objects = []
    for i, name in enumerate(["b.txt", "a/b.txt", " z.txt", "B.TXT", "Ä.txt", "a.txt", "A.txt", "b.txt",
                              "SHA256SUMS", "zz\x01.txt", "m.tar.gz", "M.TAR.GZ"]):
        obj = DataObjectFactory(dataset=dataset)
        DataFileFactory(data_object=obj, filename=name, content=f"content {i}\n".encode() * 7)
        objects.append(obj)
    order = reload(order_of(member, objects, run=run_tasks))
    files = order_files(order)
    expected = unique_names([(f.pk, f.filename) for f in files], reserved=RESERVED_ZIP_NAMES)
    blob = body_of(member.client.get(_zip_url(order)))
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        assert zf.testzip() is None
        assert zf.namelist() == sorted(expected.values()) + ["SHA256SUMS"]
        for f in files:
            assert zf.getinfo(expected[f.pk]).CRC == f.crc32
        sums = zf.read("SHA256SUMS").decode()
    assert sums == "".join(f"{f.sha256}  {expected[f.pk]}\n" for f in sorted(files, key=lambda f: expected[f.pk]))


def test_filenames_not_in_code_point_order_from_the_database_are_sorted_in_memory(
        member, staged_order, monkeypatch, caplog):
    from orders.downloads import archive

    from .conftest import body_of, order_files

    head = member.client.head(_zip_url(staged_order))
    real, real_all = archive.selectors.zip_candidate_rows, archive.selectors.zip_order_rows_by_name

    def reversed_rows(**kwargs):
        rows = list(real(**kwargs))
        return reversed(rows) if kwargs.get("by_name") else rows

    def reversed_all(**kwargs):
        yield from reversed(list(real_all(**kwargs)))

    monkeypatch.setattr(archive.selectors, "zip_candidate_rows", reversed_rows)
    monkeypatch.setattr(archive.selectors, "zip_order_rows_by_name", reversed_all)
    response = member.client.get(_zip_url(staged_order))
    assert response.status_code == 200 and response["ETag"] == head["ETag"]
    with zipfile.ZipFile(io.BytesIO(body_of(response))) as zf:
        assert zf.namelist() == sorted(f.filename for f in order_files(staged_order)) + ["SHA256SUMS"]
    assert "not in code-point order" in caplog.text


def test_a_file_changed_on_disk_aborts_the_zip_and_becomes_a_download_error(member, staged_order):
    from orders.models import FileState
    from portal.catalog import storage

    from .conftest import order_files, states

    victim = sorted(order_files(staged_order), key=lambda f: f.filename)[1]
    path = storage.data_file_path(victim)
    path.chmod(0o644)
    path.write_bytes(bytes(len(path.read_bytes())))  # same size, other bytes: only the CRC tells
    response = member.client.get(_zip_url(staged_order))
    with pytest.raises(ZipSourceError):
        b"".join(response.streaming_content)
    assert states(staged_order)[victim.pk] == FileState.DOWNLOAD_ERROR


def test_only_the_last_three_zips_of_an_order_resume(member, staged_order):
    from orders.downloads import zip_manifest
    from orders.models import FileState, OrderDataFile
    from portal.catalog.storage import ORDER_CACHE, Locator

    from .conftest import body_of, order_files

    files = order_files(staged_order)
    etags = []
    # Four different zips: every one of them is planned, and its manifest saved.
    for downloaded in ((), (0,), (0, 1), (1,)):
        OrderDataFile.unscoped_objects.filter(order_id=staged_order.pk).update(state=FileState.AVAILABLE)
        OrderDataFile.unscoped_objects.filter(pk__in=[files[i].pk for i in downloaded]).update(
            state=FileState.DOWNLOADED)
        etags.append(member.client.head(_zip_url(staged_order))["ETag"])
    assert len(set(etags)) == 4
    folder = Locator().path(ORDER_CACHE, zip_manifest.manifest_dir(project=member.project, order=staged_order))
    import os

    assert len([n for n in os.listdir(folder) if n.endswith(".manifest")]) == 3
    OrderDataFile.unscoped_objects.filter(order_id=staged_order.pk).update(state=FileState.DOWNLOADED)
    # The oldest is gone: the whole current zip (nothing AVAILABLE: 204); the others resume.
    assert member.client.get(_zip_url(staged_order), HTTP_RANGE="bytes=10-",
                             HTTP_IF_RANGE=etags[0]).status_code == 204
    for etag in etags[1:]:
        part = member.client.get(_zip_url(staged_order), HTTP_RANGE="bytes=10-", HTTP_IF_RANGE=etag)
        assert part.status_code == 206 and part["ETag"] == etag
        whole = b"PK\x03\x04" + b"\0" * 6 + body_of(part)
        assert len(whole) == int(part["Content-Range"].rsplit("/", 1)[1])
