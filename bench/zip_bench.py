"""Streams a 2 GB order zip through gunicorn to curl; compares with `cat` and a single file.

    .venv/bin/python bench/zip_bench.py [--gb 2] [--files 20] [--workers 2] [--keep]

Builds a throw-away embedded installation (SQLite, local disk) in a temporary data dir:
one project, one user with a bearer token, an order of N ONLINE files totalling --gb GiB
(AVAILABLE) and a second order of ONE file of the same total size. Then, in one run:
  1. `cat` of the order's files to /dev/null (after one warm-up read, so all three figures
     read from the page cache and compare the serving paths, not the disk);
  2. gunicorn -> curl of the single big file (GET /orders/files/{id});
  3. gunicorn -> curl of the order zip (GET /user/orders/{id}/download);
  4. with the single file, gunicorn -> curl of the order's files read and CRC-checked by a bare
     WSGI app (bench/verified_stream.py): what any CRC-checked stream costs, portal or not;
and prints MB/s for each and the peak RSS of the gunicorn workers during each transfer.
"""
from __future__ import annotations

import argparse
import datetime as dt
import filecmp
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MiB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_BLOCK = os.urandom(MiB)


def write_file(path: Path, size: int, seed: int) -> None:
    """Pseudo-random but cheap: one random 1 MiB block, varied per MiB, so every file differs."""
    block = bytearray(_BLOCK)
    with open(path, "wb") as out:
        written = 0
        while written < size:
            block[:8] = (seed * 1_000_003 + written).to_bytes(8, "little")
            n = min(MiB, size - written)
            out.write(block[:n])
            written += n


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssWatcher:
    """Samples the RSS of gunicorn's workers every 50 ms; `peak` in MiB."""

    def __init__(self, master_pid: int):
        self.master = master_pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _pids(self) -> list[int]:
        try:
            children = Path(f"/proc/{self.master}/task/{self.master}/children").read_text().split()
        except OSError:
            children = []
        return [self.master, *map(int, children)]

    def _run(self):
        while not self._stop.is_set():
            for pid in self._pids()[1:]:
                self.peak = max(self.peak, rss_kib(pid))
            time.sleep(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def peak_mib(self) -> float:
        return self.peak / 1024


def bench_installation():
    """Migrates the throw-away database and makes the project `bench` with one member, their
    bearer token and one dataset: (project, user, token, dataset). Call after django.setup()."""
    from django.core.management import call_command

    from portal.catalog.models import Dataset
    from portal.tenancy.models import Membership, Project, Role, User
    from portal.tenancy.services import token_issue

    call_command("migrate", verbosity=0)
    project = Project.objects.create(slug="bench", label="Bench")
    user = User.objects.create_user(email="bench@example.org", password="bench-pass-123")
    Membership.objects.create(user=user, project=project, role=Role.REGISTERED_USER)
    token = token_issue(user=user, project=project).raw_key
    dataset = Dataset.unscoped_objects.create(project=project, ip_id="URN:AIP:DATASET:bench:1:V1", label="B")
    return project, user, token, dataset


LAST_TTFB: list[float] = [0.0]


def curl(url: str, token: str, *, head: bool = False) -> tuple[int, int, float]:
    """(status, bytes, seconds) of a GET (or HEAD); its time to first byte in LAST_TTFB[0]."""
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total} %{time_starttransfer}",
         *(["-I"] if head else []), "-H", f"Authorization: Bearer {token}", url],
        capture_output=True, text=True, check=True).stdout.split()
    LAST_TTFB[0] = float(out[3])
    return int(out[0]), int(out[1]), float(out[2])


