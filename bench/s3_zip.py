"""Order zip vs a single object of the same total size, both on S3 (moto), through gunicorn.

    .venv/bin/python bench/s3_zip.py [--mb 256] [--files 20] [--workers 2] [--keep]

Starts an S3 endpoint (`moto_server`, in memory) on 127.0.0.1 and a throw-away embedded
installation (SQLite) whose ONLINE tier and caches are on that endpoint
(ORDERLY_*_STORAGE_URL=s3://...): an order of N ONLINE objects totalling --mb MiB and a second
order of ONE object of the same total size. Then, in one run, gunicorn -> curl of
  1. the single object (GET /orders/files/{id}: one streamed GET),
  2. the order zip (GET /user/orders/{id}/download: one streamed GET per entry),
and prints MiB/s for each, their ratio, and the peak RSS of the gunicorn workers (nothing is
spooled to disk: the RSS stays flat whatever the size).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from zip_bench import MiB, ROOT, RssWatcher, curl, free_port, order_with_files, write_file


def wait_for(url: str) -> None:
    for _ in range(300):
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=256, help="total size in MiB (default 256)")
    parser.add_argument("--files", type=int, default=20, help="objects in the zip order (default 20)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="orderly-s3-bench-"))
    (data_dir / "static").mkdir()
    s3_port = free_port()
    endpoint = f"http://127.0.0.1:{s3_port}"
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    urls = {name: f"s3://bench/{prefix}?endpoint_url={endpoint}&region=us-east-1"
            for name, prefix in (("ORDERLY_ONLINE_STORAGE_URL", "online"), ("ORDERLY_NEARLINE_STORAGE_URL", "nearline"),
                                 ("ORDERLY_CACHE_STORAGE_URL", "cache"))}
    env = {**os.environ, **urls, "ORDERLY_DATA_DIR": str(data_dir), "DJANGO_SETTINGS_MODULE": "portal.settings.base",
           "DATABASE_URL": f"sqlite:///{data_dir / 'bench.sqlite3'}", "LOG_LEVEL": "WARNING",
           "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
    env.pop("CELERY_BROKER_URL", None)
    os.environ.update(env)
    gunicorn = None
    try:
        wait_for(endpoint)
        import boto3
        import django

        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench")
        django.setup()
        from django.core.management import call_command

        from orders.models import OrderDataFile
        from portal.catalog import storage
        from portal.catalog.models import Dataset, StorageTier
        from portal.tenancy.models import Membership, Project, Role, User
        from portal.tenancy.services import token_issue

        call_command("migrate", verbosity=0)
        project = Project.objects.create(slug="bench", label="Bench")
        user = User.objects.create_user(email="bench@example.org", password="bench-pass-123")
        Membership.objects.create(user=user, project=project, role=Role.REGISTERED_USER)
        token = token_issue(user=user, project=project).raw_key
        dataset = Dataset.unscoped_objects.create(project=project, ip_id="URN:AIP:DATASET:bench:1:V1", label="B")

        def store(index: int, size: int):
            tmp = data_dir / f"gen-{index}"
            write_file(tmp, size, index)
            digests = storage.file_digests(tmp)
            location = storage.location_for(project_slug=project.slug, sha256=digests.sha256)
            storage.store_file(tier=StorageTier.ONLINE, location=location, source=tmp, size=digests.size)
            tmp.unlink()
            return digests, location

        def order_of(indexes, size: int, label: str):
            return order_with_files(project, user, dataset, label, indexes, lambda i: store(i, size))

        per_file = args.mb * MiB // args.files
        print(f"uploading {args.files} objects of {per_file / MiB:.1f} MiB and one of "
              f"{per_file * args.files / MiB:.0f} MiB to {endpoint} ...", flush=True)
        zip_order = order_of(range(args.files), per_file, "zip order")
        size_all = per_file * args.files
        big = OrderDataFile.unscoped_objects.get(order=order_of([10**9], size_all, "single object order"))
        single_id = big.pk

        port = free_port()
        gunicorn = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "portal.wsgi:application", "-b", f"127.0.0.1:{port}",
             "-w", str(args.workers), "--timeout", "600", "--log-level", "warning"], cwd=ROOT, env=env)
        wait_for(f"http://127.0.0.1:{port}/healthz")
        base = f"http://127.0.0.1:{port}/api/v1/rs-order"
        with RssWatcher(gunicorn.pid) as single_rss:
            code, single_bytes, single_seconds = curl(f"{base}/orders/files/{single_id}?scope=bench", token)
        assert code == 200 and single_bytes == big.size, (code, single_bytes)
        with RssWatcher(gunicorn.pid) as zip_rss:
            code, zip_bytes, zip_seconds = curl(f"{base}/user/orders/{zip_order.pk}/download?scope=bench", token)
        assert code == 200 and zip_bytes > size_all, (code, zip_bytes)

        def rate(nbytes, seconds):
            return nbytes / MiB / seconds

        print(f"\n{size_all / MiB:.0f} MiB in {args.files} objects on S3 (moto), gunicorn -w {args.workers}, "
              "curl to /dev/null")
        print(f"  single object via gunicorn  {rate(single_bytes, single_seconds):8.1f} MiB/s   "
              f"peak worker RSS {single_rss.peak_mib:.0f} MiB")
        print(f"  order zip via gunicorn      {rate(zip_bytes, zip_seconds):8.1f} MiB/s   "
              f"peak worker RSS {zip_rss.peak_mib:.0f} MiB  ({zip_bytes} bytes)")
        print(f"  zip / single object         {rate(zip_bytes, zip_seconds) / rate(single_bytes, single_seconds):8.2f}")
    finally:
        if gunicorn is not None:
            gunicorn.terminate()
            gunicorn.wait(timeout=30)
        moto.terminate()
        moto.wait(timeout=30)
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
