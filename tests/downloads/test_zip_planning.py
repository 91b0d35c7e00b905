"""Planning an order zip: the one-pass plan of an order whose names are all distinct, its
fallback (the UniqueNames plan) for every other order, and the batch layout both feed: the
same archive, ETag and manifest as entry by entry."""
from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.files.names import DistinctNames, NamesNotDistinct, NamesOutOfOrder, unique_names
from portal.files.zip_layout import MAX32, ZipEntry, ZipLayout
from portal.files.zip_spool import SpooledZipLayout

RESERVED = ("SHA256SUMS", "NOTICE.txt")


# --- DistinctNames ---------------------------------------------------------------------------

@given(st.lists(st.sampled_from(["a.txt", "A.txt", "a (1).txt", "b", "B", "x/y", "x\\y", "", " ", ".", "..",
                                 "...", " lead", "trail ", "in side", "tab\tx", "nul\0", "del\x7f",
                                 "ß.dat", "SS.dat", "ss.dat", "é", "É", "nbsp\u00a0", "\u2003em", "東京",
                                 "SHA256SUMS", "sha256sums", "Notice.TXT", "notice.txt (1)", "unique"]),
                max_size=12),
       st.randoms())
def test_distinct_names_say_yes_exactly_when_unique_names_rename_nothing(filenames, rnd):
    names = DistinctNames(reserved=RESERVED)
    cuts = sorted(rnd.randint(0, len(filenames)) for _ in range(rnd.randint(0, 3)))
    verdict = True
    for first, last in zip([0, *cuts], [*cuts, len(filenames)]):
        verdict = verdict and names.add(filenames[first:last])
    verdict = verdict and names.distinct()
    pairs = list(enumerate(filenames))
    assert verdict == (unique_names(pairs, reserved=RESERVED) == dict(pairs))


def test_names_alike_in_different_batches_are_found_at_the_end():
    names = DistinctNames(reserved=RESERVED)
    assert names.add(["README.txt", "data.csv"]) and names.add(["readme.TXT", "zz"])
    assert not names.distinct()
    names = DistinctNames(reserved=RESERVED)
    assert names.add(["README.txt"]) and names.add(["data.csv"]) and names.distinct()


@pytest.mark.parametrize("batches, distinct", [
    ([["README.txt", "a1"], ["a2", "a3"], ["b1", "readme.TXT", "b2"]], False),  # in two spilled runs
    ([["README.txt", "a1"], ["a2", "a3"], ["readme.TXT"]], False),  # spilled, in memory
    ([["a1", "a2", "a3"], ["README.txt"], ["readme.TXT"]], False),  # in memory, after a spill
    ([["README.txt", "a1"], ["a2", "a3"], ["b1"], ["readme.zip"]], True),
])
def test_hashes_spilled_to_disk_still_find_names_alike_in_any_two_batches(monkeypatch, tmp_path, batches, distinct):
    from portal.files import names as names_module

    monkeypatch.setattr(names_module, "SPILL_HASHES", 3)  # a run spilled once 3 hashes are held
    names = DistinctNames(reserved=RESERVED, temp_dir=str(tmp_path))
    assert all(names.add(batch) for batch in batches)
    assert names._run_starts  # some hashes are on disk
    assert names.distinct() == distinct
    names.close()
    assert names._spill is None


def test_names_added_in_order_must_increase_strictly_across_batches():
    names = DistinctNames(reserved=RESERVED)
    names.add_in_order(["a.txt", "b.txt"])
    names.add_in_order([])
    names.add_in_order(["c.txt"])
    assert names.distinct()
    with pytest.raises(NamesNotDistinct):  # equal to the last of the batch before
        names.add_in_order(["c.txt", "d.txt"])
    names = DistinctNames(reserved=RESERVED)
    names.add_in_order(["b.txt"])
    with pytest.raises(NamesOutOfOrder):  # sorts before the last of the batch before
        names.add_in_order(["a.txt"])
    with pytest.raises(NamesOutOfOrder):  # out of order inside the batch
        DistinctNames(reserved=RESERVED).add_in_order(["b.txt", "a.txt"])
    with pytest.raises(NamesNotDistinct):  # in order, but a reserved name
        DistinctNames(reserved=RESERVED).add_in_order([sorted(RESERVED)[0]])


# --- the batch layout ------------------------------------------------------------------------

def _files(rng: random.Random, count: int, *, big: bool = False) -> list[tuple]:
    """(name, size, crc32, key, sha256) in name order: SHA-256s of every shape the layout
    meets (none, lower- and upper-case, not hex, zeros); sizes crossing 4 GiB when `big`."""
    names = sorted({"".join(rng.choice("abcxyzÄé東 _-.()") for _ in range(rng.randint(1, 10))) for _ in range(count)})
    shas = ["", hashlib.sha256(b"x").hexdigest(), hashlib.sha256(b"y").hexdigest().upper(), "z" * 64, "0" * 64,
            "ab " * 21 + "a"]
    files = []
    for key, name in enumerate(names, start=1):
        size = rng.choice((0, 1, 4096, rng.randint(0, 10**6))) if not big else rng.randint(10**9, 2 * 10**9)
        files.append((name, size, rng.randint(0, MAX32), key, shas[0] if key % 2 else rng.choice(shas)))
    return files