def check_resume(url: str, token: str, work: Path, reset, manifests: Path) -> None:
    """`curl -C -` of an interrupted download at this size: a whole download to disk, the first
    half of the zip (Range, no If-Range: the latest zip), then the rest with `-C -` and the
    whole one's ETag in If-Range; the two files compared byte for byte and the resumed one
    tested by `unzip -tq`. Prints the times, and the resume manifests on disk."""
    auth = ["-H", f"Authorization: Bearer {token}"]
    whole, part = work / "whole.zip", work / "resumed.zip"
    reset()
    headers = subprocess.run(["curl", "-s", "-D", "-", "-o", str(whole), *auth, url],
                             capture_output=True, text=True, check=True).stdout
    etag = next(line.split(":", 1)[1].strip() for line in headers.splitlines() if line.lower().startswith("etag:"))
    total = whole.stat().st_size
    half = total // 2
    started = time.monotonic()
    subprocess.run(["curl", "-s", "-r", f"0-{half - 1}", "-o", str(part), *auth, url], check=True)
    first_half = time.monotonic() - started
    assert part.stat().st_size == half, (part.stat().st_size, half)
    started = time.monotonic()
    out = subprocess.run(["curl", "-s", "-C", "-", "-H", f"If-Range: {etag}", "-o", str(part),
                          "-w", "%{http_code} %{time_starttransfer}", *auth, url],
                         capture_output=True, text=True, check=True).stdout.split()
    rest = time.monotonic() - started
    assert out[0] == "206", out
    identical = filecmp.cmp(whole, part, shallow=False)
    tested = subprocess.run(["unzip", "-tq", str(part)], capture_output=True, text=True)
    files = sorted(manifests.iterdir()) if manifests.is_dir() else []
    print(f"\nresume (curl -C - with If-Range) of the {total:,}-byte zip: first half {first_half:.2f} s, "
          f"the rest 206 in {rest:.2f} s (first byte after {float(out[1]):.2f} s); "
          f"byte-identical to a whole download: {identical}; unzip -tq: {tested.stdout.strip() or tested.stderr.strip()}")
    print(f"  resume manifests of the order on disk: {len(files)} files, "
          f"{sum(f.stat().st_size for f in files) / MiB:.1f} MiB ({', '.join(f'{f.stat().st_size / MiB:.1f}' for f in files)})")
    assert identical and tested.returncode == 0, tested.stdout + tested.stderr
    whole.unlink()
    part.unlink()


def wait_for_port(port: int) -> None:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)


