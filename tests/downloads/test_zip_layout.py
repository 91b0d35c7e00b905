"""The zip layout engine, on real files: exact length, seekable ranges, zip64, names."""
from __future__ import annotations

import hashlib
import io
import random
import subprocess
import time
import zipfile
import zlib

import pytest
from hypothesis import given, settings, strategies as st

from portal.files.names import UniqueNames
from portal.files.zip_layout import (
    ZipEntry,
    ZipLayout,
    ZipSourceError,
    sha256sums_content,
    unique_names,
)


def _file_entry(path, name, key=None):
    data = path.read_bytes()
    return ZipEntry.from_path(name, path, size=len(data), crc32=zlib.crc32(data),
                              key=key, sha256=hashlib.sha256(data).hexdigest())


@pytest.fixture
def sample_files(tmp_path):
    rng = random.Random(7)
    contents = {
        "b.bin": rng.randbytes(3 * 1024 * 1024 + 17),
        "a.txt": b"hello\n" * 1000,
        "empty.dat": b"",
        "Überflug_été_東京.nc": rng.randbytes(4096),
    }
    entries = []
    for i, (name, data) in enumerate(sorted(contents.items())):
        path = tmp_path / f"src{i}"
        path.write_bytes(data)
        entries.append(_file_entry(path, name, key=i))
    entries.append(ZipEntry.from_bytes("SHA256SUMS", sha256sums_content(
        (n, hashlib.sha256(d).hexdigest()) for n, d in contents.items())))
    return contents, entries


def _materialize(layout, path):
    with open(path, "wb") as out:
        for chunk in layout.iter_range(0, len(layout) - 1, chunk_size=65536):
            out.write(chunk)
    return path


