"""Creating and completing an order of 100,000 objects / 200,000 ONLINE files, against a raw
PostgreSQL COPY of the same 200,000 rows.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/orderly_order_bench .venv/bin/python bench/order_bench.py

Uses a throw-away database (`<name>_order`, dropped at the end). Bulk-creates the catalog,
fills a basket with a query matching every object, then times, in this process:
  create   order_create (the POST /user/orders service: label, snapshot, empty basket)
  build    order_build (what the Celery task runs: files resolved, sub-orders, RUNNING)
  stage    every sub-order's staging (what the workers run), until the order is DONE
and, in the same run, `COPY ... FROM STDIN` of the order's 200,000 rows into a table with the
same columns and indexes. Prints both and the ratio. Options: --objects N, --files-per-object K.
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


def copy_baseline(order_id: int) -> tuple[float, int]:
    """Times a raw COPY of the order's rows into an identical (columns + indexes) table."""
    from orders.bulk import FILE_COLUMNS
    from orders.models import OrderDataFile

    table = OrderDataFile._meta.db_table
    columns = ", ".join(FILE_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {table} WHERE order_id = %s", [order_id])
        rows = cursor.fetchall()
        cursor.execute(f"DROP TABLE IF EXISTS bench_copy; CREATE TABLE bench_copy (LIKE {table} INCLUDING ALL)")
    t = time.perf_counter()
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY bench_copy ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    elapsed = time.perf_counter() - t
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_copy")
    return elapsed, len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--files-per-object", type=int, default=2)
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
            t = time.perf_counter()
            build.order_build(project=project, order_id=order.pk)
            t_build = time.perf_counter() - t
            t = time.perf_counter()
            while True:
                staging = list(SubOrder.objects.filter(order=order, state=SubOrderState.STAGING)
                               .values_list("id", flat=True))
                if not staging:
                    break
                for sub_id in staging:
                    suborder_stage(project=project, sub_order_id=sub_id)
            t_stage = time.perf_counter() - t
            order = Order.objects.get(pk=order.pk)
            assert order.status == "DONE", order.status
            assert OrderDataFile.objects.filter(order=order, state=FileState.AVAILABLE).count() == n_files
            subs = SubOrder.objects.filter(order=order).count()

        total = t_create + t_build + t_stage
        # The baseline is short and the machine may be shared: median of three runs.
        copies = [copy_baseline(order.pk) for _ in range(3)]
        t_copy, copied = sorted(copies)[1]
        print(f"order of {args.objects} objects / {n_files} files, {subs} sub-orders: DONE, "
              f"percentCompleted={order.percent_completed}, availableFilesCount={order.available_files_count}")
        print(f"  create {t_create * 1000:.0f} ms   build {t_build:.2f} s   stage {t_stage:.2f} s   "
              f"total {total:.2f} s")
        print(f"raw COPY of the same {copied} rows (same columns and indexes): {t_copy:.2f} s "
              f"(median of {', '.join(f'{c:.2f}' for c, _ in copies)})")
        print(f"ratio order create+complete / COPY: {total / t_copy:.1f}x  (build alone: {t_build / t_copy:.1f}x)")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
