"""Creating and completing an order of 100,000 objects / 200,000 ONLINE files, against a raw
PostgreSQL COPY of the same 200,000 rows.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/orderly_order_bench .venv/bin/python bench/order_bench.py

Uses a throw-away database (`<name>_order`, dropped at the end). Bulk-creates the catalog,
fills a basket with a query matching every object, then times, in this process:
  create   order_create (the POST /user/orders service: label, snapshot, empty basket)
  build    order_build (what the Celery task runs: files resolved, sub-orders, RUNNING)
  stage    every sub-order's staging (what the workers run), until the order is DONE
  mark     every file marked DOWNLOADED in the zip download's batches (printed apart, per file)
and, in the same run, `COPY ... FROM STDIN` of the order's 200,000 rows into a table with the
same columns, indexes and storage parameters (fillfactor). Prints both and the ratio, and the
peak RSS of each phase. Options: --objects N, --files-per-object K.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.test")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/orderly_order_bench")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

BATCH = 5000


def build_catalog(project, n_objects: int, files_per_object: int):
    from portal.catalog.models import DataFile, DataObject, Dataset

    dataset = Dataset.unscoped_objects.create(project=project, ip_id=f"URN:AIP:DATASET:bench:{uuid.uuid4()}:V1",
                                              label="Bench dataset")
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    for offset in range(0, n_objects, BATCH):
        created = DataObject.unscoped_objects.bulk_create([
            DataObject(project=project, dataset=dataset, ip_id=f"URN:AIP:DATA:bench:{uuid.uuid4()}:V1",
                       label=f"bench {i}", creation_date=start + dt.timedelta(seconds=i), tags=["bench"])
            for i in range(offset, min(n_objects, offset + BATCH))])
        DataFile.unscoped_objects.bulk_create([
            DataFile(project=project, data_object=o, data_type="RAWDATA", filename=f"{o.label}_{k}.dat",
                     size=1000 + k, checksum="0" * 32, sha256="0" * 64, crc32=0, tier="ONLINE",
                     location=f"bench/{o.pk}/{k}")
            for o in created for k in range(files_per_object)])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return dataset


def copy_baseline(order_id: int, packed: bool = False) -> tuple[float, int]:
    """Times a raw COPY of the order's rows into an identical (columns, indexes, fillfactor) table.

    The rows go through a temporary file (COPY ... TO, then the timed COPY ... FROM in 1 MiB
    blocks): flat memory in this process at a million objects. `packed`: without the table's
    storage parameters (fillfactor 100), for reference."""
    import tempfile

    from orders.bulk import FILE_COLUMNS
    from orders.models import OrderDataFile

    table = OrderDataFile._meta.db_table
    columns = ", ".join(FILE_COLUMNS)
    with tempfile.TemporaryFile(dir=os.environ.get("TMPDIR")) as data:
        with connection.cursor() as cursor:
            with cursor.cursor.copy(f"COPY (SELECT {columns} FROM {table} WHERE order_id = {int(order_id)}) "
                                    "TO STDOUT") as copy:
                for block in copy:
                    data.write(block)
            cursor.execute(f"SELECT count(*) FROM {table} WHERE order_id = %s", [order_id])
            rows = cursor.fetchone()[0]
            # The same storage parameters too (LIKE copies none): the table's fillfactor.
            cursor.execute("SELECT coalesce(array_to_string(reloptions, ', '), '') FROM pg_class "
                           "WHERE oid = %s::regclass", [table])
            options = "" if packed else cursor.fetchone()[0]
            cursor.execute(f"DROP TABLE IF EXISTS bench_copy; CREATE TABLE bench_copy (LIKE {table} INCLUDING ALL)"
                           + (f" WITH ({options})" if options else ""))
        data.seek(0)
        t = time.perf_counter()
        with connection.cursor() as cursor:
            with cursor.cursor.copy(f"COPY bench_copy ({columns}) FROM STDIN") as copy:
                while block := data.read(1 << 20):
                    copy.write(block)
        elapsed = time.perf_counter() - t
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_copy")
    return elapsed, rows


def _peak_rss_reset() -> None:
    """Resets this process's peak RSS (VmHWM), so each phase reports its own peak (Linux)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _rss_mib(field: str) -> float:
    """VmRSS (now) or VmHWM (peak since the last reset) in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def mark_downloaded(project, order, batch: int) -> tuple[float, int]:
    """Marks every file of the order DOWNLOADED the way a zip download does (batches of the
    zip's MARK_BATCH_FILES ids, each in its own transaction). Returns (seconds, files)."""
    from orders import progress
    from orders.models import OrderDataFile

    files = OrderDataFile.objects.filter(project=project, order=order)
    elapsed, marked, last = 0.0, 0, 0
    while True:
        ids = list(files.filter(position__gt=last).order_by("position").values_list("id", "position")[:batch])
        if not ids:
            return elapsed, marked
        last = ids[-1][1]
        t = time.perf_counter()
        marked += progress.order_files_mark_downloaded(project=project, order=order, file_ids=[i for i, _ in ids])
        elapsed += time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--files-per-object", type=int, default=2)
    parser.add_argument("--skip-mark", action="store_true", help="do not time the DOWNLOADED marking")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("bench/order_bench.py compares with PostgreSQL COPY: set DATABASE_URL to PostgreSQL")

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.settings_dict["TEST"]["NAME"] = f"{old_name}_order"
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        from basket.services import SelectionRequest, basket_add_selection
        from orders import build, dispatch, services
        from orders.models import FileState, Order, OrderDataFile, SubOrder, SubOrderState
        from orders.staging import suborder_stage
        from portal.tenancy.models import Membership, Project, Role, User
        from portal.tenancy.scope import project_scope

        # No broker in the loop: this process plays the worker, one sub-order after another.
        dispatch.task_on_commit = lambda *a: None
        project = Project.objects.create(slug="bench", label="Bench", user_max_suborders=1000)
        user = User.objects.create_user("bench@example.org", "pass-word-123")
        Membership.objects.create(user=user, project=project, role=Role.REGISTERED_USER)
        t0 = time.perf_counter()
        build_catalog(project, args.objects, args.files_per_object)
        n_files = args.objects * args.files_per_object
        print(f"catalog: {args.objects} objects, {n_files} ONLINE files, built in "
              f"{time.perf_counter() - t0:.1f}s on PostgreSQL {connection.pg_version}")

        with project_scope(project):
            basket_add_selection(project=project, owner=user, selection=SelectionRequest(query='dataset:"Bench dataset"'))
            t = time.perf_counter()
            order = services.order_create(project=project, owner=user, label="bench")
            t_create = time.perf_counter() - t
            rss_before = _rss_mib("VmRSS")
            _peak_rss_reset()
            t = time.perf_counter()
            build.order_build(project=project, order_id=order.pk)
            t_build = time.perf_counter() - t
            rss_build = _rss_mib("VmHWM")
            _peak_rss_reset()
            t = time.perf_counter()
            while True:
                staging = list(SubOrder.objects.filter(order=order, state=SubOrderState.STAGING)
                               .values_list("id", flat=True))
                if not staging:
                    break
                for sub_id in staging:
                    suborder_stage(project=project, sub_order_id=sub_id)
            t_stage = time.perf_counter() - t
            rss_stage = _rss_mib("VmHWM")
            order = Order.objects.get(pk=order.pk)
            assert order.status == "DONE", order.status
            assert OrderDataFile.objects.filter(order=order, state=FileState.AVAILABLE).count() == n_files
            subs = SubOrder.objects.filter(order=order).count()

        total = t_create + t_build + t_stage
        # The baseline is short and the machine may be shared: median of three runs.
        copies = [copy_baseline(order.pk) for _ in range(3)]
        t_copy, copied = sorted(copies)[1]
        t_packed = sorted(copy_baseline(order.pk, packed=True) for _ in range(3))[1][0]
        from orders.downloads.archive import MARK_BATCH_FILES

        with project_scope(project):
            _peak_rss_reset()
            t_mark, marked = mark_downloaded(project, order, MARK_BATCH_FILES) if not args.skip_mark else (0.0, 0)
            rss_mark = _rss_mib("VmHWM")
            with connection.cursor() as cursor:
                # This process's own counts are flushed at most once a second: flush them now.
                cursor.execute("SELECT pg_stat_force_next_flush()")
                cursor.execute("SELECT pg_stat_clear_snapshot()")
                cursor.execute("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relid = %s::regclass",
                               [OrderDataFile._meta.db_table])
                updates, hot = cursor.fetchone()
            assert marked == (0 if args.skip_mark else n_files), marked
        print(f"order of {args.objects} objects / {n_files} files, {subs} sub-orders: DONE, "
              f"percentCompleted={order.percent_completed}, availableFilesCount={order.available_files_count}")
        print(f"  create {t_create * 1000:.0f} ms   build {t_build:.2f} s   stage {t_stage:.2f} s   "
              f"total {total:.2f} s")
        print(f"raw COPY of the same {copied} rows (same columns, indexes, fillfactor): {t_copy:.2f} s "
              f"(median of {', '.join(f'{c:.2f}' for c, _ in copies)})")
        print(f"  (for reference, COPY into the same table packed, fillfactor 100: {t_packed:.2f} s; "
              f"ratio to it {total / t_packed:.1f}x)")
        print(f"ratio order create+complete / COPY: {total / t_copy:.1f}x  (build alone: {t_build / t_copy:.1f}x)")
        print(f"DOWNLOADED marking (zip batches of {MARK_BATCH_FILES}): {t_mark:.2f} s, "
              f"{t_mark / max(marked, 1) * 1e6:.1f} us per file ({t_mark / t_copy:.1f}x the COPY); order file updates "
              f"{updates}, of which HOT {hot}")
        print(f"RSS of this process before the build {rss_before:.0f} MiB; peak during build {rss_build:.0f} MiB, "
              f"staging {rss_stage:.0f} MiB, marking {rss_mark:.0f} MiB")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