def _layout_of(layout) -> tuple:
    cd = layout.central_directory_offset
    return (layout.etag, len(layout), layout.entry_count, list(layout.iter_records()),
            b"".join(layout.iter_range(cd, len(layout) - 1)))


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("big", [False, True])
def test_batches_are_laid_out_as_entry_by_entry(seed, big):
    rng = random.Random(seed)
    files = _files(rng, 300, big=big)
    tail = [ZipEntry.from_bytes("~SUMS", b"sums\n", key="~SUMS")]
    cuts = sorted(rng.sample(range(1, len(files)), 6))
    batches = [files[first:last] for first, last in zip([0, *cuts], [*cuts, len(files)])]
    one_by_one = SpooledZipLayout([*files, *tail])
    batched = SpooledZipLayout([*batches, *tail])
    in_memory = ZipLayout([ZipEntry(name=n, size=s, crc32=c, key=k, sha256=h) for n, s, c, k, h in files] + tail)
    assert _layout_of(batched) == _layout_of(one_by_one)
    assert (batched.etag, len(batched)) == (in_memory.etag, len(in_memory))
    assert batched.is_zip64 == big


@pytest.mark.parametrize("odd", ["unsorted", "odd key", "4 GiB", "bad crc"])
def test_a_batch_out_of_the_plain_case_is_laid_out_entry_by_entry(odd):
    files = _files(random.Random(7), 40)
    if odd == "unsorted":
        files[10], files[11] = files[11], files[10]
    elif odd == "odd key":
        files[10] = (*files[10][:3], "key", files[10][4])
    elif odd == "4 GiB":
        files[10] = (files[10][0], MAX32, *files[10][2:])
    else:
        files[10] = (files[10][0], files[10][1], MAX32 + 1, *files[10][3:])
        with pytest.raises(ValueError):
            SpooledZipLayout([files[:20], files[20:]])
        return
    assert _layout_of(SpooledZipLayout([files[:20], files[20:]])) == _layout_of(SpooledZipLayout(files))


def test_manifest_lines_hold_the_sha256_the_layout_keeps():
    from orders.downloads import zip_manifest

    files = _files(random.Random(3), 200)
    layout = SpooledZipLayout(files)
    kept = b"".join(b"%d\t%d\t%d\t%s\t%s\n" % (key, size, crc, b"" if raw == zip_manifest.NO_SHA else raw.hex().encode(),
                                               name) for _, name, size, crc, key, raw in layout.iter_records())
    assert zip_manifest.manifest_lines(files) == kept
    plain = [f for f in files if len(f[4]) == 64 and f[4] == f[4].lower() and f[4] != "0" * 64 and " " not in f[4]
             and not f[4].startswith("z")]
    assert plain and zip_manifest.manifest_lines(plain) == b"".join(
        b"%d\t%d\t%d\t%s\t%s\n" % (k, s, c, h.encode(), n.encode()) for n, s, c, k, h in plain)


# --- planning an order: one pass, or the UniqueNames plan -------------------------------------

def _order_named(member, run_tasks, names: list[str]):
    from tests.catalog.factories import DataFileFactory, DataObjectFactory, DatasetFactory

    from .conftest import order_of, reload

    dataset = DatasetFactory(project=member.project, label="Named")
    objects = []
    for i, name in enumerate(names):
        obj = DataObjectFactory(dataset=dataset)
        DataFileFactory(data_object=obj, filename=name, content=f"content {i}\n".encode() * (i + 1))
        objects.append(obj)
    return reload(order_of(member, objects, run=run_tasks))


def _archive(project, plan) -> tuple:
    from orders.downloads import zip_manifest
    from portal.tenancy.scope import project_scope

    with project_scope(project):
        blob = b"".join(plan.layout.iter_range(0, len(plan.layout) - 1))
    handle = zip_manifest.manifest_open(project=project, order=plan.sources.order, etag=plan.layout.etag)
    with handle:
        handle.readline()  # the header: its creation time differs
        manifest = handle.read()
    return plan.layout.etag, blob, manifest, dict(plan.failed), bytes(plan.sources.direct)


def _plans(monkeypatch, project, order) -> tuple[str, tuple, tuple]:
    """(which plan order_zip_prepare made, its archive, the UniqueNames plan's archive)."""
    from orders.downloads import archive

    made = []
    real_distinct, real_unique = archive._zip_prepare_distinct, archive._zip_prepare

    def distinct(**kwargs):
        made.append("one pass")
        return real_distinct(**kwargs)

    def unique(**kwargs):
        made[-1] = "UniqueNames"
        return real_unique(**kwargs)

    from portal.tenancy.scope import project_scope

    monkeypatch.setattr(archive, "_zip_prepare_distinct", distinct)
    monkeypatch.setattr(archive, "_zip_prepare", unique)
    with project_scope(project):
        planned = _archive(project, archive.order_zip_prepare(project=project, order=order))
        before = _archive(project, real_unique(project=project, order=order, by_name=True))
    return made[-1], planned, before


