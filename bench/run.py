"""Every bench of issue 13 (orders of a million files), each printing its ratio to a baseline
measured in the same run.

    .venv/bin/python bench/run.py [--quick] [--only zip,zip-big,order,paths] [--paths-only paging,csv,...]

Full sizes are the issue's (1,000,000 files; hours of a shared 2-core box, ~12 GiB of disk
under /tmp); `--quick` shrinks them for a laptop (a few minutes). PostgreSQL benches use
throw-away databases named after BENCH_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/orderly_bench_perf) and drop them at the end.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
KIB4_GIB = 4096 / 1024**3

SIZES = {
    # name: (full, quick); the big-file zip is 20 x 400 MiB, not 20 x 2 GiB (twice 40 GiB of disk)
    "small_files": (1_000_000, 20_000),
    "big_gib": (8.0, 2.0),  # 20 files of this total, and one file of it (twice on disk)
    "order_objects": (1_000_000, 50_000),
    "paths_files": (1_000_000, 100_000),
    "csv_orders": (1_000_000, 100_000),
    "delivery_files": (1_000_000, 5_000),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="zip,zip-big,order,paths")
    parser.add_argument("--paths-only", default="paging,metalink,csv,orderlist,delivery")
    args = parser.parse_args()
    size = {k: v[1 if args.quick else 0] for k, v in SIZES.items()}
    database = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/orderly_bench_perf")
    python = sys.executable
    runs = {
        "zip": [python, ROOT / "zip_bench.py", "--files", str(size["small_files"]), "--skip-single",
                "--gb", f"{size['small_files'] * KIB4_GIB:.9f}"],
        "zip-big": [python, ROOT / "zip_bench.py", "--files", "20", "--gb", str(size["big_gib"]),
                    "--reference-files", "0"],
        "order": [python, ROOT / "order_bench.py", "--objects", str(size["order_objects"])],
        "paths": [python, ROOT / "paths_bench.py", "--files", str(size["paths_files"]), "--orders",
                  str(size["csv_orders"]), "--delivery-files", str(size["delivery_files"]),
                  "--only", args.paths_only],
    }
    env = {**os.environ, "DATABASE_URL": database}
    failed = []
    for name in args.only.split(","):
        command = [str(part) for part in runs[name]]
        print(f"\n=== {name}: {' '.join(command[1:])}", flush=True)
        started = time.monotonic()
        code = subprocess.run(command, env=env if name in ("order", "paths") else None).returncode
        print(f"=== {name}: exit {code} after {time.monotonic() - started:.0f} s", flush=True)
        if code:
            failed.append(name)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
