"""How long `load_catalog` takes for a 100,000-object manifest (and for loading it again).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/orderly_catalog_bench .venv/bin/python bench/catalog_load.py

Creates a throw-away database (`test_<name>`, dropped at the end) and a temporary data dir,
writes a JSON manifest of N objects with one RAWDATA file each (the files are a handful of
small real files reused, so the figure measures the catalog load, not disk copies), then
times the first load and an idempotent reload and prints the figures.
Options: --objects N (default 100000), --csv (CSV manifest instead of JSON).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.test")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/orderly_catalog_bench")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402


def write_manifest(folder: Path, n_objects: int, as_csv: bool) -> Path:
    files = []
    for i in range(5):
        path = folder / "files" / f"scene_{i}.dat"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"bench file {i}\n".encode() * (200 + i))
        files.append(f"files/{path.name}")
    if as_csv:
        manifest = folder / "manifest.csv"
        with open(manifest, "w") as out:
            out.write("datasetLabel,label,creationDate,tags,properties.n,dataType,path,tier\n")
            for i in range(n_objects):
                tier = "NEARLINE" if i % 10 == 0 else "ONLINE"
                out.write(f"Bench {i % 3},Object {i},2024-01-01T00:00:00Z,bench;t{i % 7},{i},"
                          f"RAWDATA,{files[i % 5]},{tier}\n")
        return manifest
    datasets = [{"label": f"Bench {d}", "objects": []} for d in range(3)]
    for i in range(n_objects):
        datasets[i % 3]["objects"].append({
            "label": f"Object {i}", "creationDate": "2024-01-01T00:00:00Z", "tags": ["bench", f"t{i % 7}"],
            "properties": {"n": i},
            "files": [{"dataType": "RAWDATA", "path": files[i % 5], "tier": "NEARLINE" if i % 10 == 0 else "ONLINE"}],
        })
    manifest = folder / "manifest.json"
    manifest.write_text(json.dumps({"datasets": datasets}))
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--csv", action="store_true")
    args = parser.parse_args()

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        from portal.catalog.models import DataFile, DataObject
        from portal.tenancy.scope import project_scope
        from portal.tenancy.services import project_create

        project = project_create(slug="bench")
        with tempfile.TemporaryDirectory(prefix="orderly-bench-") as folder:
            manifest = write_manifest(Path(folder), args.objects, args.csv)
            timings = []
            for _ in range(2):
                started = time.perf_counter()
                call_command("load_catalog", "bench", str(manifest), stdout=io.StringIO())
                timings.append(time.perf_counter() - started)
            with project_scope(project):
                counts = DataObject.objects.count(), DataFile.objects.count()
        vendor = connection.vendor
        print(f"load_catalog ({vendor}, {'CSV' if args.csv else 'JSON'}): {counts[0]} objects, "
              f"{counts[1]} files")
        print(f"  first load: {timings[0]:.1f} s ({counts[0] / timings[0]:,.0f} objects/s)")
        print(f"  reload (idempotent, no change): {timings[1]:.1f} s")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
