"""Every read path of a huge order against a baseline measured in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/orderly_bench_perf .venv/bin/python bench/paths_bench.py \
        [--files 1000000] [--orders 1000000] [--delivery-files 1000000] [--only paging,metalink,...]

Uses a throw-away PostgreSQL database (`<name>_paths`, dropped at the end) and a temporary
data dir. The catalog is loaded with COPY; the big order is built by the real build
(`dataset_task_build`, one INSERT ... SELECT) and its files made AVAILABLE, then, in process
through Django's test client (the same harness for each figure and its baseline):

  paging     files/available and the dataset file list: page `files/50 - 1` (page 10,000 at
             500,000+ files) of the big order vs page 0 of a 1,000-file order (median of 15)
  metalink   metalink 3 and 4 of the big order: files/s and peak RSS growth, vs a 1,000-file order
  csv        GET /orders/csv of --orders orders vs `COPY (SELECT ...) TO STDOUT` of the same columns
  orderlist  GET /user/orders?size=50 (55 orders) vs GET /api/v1/me: requests/s, query counts
  delivery   delivery preparation of a --delivery-files order of 4 KiB files vs `sha256sum` of them

Peak RSS growth is this process's VmRSS sampled every 20 ms during the step, minus its RSS
just before; the small reference runs first.
"""
from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA_DIR = Path(tempfile.mkdtemp(prefix="orderly-paths-bench-"))
(DATA_DIR / "static").mkdir()
os.environ["ORDERLY_DATA_DIR"] = str(DATA_DIR)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.test")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/orderly_bench_perf")
os.environ["LOG_LEVEL"] = "WARNING"

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402

MiB = 1024 * 1024
SCOPE = "bench"


def rss_kib(pid: int | None = None) -> int:
    for line in Path(f"/proc/{pid or os.getpid()}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class PeakRss:
    """Peak VmRSS growth (MiB) of this process while the block runs."""

    def __init__(self):
        self.base = self.peak = rss_kib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_kib())
            time.sleep(0.02)

    def __enter__(self):
        self.base = self.peak = rss_kib()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_kib())

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.base) / 1024


def copy_rows(table: str, columns: list[str], rows) -> None:
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


