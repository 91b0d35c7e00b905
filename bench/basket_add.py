"""How long POST /order/basket/selection takes for a query matching 100,000 objects.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/orderly_basket_bench .venv/bin/python bench/basket_add.py

Creates a throw-away database (`test_<name>`, dropped at the end), bulk-creates one dataset
of N matching objects with one RAWDATA file each (plus noise), then times the full HTTP
request through Django (auth, scope, parse, count, store, body) and prints the figures.
Options: --objects N (default 100000), --runs R (default 5).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.test")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/orderly_basket_bench")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

BATCH = 5000


def build_catalog(project, n_objects: int, n_noise: int):
    from portal.catalog.models import DataFile, DataObject, Dataset

    dataset = Dataset.unscoped_objects.create(project=project, ip_id=f"URN:AIP:DATASET:bench:{uuid.uuid4()}:V1",
                                              label="Bench dataset")
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    index_for = getattr(DataObject, "tags_index_for", None)

    def objects(count: int, tag: str, offset: int):
        for i in range(count):
            obj = DataObject(project=project, dataset=dataset, ip_id=f"URN:AIP:DATA:bench:{uuid.uuid4()}:V1",
                             label=f"{tag} {offset + i}", creation_date=start + dt.timedelta(seconds=offset + i),
                             tags=[tag], properties={"n": offset + i})
            if index_for is not None:
                obj.tags_index = index_for(obj.tags)
            yield obj

    made = 0
    for tag, count in (("bench", n_objects), ("noise", n_noise)):
        batch_objects = list(objects(count, tag, made))
        for i in range(0, len(batch_objects), BATCH):
            created = DataObject.unscoped_objects.bulk_create(batch_objects[i:i + BATCH])
            DataFile.unscoped_objects.bulk_create(
                DataFile(project=project, data_object=o, data_type="RAWDATA", filename=f"{o.label}.dat",
                         size=1000 + n % 7, checksum="0" * 32, sha256="0" * 64, crc32=0,
                         location=f"bench/{o.pk}") for n, o in enumerate(created)
            )
        made += count
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keepdb", action="store_true", help="keep the database (and its catalog) for next time")
    args = parser.parse_args()

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=args.keepdb)
    try:
        from rest_framework.test import APIClient

        from portal.tenancy.models import Membership, Project, Role, User
        from portal.tenancy.services import token_issue

        project, fresh = Project.objects.get_or_create(slug="bench", defaults={"label": "Bench"})
        user = User.objects.filter(email="bench@example.org").first() or User.objects.create_user(
            "bench@example.org", "pass-word-123")
        Membership.objects.get_or_create(user=user, project=project, defaults={"role": Role.REGISTERED_USER})
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_issue(user=user, project=project).raw_key}",
                           HTTP_SCOPE=project.slug)

        if fresh:
            t0 = time.perf_counter()
            build_catalog(project, args.objects, args.objects // 5)
            print(f"catalog: {args.objects} matching objects (+{args.objects // 5} others), one RAWDATA file "
                  f"each, built in {time.perf_counter() - t0:.1f}s on {connection.vendor}")

        url = "/api/v1/rs-order/order/basket/selection"
        body = {"selectAllOpenSearchRequest": "tags:bench"}
        first, second, first_db, second_db = [], [], [], []
        for _ in range(args.runs):
            client.delete("/api/v1/rs-order/order/basket")
            # a new basket, then a second dated selection (counted with the union of both)
            for timings, db_timings in ((first, first_db), (second, second_db)):
                with CaptureQueriesContext(connection) as queries:
                    t = time.perf_counter()
                    response = client.post(url, body, format="json")
                    timings.append(time.perf_counter() - t)
                db_timings.append(sum(float(q["time"]) for q in queries.captured_queries))
                assert response.status_code == 200, response.content[:300]
        selection = response.json()["content"]["datasetSelections"][0]
        assert selection["objectsCount"] == args.objects, selection["objectsCount"]
        print(f"POST /order/basket/selection ({selection['objectsCount']} objects, {selection['filesCount']} files, "
              f"{selection['filesSize']} bytes)")
        for name, timings, db_timings in (("into an empty basket:          ", first, first_db),
                                          ("second dated selection (union):", second, second_db)):
            print(f"  {name} median {statistics.median(timings) * 1000:.0f} ms (of which SQL "
                  f"{statistics.median(db_timings) * 1000:.0f} ms), max {max(timings) * 1000:.0f} ms "
                  f"over {args.runs} runs")
        print(f"  load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    finally:
        if not args.keepdb:
            connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