@pytest.mark.parametrize("names, plan", [
    (["b.txt", "a.txt", "Z.dat", "ä.txt", "m.tar.gz", "SHA256SUMS.md5", "notice.txt.bak"], "one pass"),
    (["b.txt", "a.txt", "b.txt", "c.txt"], "UniqueNames"),             # equal: adjacent by name
    (["README.txt", "a", "b", "c", "readme.TXT"], "UniqueNames"),      # alike, in other batches
    (["a.txt", "sha256sums", "z.txt"], "UniqueNames"),                 # a reserved name
    (["a.txt", "x/y.txt", "z.txt"], "UniqueNames"),                    # a name to sanitize
    (["a.txt", " lead.txt", "z.txt"], "UniqueNames"),
])
def test_the_one_pass_plan_is_the_unique_names_plan(member, run_tasks, monkeypatch, names, plan):
    from orders.downloads import archive

    monkeypatch.setattr(archive, "NAME_BATCH", 2)  # several batches even for a few files
    order = _order_named(member, run_tasks, names)
    made, planned, before = _plans(monkeypatch, member.project, order)
    assert made == plan
    assert planned == before


def test_names_of_files_not_available_count_in_the_one_pass_check(member, run_tasks, monkeypatch):
    from orders.models import FileState, OrderDataFile

    from .conftest import order_files

    order = _order_named(member, run_tasks, ["a.txt", "b.txt", "A.TXT"])
    taken = next(f for f in order_files(order) if f.filename == "a.txt")
    OrderDataFile.unscoped_objects.filter(pk=taken.pk).update(state=FileState.DOWNLOADED)
    made, planned, before = _plans(monkeypatch, member.project, order)
    assert made == "UniqueNames" and planned == before
    assert b"A (1).TXT" in planned[1] and b"a.txt" not in planned[1]


def test_missing_and_resized_files_go_to_notice_in_the_one_pass_plan(member, run_tasks, monkeypatch):
    from portal.catalog import storage

    from .conftest import order_files

    order = _order_named(member, run_tasks, ["a.txt", "b.txt", "c.txt", "d.txt"])
    files = {f.filename: f for f in order_files(order)}
    storage.data_file_path(files["b.txt"]).unlink()
    path = storage.data_file_path(files["c.txt"])
    path.chmod(0o644)
    path.write_bytes(b"shorter")
    made, planned, before = _plans(monkeypatch, member.project, order)
    assert made == "one pass" and planned == before
    assert set(planned[3]) == {files["b.txt"].pk, files["c.txt"].pk}
    assert b"Failed to download file (b.txt)" in planned[1] and b"Failed to download file (c.txt)" in planned[1]


def test_the_garbage_collector_runs_again_after_planning_as_it_did_before(member, staged_order):
    import gc

    from orders.downloads import archive
    from portal.tenancy.scope import project_scope

    seen = []
    real = archive._zip_prepare_distinct

    def spy(**kwargs):
        seen.append(gc.isenabled())
        raise RuntimeError("boom")

    archive._zip_prepare_distinct = spy
    try:
        with project_scope(member.project):
            for enabled in (True, False):
                (gc.enable if enabled else gc.disable)()
                with pytest.raises(RuntimeError):
                    archive.order_zip_prepare(project=member.project, order=staged_order)
                assert gc.isenabled() == enabled
    finally:
        archive._zip_prepare_distinct = real
        gc.enable()
    assert seen == [False, False]


def test_a_resumed_zip_checks_its_files_as_a_fresh_one(member, run_tasks):
    from orders.downloads import archive
    from orders.models import FileState, OrderDataFile
    from portal.catalog import storage
    from portal.tenancy.scope import project_scope

    from .conftest import API, body_of, order_files

    order = _order_named(member, run_tasks, ["a.txt", "b.txt", "c.txt"])
    url = f"{API}/user/orders/{order.pk}/download"
    full = member.client.get(url)
    etag, blob = full["ETag"], body_of(full)
    with project_scope(member.project):
        fresh = archive.order_zip_resume(project=member.project, order=order, etag=etag)
    assert fresh.layout.etag == etag and bytes(fresh.sources.direct) == b"\1\1\1"
    part = member.client.get(url, HTTP_RANGE="bytes=100-", HTTP_IF_RANGE=etag)
    assert part.status_code == 206 and body_of(part) == blob[100:]
    # A file of the zip changed size on disk: the zip cannot be resumed, a new one is served.
    OrderDataFile.unscoped_objects.filter(order_id=order.pk).update(state=FileState.AVAILABLE)
    path = storage.data_file_path(order_files(order)[1])
    path.chmod(0o644)
    path.write_bytes(b"other")
    again = member.client.get(url, HTTP_RANGE="bytes=100-", HTTP_IF_RANGE=etag)
    assert again.status_code == 200 and again["ETag"] != etag