class World:
    """The project, its user and token, and orders built by the real build."""

    def __init__(self):
        from orders import dispatch
        from portal.tenancy.models import Membership, Project, Role, User
        from portal.tenancy.services import token_issue

        dispatch.task_on_commit = lambda *a, **k: None  # no broker: nothing runs behind our back
        self.project = Project.objects.create(slug=SCOPE, label="Bench", user_max_suborders=100_000,
                                              suborder_max_files=100_000, suborder_max_bytes=10**15)
        self.user = User.objects.create_user(email="bench@example.org", password="bench-pass-123")
        Membership.objects.create(user=self.user, project=self.project, role=Role.ADMIN)
        self.token = token_issue(user=self.user, project=self.project).raw_key
        self.datasets = 0
        from django.test import Client

        self.client = Client(HTTP_AUTHORIZATION=f"Bearer {self.token}")

    def get(self, path: str, **params):
        params.setdefault("scope", SCOPE)
        return self.client.get(path, params)

    def catalog(self, n: int, *, files=None):
        """A dataset of n objects with one file each; `files(i)` -> (size, crc32, sha256, location)."""
        from portal.catalog.models import DataFile, DataObject, Dataset

        self.datasets += 1
        ds = Dataset.unscoped_objects.create(project=self.project, ip_id=f"URN:AIP:DATASET:bench:{self.datasets}:V1",
                                             label=f"Bench {self.datasets}")
        now = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
        copy_rows(DataObject._meta.db_table,
                  ["project_id", "dataset_id", "ip_id", "label", "creation_date", "tags", "tags_index", "properties"],
                  ((self.project.pk, ds.pk, f"URN:AIP:DATA:b{self.datasets}:{i}:V1", f"o{i}", now, "[]", "", "{}")
                   for i in range(n)))
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id FROM {DataObject._meta.db_table} WHERE dataset_id = %s ORDER BY id", [ds.pk])
            object_ids = [r[0] for r in cursor.fetchall()]
        files = files or (lambda i: (4096, 0, "0" * 64, f"bench/{self.datasets}/{i}"))

        def rows():
            for i, oid in enumerate(object_ids):
                size, crc, sha, location = files(i)
                yield (self.project.pk, oid, "RAWDATA", f"granule_{i:07d}.dat", "application/octet-stream", size,
                       "0" * 32, sha, crc, "ONLINE", location)

        copy_rows(DataFile._meta.db_table, ["project_id", "data_object_id", "data_type", "filename", "mime_type",
                                            "size", "checksum", "sha256", "crc32", "tier", "location"], rows())
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        return ds

    def order(self, ds, label: str):
        """An order of every file of `ds`, built by the real build, all files AVAILABLE, DONE."""
        from orders.build import dataset_task_build, order_build
        from orders.models import Order, OrderDataFile
        from orders.progress import order_progress_refresh
        from portal.catalog.models import DataFile
        from portal.tenancy.scope import project_scope

        now = dt.datetime.now(dt.UTC)
        with project_scope(self.project):
            order = Order.objects.create(project=self.project, owner=self.user, label=label, creation_date=now,
                                         expiration_date=now + dt.timedelta(days=3), status_date=now)

            def resolver(*, project, order):
                dataset_task_build(project=project, order=order, dataset=ds, dataset_ip_id=ds.ip_id,
                                   dataset_label=ds.label, files=DataFile.objects.filter(data_object__dataset=ds))

            order_build(project=self.project, order_id=order.pk, resolver=resolver)
            OrderDataFile.objects.filter(order=order).update(state="AVAILABLE")
            order_progress_refresh(project=self.project, order_id=order.pk)
            order.refresh_from_db()
            assert order.status == "DONE", order.status
        with connection.cursor() as cursor:
            # What autovacuum does soon after a million-row insert (plans need the new rows' statistics).
            cursor.execute(f"ANALYZE {OrderDataFile._meta.db_table}")
        with project_scope(self.project):
            order.task_id = order.dataset_tasks.get().pk
        return order


def timed(fn, runs: int) -> float:
    """Median seconds of `runs` calls (after one warm-up)."""
    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def consume(response) -> int:
    n = 0
    for chunk in response.streaming_content:
        n += len(chunk)
    return n


# --- rows ----------------------------------------------------------------------------------

