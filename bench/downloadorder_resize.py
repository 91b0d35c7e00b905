"""A download order of N images resized to 256 px wide beside, in the same run, the same resizes
done by a plain Pillow loop; prints both throughputs and their ratio (aim: >= 0.7).

    .venv/bin/python bench/downloadorder_resize.py [--images 1000] [--width 1024] [--threads 0] [--keep]

Builds a throw-away embedded installation (SQLite, local disk) in a temporary data dir: one
project, one user, N ONLINE PNG images (--width x 3/4 --width, different pixels each). Then:
  1. the plain loop: open, resize to 256 px wide (the same Pillow call and filter as the
     conversion), save as PNG, one image after the other, in this process;
  2. the download order: POST-equivalent service call (targets, renditions, conversions),
     then the delivery preparation the Celery worker runs (copy and verify every source,
     convert in a pool of threads as large as the worker's cores, write the zip, sign, record
     the artifacts), timed from creation to `Completed`.
The plain loop's files are read once before timing, so both read from the page cache.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TARGET_WIDTH = 256


def make_png(path: Path, width: int, seed: int) -> bytes:
    """A photo-like PNG: gradients plus a little noise, different for every seed."""
    import io

    from PIL import Image, ImageChops

    height = width * 3 // 4
    base = Image.linear_gradient("L").resize((width, height))
    r = base.rotate(seed % 360, expand=False)
    g = base.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    b = Image.effect_noise((width, height), 32 + seed % 16)
    image = Image.merge("RGB", (r, g, ImageChops.add(b, base, scale=2.0)))
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def plain_loop(paths: list[Path], out_dir: Path) -> float:
    from PIL import Image

    from deliveries.conversions import _resized

    started = time.perf_counter()
    for i, path in enumerate(paths):
        with Image.open(path) as image:
            image.load()
            _resized(image, TARGET_WIDTH, None).save(out_dir / f"{i}.png", format="PNG")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--width", type=int, default=1024, help="source image width (default 1024)")
    parser.add_argument("--threads", type=int, default=0, help="conversion threads (default: every core)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="orderly-resize-bench-"))
    env = {"ORDERLY_DATA_DIR": str(data_dir), "DJANGO_SETTINGS_MODULE": "portal.settings.base",
           "DATABASE_URL": f"sqlite:///{data_dir / 'bench.sqlite3'}", "LOG_LEVEL": "WARNING"}
    if args.threads:
        env["ORDERLY_CONVERSION_THREADS"] = str(args.threads)
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import transaction

    from deliveries.downloadorders.models import DownloadOrder
    from deliveries.downloadorders.preparation import conversion_threads
    from deliveries.downloadorders.services import DownloadOrderRequest, download_order_create
    from deliveries.preparation import delivery_build
    from portal.catalog import storage
    from portal.catalog.models import DataFile, DataObject, Dataset, StorageTier
    from portal.tenancy.models import Membership, Project, Role, User
    from portal.tenancy.scope import project_scope

    try:
        call_command("migrate", verbosity=0)
        project = Project.objects.create(slug="bench", label="Bench",
                                         delivery_cache_capacity_bytes=100 * 1024**3)
        user = User.objects.create_user(email="bench@example.org", password="bench-pass-123")
        Membership.objects.create(user=user, project=project, role=Role.REGISTERED_USER)
        dataset = Dataset.unscoped_objects.create(project=project, ip_id="URN:AIP:DATASET:bench:1:V1", label="B")
        print(f"making {args.images} PNG images of {args.width} px...", flush=True)
        objects, files, paths, total = [], [], [], 0
        for i in range(args.images):
            objects.append(DataObject(project=project, dataset=dataset, ip_id=f"URN:AIP:DATA:bench:{i}:V1",
                                      label=f"image {i}", creation_date="2024-01-01T00:00:00Z"))
        DataObject.unscoped_objects.bulk_create(objects, batch_size=500)
        for i, obj in enumerate(DataObject.unscoped_objects.filter(project=project).order_by("id")):
            data = make_png(data_dir / "tmp.png", args.width, i)
            d = storage.bytes_digests(data)
            location = storage.location_for(project_slug=project.slug, sha256=d.sha256)
            storage.store_file(tier=StorageTier.ONLINE, location=location, source=data)
            files.append(DataFile(project=project, data_object=obj, data_type="RAWDATA", filename=f"image_{i}.png",
                                  mime_type="image/png", size=d.size, checksum=d.md5, sha256=d.sha256, crc32=d.crc32,
                                  tier=StorageTier.ONLINE, location=location))
            paths.append(storage.local_path(tier=StorageTier.ONLINE, location=location))
            total += d.size
        DataFile.unscoped_objects.bulk_create(files, batch_size=500)
        for path in paths:  # warm the page cache for both runs
            path.read_bytes()

        plain_dir = data_dir / "plain"
        plain_dir.mkdir()
        plain = plain_loop(paths, plain_dir)

        request = DownloadOrderRequest(
            selection_pool="entities", entities=tuple(o.ip_id for o in objects),
            global_config={dataset.ip_id: {"renditions": ["RAWDATA"],
                                           "conversions": [[{"type": "resize", "value": {"width": TARGET_WIDTH}}]]}})
        with project_scope(project):
            started = time.perf_counter()
            with transaction.atomic():
                order = download_order_create(project=project, owner=user, request=request)
            order = DownloadOrder.objects.select_related("delivery").get(pk=order.pk)
            delivery_build(project=project, delivery_id=order.delivery_id, generation=order.delivery.generation)
            ordered = time.perf_counter() - started
            order.refresh_from_db()
        assert order.status == "Completed", (order.status, order.additional_info)

        n, mb = args.images, total / 1e6
        print(f"{n} images, {mb:.1f} MB of PNG at {args.width} px -> {TARGET_WIDTH} px wide; "
              f"{os.cpu_count()} cores, {conversion_threads()} conversion threads")
        print(f"plain Pillow loop : {plain:7.2f} s  {n / plain:7.1f} images/s")
        print(f"download order    : {ordered:7.2f} s  {n / ordered:7.1f} images/s "
              "(create + copy/verify + convert + zip + artifacts)")
        print(f"ratio (download order / plain loop throughput): {plain / ordered:.2f}  (aim >= 0.7)")
    finally:
        if args.keep:
            print(f"kept {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
