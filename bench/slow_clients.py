"""Slow readers against the web server of `manage.py serve`: does everyone else still get answers?

    .venv/bin/python bench/slow_clients.py [--clients 0,20,100,200] [--seconds 10] [--rate 100]
                                           [--no-baseline-server]

Builds a throw-away embedded installation (SQLite, local disk) in a temporary data dir: one
project, one user with a bearer token, an order of one 64 MiB ONLINE file (AVAILABLE). For each
N in --clients, N slow readers (threads in a child process, 127.0.0.1 only) each start the
order's zip download (GET /user/orders/{id}/download) and read it at --rate KB/s with a small
receive buffer, so every one of them holds the server's attention for the whole round; meanwhile
a second client asks GET /healthz and GET /user/orders/{id} (an API call with a database read and
the token check) in turn, back to back, and records their latencies. It prints p50 / p99 / max per N,
first for the server `serve` runs now (portal.management.commands.serve.web_command), then, as the
baseline of the same run, for serve's former model (one gthread worker with 16 threads).
Every loop is bounded by --seconds; readers stop at the end of their round.
"""
from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.zip_bench import MiB, bench_installation, free_port, write_file  # noqa: E402

FORMER_MODEL = {"workers": 1, "threads": 16}


def slow_reader(port: int, path: str, token: str, rate_bps: int, until: float, started: list) -> None:
    """Reads one response at about `rate_bps` until `until` (monotonic), then hangs up."""
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        sock.settimeout(max(1.0, until - time.monotonic()))
        sock.connect(("127.0.0.1", port))
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
        chunk, tick = max(1024, rate_bps // 10), 0.1
        first = True
        while time.monotonic() < until:
            data = sock.recv(chunk)
            if not data:
                break
            if first:
                started.append(data.startswith(b"HTTP/1.1 200"))
                first = False
            time.sleep(tick)
    except OSError:
        started.append(False)
    finally:
        sock.close()


def reader_process(port: int, path: str, token: str, clients: int, rate_bps: int, seconds: float,
                   ready, result) -> None:
    until = time.monotonic() + seconds
    started: list[bool] = []
    threads = [threading.Thread(target=slow_reader, args=(port, path, token, rate_bps, until, started), daemon=True)
               for _ in range(clients)]
    for thread in threads:
        thread.start()
        time.sleep(0.002)  # not all in the same millisecond
    ready.set()
    for thread in threads:
        thread.join(timeout=seconds + 5)
    result.put(sum(started))


def probe(requests: list[tuple[str, dict]], seconds: float) -> list[list[float]]:
    """Latencies (ms) of each request, asked in turn back to back for `seconds` (at most 2000
    rounds); a request that fails or times out counts as 60 s."""
    latencies: list[list[float]] = [[] for _ in requests]
    deadline = time.monotonic() + seconds
    rounds = 0
    while time.monotonic() < deadline and rounds < 2000:
        rounds += 1
        for (url, headers), found in zip(requests, latencies):
            started = time.monotonic()
            try:
                with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as response:
                    response.read()
                found.append((time.monotonic() - started) * 1000)
            except OSError:
                found.append(60_000.0)
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def run_round(port: int, token: str, order_id: int, clients: int, rate_bps: int, seconds: float) -> dict:
    zip_path = f"/api/v1/rs-order/user/orders/{order_id}/download?scope=bench"
    ready, result = multiprocessing.Event(), multiprocessing.Queue()
    readers = multiprocessing.Process(target=reader_process, args=(port, zip_path, token, clients, rate_bps,
                                                                   seconds + 2, ready, result))
    readers.start()
    ready.wait(30)
    time.sleep(1.0)  # every reader has its response under way
    base = f"http://127.0.0.1:{port}"
    health, api = probe([(f"{base}/healthz", {}),
                         (f"{base}/api/v1/rs-order/user/orders/{order_id}?scope=bench",
                          {"Authorization": f"Bearer {token}"})], seconds)
    readers.join(timeout=seconds + 30)
    if readers.is_alive():
        readers.terminate()
    reading = result.get(timeout=5) if not result.empty() else 0
    return {"clients": clients, "reading": reading, "health": health, "api": api}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="0,20,100,200", help="slow readers per round (default 0,20,100,200)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each round (default 10)")
    parser.add_argument("--rate", type=int, default=100, help="KB/s per slow reader (default 100)")
    parser.add_argument("--no-baseline-server", action="store_true",
                        help="skip the former serving model (1 worker x 16 threads)")
    args = parser.parse_args()
    counts = [int(n) for n in args.clients.split(",")]
    assert all(0 <= n <= 200 for n in counts), "at most 200 slow readers"

    data_dir = Path(tempfile.mkdtemp(prefix="orderly-slow-bench-"))
    env = {**os.environ, "ORDERLY_DATA_DIR": str(data_dir), "DJANGO_SETTINGS_MODULE": "portal.settings.base",
           "DATABASE_URL": f"sqlite:///{data_dir / 'bench.sqlite3'}", "LOG_LEVEL": "WARNING"}
    env.pop("CELERY_BROKER_URL", None)
    os.environ.update(env)
    import django

    django.setup()
    from django.utils import timezone

    from orders.models import DatasetTask, FileState, Order, OrderDataFile, OrderStatus, SubOrder, SubOrderState
    from portal.catalog import storage
    from portal.catalog.models import DataFile, DataObject, StorageTier
    from portal.management.commands.serve import WEB_THREADS, WEB_WORKERS, web_command

    try:
        project, user, token, dataset = bench_installation()
        tmp = data_dir / "gen"
        write_file(tmp, 64 * MiB, 1)
        digests = storage.file_digests(tmp)
        location = storage.location_for(project_slug=project.slug, sha256=digests.sha256)
        target = storage.local_path(tier=StorageTier.ONLINE, location=location)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)
        now = timezone.now()
        obj = DataObject.unscoped_objects.create(project=project, dataset=dataset, label="o",
                                                 ip_id="URN:AIP:DATA:bench:1:V1", creation_date=now)
        data_file = DataFile.unscoped_objects.create(
            project=project, data_object=obj, data_type="RAWDATA", filename="scene.dat", size=digests.size,
            checksum=digests.md5, sha256=digests.sha256, crc32=digests.crc32, tier=StorageTier.ONLINE,
            location=location)
        order = Order.unscoped_objects.create(
            project=project, owner=user, label="slow readers", creation_date=now, status=OrderStatus.DONE,
            expiration_date=now + dt.timedelta(days=3), status_date=now, percent_completed=100,
            available_files_count=1)
        task = DatasetTask.unscoped_objects.create(project=project, order=order, dataset=dataset,
                                                   dataset_label="B", dataset_ip_id=dataset.ip_id)
        sub = SubOrder.unscoped_objects.create(project=project, order=order, dataset_task=task, owner=user,
                                               state=SubOrderState.STAGED)
        OrderDataFile.unscoped_objects.create(
            project=project, order=order, sub_order=sub, data_file=data_file, product_id=obj.ip_id,
            data_type="RAWDATA", filename="scene.dat", mime_type=data_file.mime_type, size=data_file.size,
            checksum=data_file.checksum, sha256=data_file.sha256, crc32=data_file.crc32, tier=data_file.tier,
            location=location, state=FileState.AVAILABLE)

        models = [("serve now", {"workers": WEB_WORKERS, "threads": WEB_THREADS})]
        if not args.no_baseline_server:
            models.append(("serve before (baseline)", FORMER_MODEL))
        print(f"{len(counts)} rounds of {args.seconds:.0f} s per serving model; slow readers read a zip at "
              f"{args.rate} KB/s; probes: GET /healthz and GET /user/orders/{{id}} (token, one order read) in turn\n")
        print(f"{'server':<32} {'N':>4} {'reading':>7} | {'healthz p50':>11} {'p99':>8} {'max':>8} {'n':>5} | "
              f"{'API p50':>8} {'p99':>8} {'max':>8} {'n':>5}   (ms)")
        for name, model in models:
            port = free_port()
            command = web_command(host="127.0.0.1", port=port, **model)
            command[command.index("--access-logfile") + 1] = "/dev/null"
            server = subprocess.Popen(command + ["--log-level", "error"], cwd=ROOT, env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                for _ in range(200):
                    try:
                        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
                        break
                    except OSError:
                        time.sleep(0.1)
                label = f"{name} ({model['workers']}x{model['threads']})"
                for clients in counts:
                    figures = run_round(port, token, order.pk, clients, args.rate * 1000, args.seconds)
                    health, api = figures["health"], figures["api"]
                    print(f"{label:<32} {clients:>4} {figures['reading']:>7} | "
                          f"{statistics.median(health):>11.1f} {percentile(health, 0.99):>8.1f} {max(health):>8.1f} "
                          f"{len(health):>5} | {statistics.median(api):>8.1f} {percentile(api, 0.99):>8.1f} "
                          f"{max(api):>8.1f} {len(api):>5}", flush=True)
            finally:
                server.terminate()
                server.wait(timeout=30)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