def bench_paging(w: World, small, big, n_big: int) -> None:
    page = min(10_000, n_big // 50 - 1)
    base = "/api/v1/rs-order"
    for title, small_path, big_path in (
            ("files/available", f"{base}/orders/{small.pk}/files/available",
             f"{base}/orders/{big.pk}/files/available"),
            ("dataset file list", f"{base}/orders/{small.pk}/dataset/{small.task_id}/files",
             f"{base}/orders/{big.pk}/dataset/{big.task_id}/files")):
        first = w.get(big_path, page=page, size=50).json()
        assert len(first["content"]) == 50 and first["metadata"]["totalElements"] == n_big, first["metadata"]
        t_small = timed(lambda: w.get(small_path, page=0, size=50), 15)
        t_big = timed(lambda: w.get(big_path, page=page, size=50), 15)
        with CaptureQueriesContext(connection) as q:
            w.get(big_path, page=page, size=50)
        print(f"  {title:18} page 0 of 1,000 files {t_small * 1000:6.1f} ms   page {page:,} of {n_big:,} files "
              f"{t_big * 1000:6.1f} ms   ratio {t_big / t_small:5.2f} (goal <= 1.5)   {len(q)} queries")


def bench_metalink(w: World, small, big, n_big: int) -> None:
    for version in (3, 4):
        path = f"/api/v1/rs-order/user/orders/{{}}/metalink/download"
        from portal.files.metalink import METALINK3_CONTENT_TYPE, METALINK4_CONTENT_TYPE

        accept = METALINK3_CONTENT_TYPE if version == 3 else METALINK4_CONTENT_TYPE
        rates, growth = [], []
        for order, n in ((small, 1000), (big, n_big)):
            with PeakRss() as rss:
                t = time.perf_counter()
                response = w.client.get(path.format(order.pk), {"scope": SCOPE},
                                        HTTP_ACCEPT=accept)
                assert response.status_code == 200, response.status_code
                size = consume(response) if response.streaming else len(response.content)
                elapsed = time.perf_counter() - t
            rates.append(n / elapsed)
            growth.append(rss.growth_mib)
        print(f"  metalink {version}         1,000 files {rates[0]:9,.0f} files/s, RSS +{growth[0]:5.1f} MiB   "
              f"{n_big:,} files {rates[1]:9,.0f} files/s, RSS +{growth[1]:5.1f} MiB ({size / MiB:.0f} MiB, "
              f"streamed={response.streaming})")


def bench_csv(w: World, n_orders: int) -> None:
    from orders.models import Order
    from orders.selectors import CSV_COLUMNS

    now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    copy_rows(Order._meta.db_table,
              ["project_id", "owner_id", "label", "creation_date", "expiration_date", "status", "status_date",
               "percent_completed", "files_in_error_count", "available_files_count", "waiting_for_user",
               "frontend_url", "message", "selection", "files_count", "files_size", "idempotency_key"],
              ((w.project.pk, w.user.pk, f"csv {i}", now + dt.timedelta(seconds=i), now + dt.timedelta(days=3),
                "DONE", now, 100, 0, 0, False, "", "", "[]", 10, 10_000, "") for i in range(n_orders)))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    table = Order._meta.db_table
    user_table = w.user._meta.db_table
    cols = ", ".join(f"u.email" if c == "owner__email" else f"o.{c}" for c in CSV_COLUMNS)
    sql = (f"COPY (SELECT {cols} FROM {table} o JOIN {user_table} u ON u.id = o.owner_id "
           f"WHERE o.project_id = {w.project.pk} ORDER BY o.id) TO STDOUT (FORMAT csv, DELIMITER ';')")

    def copy_out():
        n = 0
        with connection.cursor() as cursor:
            with cursor.cursor.copy(sql) as copy:
                for data in copy:
                    n += len(data)
        return n

    t = time.perf_counter()
    copied = copy_out()
    t_copy = time.perf_counter() - t
    with PeakRss() as rss:
        t = time.perf_counter()
        response = w.get("/api/v1/rs-order/orders/csv")
        assert response.status_code == 200, response.status_code
        size = consume(response)
        t_csv = time.perf_counter() - t
    print(f"  csv export        {n_orders:,} orders: COPY TO STDOUT {t_copy:6.2f} s ({copied / MiB:.0f} MiB)   "
          f"GET /orders/csv {t_csv:6.2f} s ({size / MiB:.0f} MiB), RSS +{rss.growth_mib:.1f} MiB   "
          f"ratio {t_copy / t_csv:4.2f} of COPY (goal >= 0.5)")
    Order.unscoped_objects.filter(project=w.project, label__startswith="csv ").delete()


def bench_orderlist(w: World) -> None:
    from orders.models import Order

    now = dt.datetime.now(dt.UTC)
    owned = Order.unscoped_objects.filter(project=w.project, owner=w.user).count()
    Order.unscoped_objects.bulk_create([
        Order(project=w.project, owner=w.user, label=f"list {i}", creation_date=now, status="DONE", status_date=now,
              expiration_date=now + dt.timedelta(days=3)) for i in range(max(0, 55 - owned))])
    runs = 300

    def once(path, **params) -> float:
        t = time.perf_counter()
        response = w.get(path, **params)
        elapsed = time.perf_counter() - t
        assert response.status_code == 200, response.status_code
        return elapsed

    # Interleaved, one request of each at a time, medians: the box is shared and its load moves.
    once("/api/v1/me")
    once("/api/v1/rs-order/user/orders", size=50)
    me_times, order_times = [], []
    for _ in range(runs):
        me_times.append(once("/api/v1/me"))
        order_times.append(once("/api/v1/rs-order/user/orders", size=50))
    me = 1 / statistics.median(me_times)
    orders = 1 / statistics.median(order_times)
    counts = []
    for size in (5, 50):
        with CaptureQueriesContext(connection) as q:
            w.get("/api/v1/rs-order/user/orders", size=size)
        counts.append(len(q))
    print(f"  order list        GET /api/v1/me {me:6.0f} req/s   GET /user/orders?size=50 {orders:6.0f} req/s   "
          f"ratio {orders / me:4.2f} (goal >= 0.5)   queries size=5: {counts[0]}, size=50: {counts[1]}")


def bench_delivery(w: World, n_files: int, profile: bool = False, repeat: int = 1) -> None:
    from portal.catalog import storage

    w.project.delivery_cache_capacity_bytes = 10**13
    w.project.save()
    block = bytearray(os.urandom(4096))

    def write_files(n: int, tag: int) -> tuple[list, Path]:
        facts = []
        listing = DATA_DIR / f"delivery-{tag}.txt"
        with open(listing, "w") as paths:
            for i in range(n):
                block[:12] = tag.to_bytes(4, "little") + i.to_bytes(8, "little")
                data = bytes(block)
                import hashlib

                sha = hashlib.sha256(data).hexdigest()
                location = storage.location_for(project_slug=SCOPE, sha256=sha)
                target = storage.local_path(tier="ONLINE", location=location)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                facts.append((len(data), zlib.crc32(data), sha, location))
                paths.write(f"{target}\n")
        return facts, listing

    results = []
    for tag, n in enumerate((1000, n_files), start=1):
        facts, listing = write_files(n, tag)
        ds = w.catalog(n, files=lambda i: facts[i])
        order = w.order(ds, f"delivery {n}")
        del facts
        subprocess.run(f"xargs -d '\\n' -a {listing} cat > /dev/null", shell=True, check=True)  # warm cache
        # Rounds of the big order (`repeat`), each against its own baselines: the box's speed drifts.
        for _ in range(repeat if n == n_files else 1):
            results.append((n, *_delivery_round(w, order, listing, profile and n == n_files)))
    for n, t_sha, t_copy, t_prep, growth in results:
        print(f"  delivery          {n:,} files of 4 KiB: sha256sum {t_sha:6.2f} s   preparation {t_prep:6.2f} s   "
              f"ratio {t_sha / t_prep:4.2f} of sha256sum (goal >= 0.7)   RSS +{growth:.1f} MiB   "
              f"(cat into one file {t_copy:6.2f} s: ratio {t_copy / t_prep:4.2f})")
    if repeat > 1:
        ratios = [t_sha / t_prep for n, t_sha, _, t_prep, _ in results if n == n_files]
        print(f"  delivery          {n_files:,} files, {len(ratios)} rounds: ratio median "
              f"{statistics.median(ratios):4.2f} (min {min(ratios):4.2f}, max {max(ratios):4.2f})")


def _delivery_round(w: World, order, listing: Path, profile: bool) -> tuple[float, float, float, float]:
    """sha256sum of the order's files, the same files cat into one file, then a delivery of the
    order prepared: (sha256sum s, cat s, preparation s, RSS growth MiB)."""
    from deliveries import codes as delivery_codes
    from deliveries.models import Delivery
    from deliveries.preparation import delivery_build
    from deliveries.selectors import ORDER, Target
    from deliveries.services import delivery_prepare
    from portal.tenancy.scope import project_scope

    # The set-up's writes reach the disk first: at a million files they are 4 GB still being
    # written back, which would slow the preparation's own writes (the package) but not
    # sha256sum (it only reads).
    os.sync()
    t = time.perf_counter()
    subprocess.run(f"xargs -d '\\n' -a {listing} sha256sum > /dev/null", shell=True, check=True)
    t_sha = time.perf_counter() - t
    # What the disk allows for the package's writes: the same files copied into one file
    # (written back before the preparation starts, then deleted).
    copy = DATA_DIR / "delivery-copy.bin"
    t = time.perf_counter()
    subprocess.run(f"xargs -d '\\n' -a {listing} cat > {copy}", shell=True, check=True)
    t_copy = time.perf_counter() - t
    copy.unlink()
    os.sync()
    with project_scope(w.project):
        # (`force`: a round after the first prepares the done delivery again, a new generation.)
        delivery = delivery_prepare(project=w.project, user=w.user, force=True, target=Target(
            kind=ORDER, catalog_id=f"{delivery_codes.ORDER_PREFIX}{order.pk}", order_id=order.pk))
        profiler = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
        with PeakRss() as rss:
            t = time.perf_counter()
            if profiler is not None:
                profiler.enable()
            status = delivery_build(project=w.project, delivery_id=delivery.pk, generation=delivery.generation)
            if profiler is not None:
                profiler.disable()
            t_prep = time.perf_counter() - t
        if profiler is not None:
            import pstats

            stats = pstats.Stats(profiler)
            stats.sort_stats("tottime").print_stats(25)
            stats.sort_stats("cumulative").print_stats(40)
        assert status == "done", (status, Delivery.objects.get(pk=delivery.pk).error_message)
    shutil.rmtree(DATA_DIR / "deliveries", ignore_errors=True)
    return t_sha, t_copy, t_prep, rss.growth_mib


ROWS = ("paging", "metalink", "csv", "orderlist", "delivery")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1_000_000, help="files of the big order")
    parser.add_argument("--orders", type=int, default=1_000_000, help="orders in the CSV export")
    parser.add_argument("--delivery-files", type=int, default=1_000_000)
    parser.add_argument("--delivery-repeat", type=int, default=1,
                        help="rounds of the big delivery after one set-up (each timed against its own baselines)")
    parser.add_argument("--only", default=",".join(ROWS))
    parser.add_argument("--profile", action="store_true",
                        help="delivery: cProfile of the big preparation (top 25 by tottime)")
    parser.add_argument("--keep-db", action="store_true", help="leave the database (to EXPLAIN); drop it yourself")
    args = parser.parse_args()
    rows = args.only.split(",")
    if connection.vendor != "postgresql":
        sys.exit("bench/paths_bench.py compares with PostgreSQL COPY: set DATABASE_URL to PostgreSQL")
    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.settings_dict["TEST"]["NAME"] = f"{old_name}_paths"
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        w = World()
        print(f"PostgreSQL {connection.pg_version}, data dir {DATA_DIR}", flush=True)
        if "paging" in rows or "metalink" in rows:
            t = time.perf_counter()
            small = w.order(w.catalog(1000), "small")
            big = w.order(w.catalog(args.files), "big")
            print(f"  (orders of 1,000 and {args.files:,} files built in {time.perf_counter() - t:.0f} s)", flush=True)
            if "paging" in rows:
                bench_paging(w, small, big, args.files)
            if "metalink" in rows:
                bench_metalink(w, small, big, args.files)
        if "orderlist" in rows:
            bench_orderlist(w)
        if "csv" in rows:
            bench_csv(w, args.orders)
        if "delivery" in rows:
            bench_delivery(w, args.delivery_files, args.profile, args.delivery_repeat)
    finally:
        if not args.keep_db:
            connection.creation.destroy_test_db(old_name, verbosity=0)
        shutil.rmtree(DATA_DIR, ignore_errors=True)


if __name__ == "__main__":
    main()