def test_archive_has_the_announced_length_and_reads_back(tmp_path, sample_files):
    contents, entries = sample_files
    layout = ZipLayout(entries)
    archive = _materialize(layout, tmp_path / "out.zip")

    assert archive.stat().st_size == len(layout)
    with zipfile.ZipFile(archive) as zf:
        assert zf.testzip() is None
        assert zf.namelist() == [e.name for e in entries]
        for name, data in contents.items():
            assert zf.read(name) == data
            info = zf.getinfo(name)
            assert info.compress_type == zipfile.ZIP_STORED
            assert info.flag_bits & 0x800  # UTF-8 names
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
        sums = zf.read("SHA256SUMS").decode()
    assert "  Überflug_été_東京.nc\n" in sums
    result = subprocess.run(["unzip", "-t", str(archive)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No errors detected" in result.stdout
    # sha256sum -c accepts the SHA256SUMS entry of an extracted archive.
    extract = tmp_path / "x"
    zipfile.ZipFile(archive).extractall(extract)
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=extract, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_same_entries_give_same_bytes_and_etag_and_a_change_changes_the_etag(sample_files):
    _, entries = sample_files
    first, second = ZipLayout(entries), ZipLayout(list(entries))
    assert first.etag == second.etag and first.etag.startswith('"')
    assert b"".join(first) == b"".join(second)
    renamed = [entries[0].__class__(**{**entries[0].__dict__, "name": "other.txt"})] + entries[1:]
    assert ZipLayout(renamed).etag != first.etag
    assert ZipLayout(entries[:-1]).etag != first.etag


def test_three_ranges_joined_equal_the_full_archive(sample_files):
    _, entries = sample_files
    layout = ZipLayout(entries)
    full = b"".join(layout)
    a, b = len(full) // 3, 2 * len(full) // 3
    parts = [b"".join(layout.iter_range(0, a - 1)), b"".join(layout.iter_range(a, b - 1)),
             b"".join(layout.iter_range(b, len(full) - 1))]
    assert [len(p) for p in parts] == [a, b - a, len(full) - b]
    assert b"".join(parts) == full


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_any_range_is_the_slice_of_the_full_archive(data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("r")
    rng = random.Random(data.draw(st.integers(0, 10**6)))
    entries = []
    for i in range(data.draw(st.integers(0, 5))):
        blob = rng.randbytes(rng.choice([0, 1, 100, 5000]))
        path = tmp / f"f{i}"
        path.write_bytes(blob)
        entries.append(_file_entry(path, f"n{i}.bin"))
    layout = ZipLayout(entries)
    full = b"".join(layout.iter_range(0, len(layout) - 1, chunk_size=7))
    assert len(full) == len(layout)
    start = data.draw(st.integers(0, len(full) - 1))
    end = data.draw(st.integers(start, len(full) - 1))
    chunk = data.draw(st.sampled_from([1, 3, 64, 1 << 20]))
    assert b"".join(layout.iter_range(start, end, chunk_size=chunk)) == full[start : end + 1]


def test_delivered_only_once_the_last_byte_was_taken(sample_files):
    _, entries = sample_files
    layout = ZipLayout(entries)
    delivered = []
    stream = layout.iter_range(0, len(layout) - 1, chunk_size=1024, on_delivered=delivered.append)
    # Read up to the middle of b.bin (the 2nd entry): only a.txt is delivered.
    first, _ = layout.entry_span(1)
    taken = 0
    for chunk in stream:
        taken += len(chunk)
        if taken > first + 5000:
            break
    stream.close()
    assert [e.name for e in delivered] == ["a.txt"]
    # A range that ends inside an entry does not deliver it; one covering its end does.
    delivered.clear()
    b_first, b_last = layout.entry_span(1)
    list(layout.iter_range(b_first + 10, b_last - 1, on_delivered=delivered.append))
    assert delivered == []
    list(layout.iter_range(b_last - 100, b_last, on_delivered=delivered.append))
    assert [e.name for e in delivered] == ["b.bin"]
    delivered.clear()
    list(layout.iter_range(0, len(layout) - 1, on_delivered=delivered.append))
    assert [e.name for e in delivered] == [e.name for e in entries]


def test_a_missing_or_corrupt_source_aborts_instead_of_sending_bad_bytes(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100_000)  # large enough to be sent on its own, not gathered
    good = ZipEntry.from_path("f", path, size=100_000, crc32=zlib.crc32(b"x" * 100_000))
    wrong_crc = ZipEntry.from_path("g", path, size=100_000, crc32=1234)
    missing = ZipEntry.from_path("h", tmp_path / "nope", size=10, crc32=0)
    short = ZipEntry.from_path("i", path, size=100_001, crc32=0)
    for bad in (wrong_crc, missing, short):
        delivered = []
        with pytest.raises(ZipSourceError):
            list(ZipLayout([good, bad]).iter_range(0, None, on_delivered=delivered.append))
        assert [e.name for e in delivered] == ["f"]
    # A small file gathered with the failing one never left: it is not delivered.
    small = tmp_path / "s"
    small.write_bytes(b"tiny")
    delivered = []
    with pytest.raises(ZipSourceError):
        list(ZipLayout([ZipEntry.from_path("s", small, size=4, crc32=zlib.crc32(b"tiny")), missing])
             .iter_range(0, None, on_delivered=delivered.append))
    assert delivered == []


def _write_sparse_archive(layout, big_index, path):
    """Writes the archive, leaving the (all-zero) data of entry `big_index` as a hole."""
    data_offset, size = layout.data_span(big_index)
    with open(path, "wb") as out:
        for chunk in layout.iter_range(0, data_offset - 1):
            out.write(chunk)
        out.seek(data_offset + size)
        for chunk in layout.iter_range(data_offset + size, len(layout) - 1):
            out.write(chunk)


def test_zip64_for_a_sparse_4_1_gib_file(tmp_path):
    big_size = 4 * 1024**3 + 100 * 1024**2
    big = tmp_path / "big.raw"
    subprocess.run(["truncate", "-s", str(big_size), str(big)], check=True)
    started = time.monotonic()
    zeros, crc = bytes(8 * 1024 * 1024), 0
    for _ in range(big_size // len(zeros)):
        crc = zlib.crc32(zeros, crc)
    crc = zlib.crc32(bytes(big_size % len(zeros)), crc)
    small = tmp_path / "after.txt"
    small.write_bytes(b"after the big one\n")
    entries = [
        ZipEntry.from_path("a.txt", small, size=small.stat().st_size, crc32=zlib.crc32(small.read_bytes())),
        ZipEntry.from_path("big.raw", big, size=big_size, crc32=crc),
        ZipEntry.from_path("z.txt", small, size=small.stat().st_size, crc32=zlib.crc32(small.read_bytes())),
    ]
    layout = ZipLayout(entries)
    assert layout.is_zip64 and len(layout) > big_size
    archive = tmp_path / "big.zip"
    _write_sparse_archive(layout, 1, archive)
    assert archive.stat().st_size == len(layout)

    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo("big.raw")
        assert info.file_size == big_size and info.CRC == crc
        z = zf.getinfo("z.txt")
        assert z.header_offset > 0xFFFFFFFF  # read from the zip64 extra field
        assert zf.read("z.txt") == b"after the big one\n"
    # A range straddling the end of the big entry is zeros then the next local header.
    data_offset, size = layout.data_span(1)
    piece = b"".join(layout.iter_range(data_offset + size - 4, data_offset + size + 3, verify_crc=False))
    assert piece == bytes(4) + b"PK\x03\x04"
    # unzip reads the zip64 records (listing) and tests the member stored past 4 GiB;
    # testing the 4.1 GiB member itself would take unzip ~25 s of CRC.
    listing = subprocess.run(["unzip", "-l", str(archive)], capture_output=True, text=True)
    assert listing.returncode == 0 and str(big_size) in listing.stdout, listing.stdout
    tested = subprocess.run(["unzip", "-t", str(archive), "a.txt", "z.txt"], capture_output=True, text=True)
    assert tested.returncode == 0 and "No errors detected" in tested.stdout, tested.stdout + tested.stderr
    assert time.monotonic() - started < 60


def test_zip64_end_records_above_65535_entries():
    entries = [ZipEntry.from_bytes(f"f{i:05d}", b"") for i in range(70_000)]
    layout = ZipLayout(entries)
    assert layout.is_zip64
    blob = b"".join(layout)
    assert len(blob) == len(layout)
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        names = zf.namelist()
    assert len(names) == 70_000 and names[-1] == "f69999"


def test_unique_names_follow_the_renaming_rule():
    names = unique_names([(3, "a.txt"), (1, "a.txt"), (2, "A.TXT"), (4, "a (1).txt"), (5, "data.tar.gz"),
                          (6, "data.tar.gz"), (7, "x/y"), (8, ""), (9, "SHA256SUMS")],
                         reserved=["SHA256SUMS", "NOTICE.txt"])
    assert names[1] == "a.txt"
    assert names[4] == "a (1).txt"          # a real name keeps its spelling
    assert {names[2], names[3]} == {"A (2).TXT", "a (3).txt"}
    assert names[5] == "data.tar.gz" and names[6] == "data (1).tar.gz"
    assert names[7] == "x_y" and names[8] == "file"
    assert names[9] == "SHA256SUMS (1)"
    assert len({n.casefold() for n in names.values()}) == len(names)


@given(st.lists(st.sampled_from(["a.txt", "A.txt", "a (1).txt", "b", "b (1)", "c.tar.gz"]), max_size=12),
       st.randoms())
def test_unique_names_do_not_depend_on_order(filenames, rnd):
    pairs = list(enumerate(filenames))
    shuffled = pairs[:]
    rnd.shuffle(shuffled)
    result = unique_names(pairs)
    assert result == unique_names(shuffled)
    assert len({n.casefold() for n in result.values()}) == len(pairs)


@given(st.lists(st.sampled_from(["a.txt", "A.txt", "a (1).txt", "a (2).TXT", "b", "b (1)", "c.tar.gz", "x/y",
                                 "x_y", "SHA256SUMS", "sha256sums (1)", "", " ", "ß.dat", "SS.dat", "unique"]),
                max_size=30))
def test_lean_unique_names_equal_unique_names(filenames):
    """UniqueNames keeps only hashes and the clashing names, and names files the same way."""
    pairs = list(enumerate(filenames))
    reserved = ["SHA256SUMS", "NOTICE.txt"]
    lean = UniqueNames(lambda: iter(pairs), reserved=reserved)
    assert {key: lean.name(key, name) for key, name in pairs} == unique_names(pairs, reserved=reserved)


def test_names_and_sizes_are_checked():
    with pytest.raises(ValueError):
        ZipLayout([ZipEntry.from_bytes("a", b"1"), ZipEntry.from_bytes("a", b"2")])


def test_small_entries_are_sent_in_few_chunks():
    entries = [ZipEntry.from_bytes(f"f{i:04d}.txt", b"x" * 50) for i in range(2000)]
    layout = ZipLayout(entries)
    chunks = list(layout.iter_range(0, None, chunk_size=256 * 1024))
    assert len(chunks) <= 3 and sum(map(len, chunks)) == len(layout)


def test_big_entries_are_read_in_bigger_chunks_and_still_checked(tmp_path, monkeypatch):
    from portal.files import zip_layout

    monkeypatch.setattr(zip_layout, "BIG_ENTRY", 256 * 1024)
    monkeypatch.setattr(zip_layout, "BIG_ENTRY_READ", 128 * 1024)
    rng = random.Random(3)
    big, small = rng.randbytes(300 * 1024 + 5), rng.randbytes(200 * 1024)
    (tmp_path / "big").write_bytes(big)
    (tmp_path / "small").write_bytes(small)
    layout = ZipLayout([_file_entry(tmp_path / "big", "big"), _file_entry(tmp_path / "small", "small")])
    chunks = list(layout.iter_range(0, None, chunk_size=64 * 1024))
    sizes = [len(chunk) for chunk in chunks]
    # The big entry's data in chunks of BIG_ENTRY_READ, the small one's in the caller's 64 KiB.
    assert sizes.count(128 * 1024) == 2 and sizes.count(64 * 1024) == 3, sizes
    archive = tmp_path / "a.zip"
    archive.write_bytes(b"".join(chunks))
    with zipfile.ZipFile(archive) as zf:
        assert zf.read("big") == big and zf.read("small") == small
    # A range inside the big entry is the same bytes, read in big chunks too.
    start, _ = layout.data_span(0)
    assert b"".join(layout.iter_range(start + 1, start + 200_000, chunk_size=64 * 1024)) == big[1:200_001]
    # Changed on disk (same size): the last chunk of the big entry never leaves.
    (tmp_path / "big").write_bytes(big[:-1] + bytes([big[-1] ^ 1]))
    sent = []
    with pytest.raises(ZipSourceError, match="CRC-32"):
        for chunk in layout.iter_range(0, None, chunk_size=64 * 1024):
            sent.append(chunk)
    assert sum(map(len, sent)) < layout.data_span(0)[0] + len(big)