def warm_workers(url: str, token: str, workers: int) -> None:
    """HEAD requests, several at once, so every gunicorn worker has served one (imports, URL
    resolver, database connection) before anything is timed."""
    threads = [threading.Thread(target=curl, args=(url, token), kwargs={"head": True})
               for _ in range(2 * workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def profile_phases(zip_order, token: str) -> None:
    """Planning, streaming and marking of one zip, timed apart (in process, no server)."""
    from orders.downloads import archive
    from orders.models import OrderDataFile
    from portal.tenancy.models import Project
    from portal.tenancy.scope import project_scope

    project = Project.objects.get(slug="bench")
    with project_scope(project):
        started = time.monotonic()
        plan = archive.order_zip_prepare(project=project, order=zip_order)
        planned = time.monotonic()
        nbytes = 0
        for chunk in plan.layout.iter_range(0, len(plan.layout) - 1):
            nbytes += len(chunk)
        streamed = time.monotonic()
        ids = [i for i in OrderDataFile.unscoped_objects.filter(order=zip_order).values_list("id", flat=True)]
        listed = time.monotonic()
        for first in range(0, len(ids), archive.MARK_BATCH_FILES):
            archive.order_progress.order_files_mark_downloaded(
                project=project, order=zip_order, file_ids=ids[first : first + archive.MARK_BATCH_FILES])
        marked = time.monotonic()
    print(f"phases: planning {planned - started:.2f} s, streaming {streamed - planned:.2f} s "
          f"({nbytes / MiB / (streamed - planned):.0f} MiB/s), marking {marked - listed:.2f} s")
    OrderDataFile.unscoped_objects.filter(order=zip_order).update(state="AVAILABLE")
    # Planning again, best of 5 (the first one above warmed the caches): what the time to
    # first byte is made of, per file.
    with project_scope(project):
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            archive.order_zip_prepare(project=project, order=zip_order).close()
            best = min(best, time.perf_counter() - started)
    print(f"planning, best of 5: {best:.3f} s ({best / max(plan.file_count, 1) * 1e6:.1f} µs per file)")


def bench_order(project, user, dataset, label: str):
    """An empty DONE order and its dataset task: (order, task)."""
    from django.utils import timezone

    from orders.models import DatasetTask, Order, OrderStatus

    now = timezone.now()
    order = Order.unscoped_objects.create(
        project=project, owner=user, label=label, creation_date=now, status=OrderStatus.DONE,
        expiration_date=now + dt.timedelta(days=3), status_date=now, percent_completed=100)
    task = DatasetTask.unscoped_objects.create(project=project, order=order, dataset=dataset,
                                               dataset_label=dataset.label, dataset_ip_id=dataset.ip_id)
    return order, task


def bench_sub_order(project, user, order, task):
    """A STAGED sub-order of the order (its files added by bench_order_files)."""
    from orders.models import SubOrder, SubOrderState

    return SubOrder.unscoped_objects.create(project=project, order=order, dataset_task=task, owner=user,
                                            state=SubOrderState.STAGED)


# Also the files of one sub-order: the default suborder_max_files.
SETUP_BATCH = 5000


def bench_order_files(project, order, sub, dataset, indexes, stored, *, paths: bool) -> list[str]:
    """ONLINE catalog rows of stored files ((digests, location) per index) and their AVAILABLE
    order files, in bulk; returns the files' local paths if `paths`. Called a batch at a time (SETUP_BATCH):
    a 1,000,000-file order is set up with flat memory."""
    from django.utils import timezone

    from orders.models import FileState, OrderDataFile
    from portal.catalog import storage
    from portal.catalog.models import DataFile, DataObject, StorageTier

    now = timezone.now()
    objects = DataObject.unscoped_objects.bulk_create(
        [DataObject(project=project, dataset=dataset, label=f"o{i}", ip_id=f"URN:AIP:DATA:bench:{i}:V1",
                    creation_date=now) for i in indexes], batch_size=SETUP_BATCH)
    files = DataFile.unscoped_objects.bulk_create(
        [DataFile(project=project, data_object=obj, data_type="RAWDATA", filename=f"scene_{i:03d}.dat",
                  size=d.size, checksum=d.md5, sha256=d.sha256, crc32=d.crc32, tier=StorageTier.ONLINE,
                  location=location) for i, obj, (d, location) in zip(indexes, objects, stored)],
        batch_size=SETUP_BATCH)
    OrderDataFile.unscoped_objects.bulk_create(
        [OrderDataFile(project=project, order=order, sub_order=sub, data_file=f,
                       product_id=obj.ip_id, data_type=f.data_type,
                       filename=f.filename, mime_type=f.mime_type, size=f.size, checksum=f.checksum,
                       sha256=f.sha256, crc32=f.crc32, tier=f.tier, location=f.location,
                       state=FileState.AVAILABLE) for f, obj in zip(files, objects)], batch_size=SETUP_BATCH)
    return [str(storage.data_file_path(f)) for f in files] if paths else []


def order_with_files(project, user, dataset, label: str, indexes, store, paths_out=None):
    """A DONE order of the files `store(index)` stores ((digests, location) each), all
    AVAILABLE, made SETUP_BATCH files at a time (their paths written to `paths_out`, one per
    line): nothing per file is kept. A STAGED sub-order per batch, as order_build splits an
    order (at most the project's suborder_max_files each, 5,000 by default): a zip's marking
    recounts the sub-orders of the files it marked."""
    order, task = bench_order(project, user, dataset, label)
    indexes = list(indexes)
    for first in range(0, len(indexes), SETUP_BATCH):
        batch = indexes[first : first + SETUP_BATCH]
        sub = bench_sub_order(project, user, order, task)
        paths = bench_order_files(project, order, sub, dataset, batch, [store(i) for i in batch],
                                  paths=paths_out is not None)
        if paths_out is not None:
            paths_out.write("\n".join(paths) + "\n")
    return order


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=2.0, help="total size in GiB (default 2)")
    parser.add_argument("--files", type=int, default=20, help="files in the zip order (default 20)")
    parser.add_argument("--reference-files", type=int, default=1000,
                        help="files (of at most 1 MiB) in the reference zip whose worker RSS the big zip is "
                             "compared with (0: none)")
    parser.add_argument("--skip-single", action="store_true", help="no single big file (many-small-files runs)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of cat + zip (the files made AVAILABLE again); the best of each is reported")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir")
    parser.add_argument("--resume", action="store_true",
                        help="after the rounds, an interrupted download resumed by curl -C - (If-Range), checked "
                             "byte for byte and by unzip -t; prints the resume manifests on disk")
    parser.add_argument("--profile", action="store_true",
                        help="no server: serve the zip in process under cProfile and print the top functions")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="orderly-zip-bench-"))
    (data_dir / "static").mkdir()
    env = {**os.environ, "ORDERLY_DATA_DIR": str(data_dir), "DJANGO_SETTINGS_MODULE": "portal.settings.base",
           "DATABASE_URL": f"sqlite:///{data_dir / 'bench.sqlite3'}", "LOG_LEVEL": "WARNING"}
    env.pop("CELERY_BROKER_URL", None)
    os.environ.update(env)
    import django

    django.setup()
    from orders.models import FileState, OrderDataFile
    from portal.catalog import storage
    from portal.catalog.models import StorageTier

    gunicorn = verified_server = None
    try:
        project, user, token, dataset = bench_installation()
        total = int(args.gb * 1024**3)
        setup_started = time.monotonic()

        def store(index: int, size: int):
            if size <= MiB:  # small files straight from memory (a million of them in minutes)
                block = bytearray(_BLOCK[:size])
                block[:8] = (index * 1_000_003).to_bytes(8, "little")
                digests = storage.bytes_digests(bytes(block))
            else:
                tmp = data_dir / f"gen-{index}"
                write_file(tmp, size, index)
                digests = storage.file_digests(tmp)
            location = storage.location_for(project_slug=project.slug, sha256=digests.sha256)
            target = storage.local_path(tier=StorageTier.ONLINE, location=location)
            target.parent.mkdir(parents=True, exist_ok=True)
            if size <= MiB:
                target.write_bytes(block)
            else:
                os.replace(tmp, target)
            return digests, location

        def order_of(indexes, size: int, label: str, paths_out=None):
            return order_with_files(project, user, dataset, label, indexes, lambda i: store(i, size), paths_out)

        print(f"generating {args.files} files of {total / args.files / MiB:.0f} MiB and one of "
              f"{total / MiB:.0f} MiB in {data_dir} ...", flush=True)
        per_file = total // args.files
        path_list = data_dir / "paths.txt"
        with open(path_list, "w") as paths_out:
            zip_order = order_of(range(args.files), per_file, "zip order", paths_out)
        size_all = per_file * args.files
        big = None
        if not args.skip_single:
            single_order = order_of([10**9], size_all, "single file order")
            big = OrderDataFile.unscoped_objects.get(order=single_order)
            single_id = big.pk
        reference = None
        if args.reference_files:
            # at most 1 MiB a file: the reference is about the file count, and 1,000 files of
            # the big-file runs' 102 MiB would need 100 GB of disk (ENOSPC on 2026-12-06)
            reference = order_of(range(2 * 10**9, 2 * 10**9 + args.reference_files), min(per_file, MiB),
                                 "reference order")
        cat_all = f"xargs -d '\\n' -a {path_list} cat > /dev/null"
        print(f"set up in {time.monotonic() - setup_started:.0f} s", flush=True)

        # 1. cat (warm-up read first: every figure then reads from the page cache)
        subprocess.run(cat_all, shell=True, check=True)
        if big is not None:
            subprocess.run(["cat", str(storage.data_file_path(big))], stdout=subprocess.DEVNULL, check=True)
        started = time.monotonic()
        subprocess.run(cat_all, shell=True, check=True)
        cat_seconds = time.monotonic() - started

        if args.profile:
            import cProfile
            import pstats

            from django.test import Client

            profile_phases(zip_order, token)
            client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
            profiler = cProfile.Profile()
            started = time.monotonic()
            profiler.enable()
            response = client.get(f"/api/v1/rs-order/user/orders/{zip_order.pk}/download", {"scope": "bench"})
            n = sum(len(chunk) for chunk in response.streaming_content)
            response.close()
            profiler.disable()
            print(f"{n} bytes in {time.monotonic() - started:.2f} s (cat: {cat_seconds:.2f} s)")
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
            return
        port = free_port()
        gunicorn = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "portal.wsgi:application", "-b", f"127.0.0.1:{port}",
             "-w", str(args.workers), "--timeout", "600", "--log-level", "warning"],
            cwd=ROOT, env=env)
        base = f"http://127.0.0.1:{port}/api/v1/rs-order"
        wait_for_port(port)
        if big is not None:
            verified_port = free_port()
            verified_server = subprocess.Popen(
                [str(Path(sys.executable).parent / "gunicorn"), "bench.verified_stream:application", "-b",
                 f"127.0.0.1:{verified_port}", "-w", str(args.workers), "--timeout", "600", "--log-level", "warning"],
                cwd=ROOT, env={**env, "VERIFIED_STREAM_PATHS": str(path_list)})
            verified_url = f"http://127.0.0.1:{verified_port}/"
            wait_for_port(verified_port)
            verified_times = []
        time.sleep(1.0)
        idle = RssWatcher(gunicorn.pid)
        with idle:
            time.sleep(0.3)

        warm_workers(f"{base}/user/orders/{(reference or zip_order).pk}/download?scope=bench", token, args.workers)
        if reference is not None:
            with RssWatcher(gunicorn.pid) as reference_rss:
                code, _, _ = curl(f"{base}/user/orders/{reference.pk}/download?scope=bench", token)
            assert code == 200, code
        runs, peaks = [], []  # (cat seconds, zip seconds, time to first byte), peak RSS of each round
        single_times = []  # the single file, once a round too: the best of each is compared
        for round_number in range(args.repeat):
            if round_number:
                # The same zip again: its files AVAILABLE again, cat timed again next to it.
                OrderDataFile.unscoped_objects.filter(order=zip_order).update(state=FileState.AVAILABLE)
                started = time.monotonic()
                subprocess.run(cat_all, shell=True, check=True)
                cat_seconds = time.monotonic() - started
            if big is not None:
                with RssWatcher(gunicorn.pid) as single_rss:
                    code, single_bytes, seconds = curl(f"{base}/orders/files/{single_id}?scope=bench", token)
                assert code == 200 and single_bytes == big.size, (code, single_bytes)
                single_times.append(seconds)
                code, verified_bytes, seconds = curl(verified_url, token)
                assert code == 200 and verified_bytes == size_all, (code, verified_bytes)
                verified_times.append(seconds)
            with RssWatcher(gunicorn.pid) as zip_rss:
                code, zip_bytes, zip_seconds = curl(f"{base}/user/orders/{zip_order.pk}/download?scope=bench", token)
            assert code == 200 and zip_bytes > size_all, (code, zip_bytes)
            runs.append((cat_seconds, zip_seconds, LAST_TTFB[0]))
            peaks.append(zip_rss.peak)
            # curl has every byte before the worker marks the files (after its last chunk was taken).
            for _ in range(100):
                downloaded = OrderDataFile.unscoped_objects.filter(order=zip_order, state=FileState.DOWNLOADED).count()
                if downloaded == args.files:
                    break
                time.sleep(0.1)
        if len(runs) > 1:
            print("\nrounds (cat s, zip s, zip/cat):  " + "  ".join(
                f"({c:.2f}, {z:.2f}, {(zip_bytes / z) / (size_all / c):.2f})" for c, z, _ in runs))
            if single_times:
                print("rounds (single file s, verified stream s, zip/single):  " + "  ".join(
                    f"({s:.2f}, {v:.2f}, {(zip_bytes / z) / (single_bytes / s):.2f})"
                    for s, v, (_, z, _) in zip(single_times, verified_times, runs)))
        # The best of each (the least disturbed by other load on the machine).
        single_seconds = min(single_times) if single_times else 0.0
        cat_seconds = min(r[0] for r in runs)
        zip_seconds, zip_ttfb = min((r[1], r[2]) for r in runs)
        zip_rss.peak = max(peaks)

        def rate(nbytes, seconds):
            return nbytes / MiB / seconds

        print(f"\n{size_all / 1024**3:.2f} GiB in {args.files} files, gunicorn -w {args.workers}, curl to /dev/null")
        print(f"  cat of the files          {rate(size_all, cat_seconds):8.0f} MiB/s")
        if big is not None:
            print(f"  single file via gunicorn  {rate(single_bytes, single_seconds):8.0f} MiB/s   "
                  f"peak worker RSS {single_rss.peak_mib:.0f} MiB")
        print(f"  order zip via gunicorn    {rate(zip_bytes, zip_seconds):8.0f} MiB/s   "
              f"peak worker RSS {zip_rss.peak_mib:.0f} MiB  ({zip_bytes} bytes, {downloaded}/{args.files} "
              f"files marked DOWNLOADED)")
        print(f"  zip time to first byte    {zip_ttfb:8.2f} s   (of {zip_seconds:.2f} s)")
        if reference is not None:
            print(f"  {args.reference_files}-file zip peak RSS   {reference_rss.peak_mib:8.0f} MiB   "
                  f"(big zip: +{zip_rss.peak_mib - reference_rss.peak_mib:.0f} MiB, goal <= 30, and < 150 MiB)")
        if big is not None:
            verified_seconds = min(verified_times)
            print(f"  zip / single file         {rate(zip_bytes, zip_seconds) / rate(single_bytes, single_seconds):8.2f}"
                  "   (goal >= 0.9 for big files)")
            print(f"  verified stream / single  {rate(size_all, verified_seconds) / rate(single_bytes, single_seconds):8.2f}"
                  "   (the files read and CRC-checked by a bare WSGI app: the most a checked stream gets here)")
            print(f"  zip / verified stream     {rate(zip_bytes, zip_seconds) / rate(size_all, verified_seconds):8.2f}"
                  "   (what the portal adds to reading and checking the bytes)")
        print(f"  zip / cat                 {rate(zip_bytes, zip_seconds) / rate(size_all, cat_seconds):8.2f}"
              + ("   (no goal for big files: cat writes nowhere)" if big is not None
                 else "   (goal >= 0.8 for many small files)"))
        print(f"  idle worker RSS           {idle.peak_mib:8.0f} MiB")
        if args.resume:
            from orders.downloads.zip_manifest import manifest_dir
            from portal.catalog.storage import ORDER_CACHE, Locator

            manifests = Path(Locator().path(ORDER_CACHE, manifest_dir(project=project, order=zip_order)))
            check_resume(f"{base}/user/orders/{zip_order.pk}/download?scope=bench", token, data_dir,
                         lambda: OrderDataFile.unscoped_objects.filter(order=zip_order).update(
                             state=FileState.AVAILABLE), manifests)
    finally:
        for server in (gunicorn, verified_server):
            if server is not None:
                server.terminate()
                server.wait(timeout=30)
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
