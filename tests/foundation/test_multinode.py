"""Scale-out for real: one gunicorn web process, two `celery worker` processes and one `celery
beat`, each with its OWN data dir (no shared disk), sharing only PostgreSQL, a Redis and an S3
endpoint (moto). An order of NEARLINE files is placed and downloaded through the web process;
one worker is SIGKILLed mid-staging and Redis is restarted (its queue lost) mid-order: beat's
stuck sweep hands the work to the surviving worker, the order completes, every file ends in
exactly one state and every byte is verified."""
from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest
from django.conf import settings

from orders.models import FileState, Order, OrderDataFile, OrderStatus, SubOrder, SubOrderState
from portal.catalog.models import DataType, StorageTier
from tests.catalog.factories import DataFileFactory, DataObjectFactory, DatasetFactory
from tests.conftest import database_url, free_port, make_member, wait_for_http, wait_until

ROOT = Path(__file__).resolve().parents[2]
FILES = 48
SIZE = 40_000

pytestmark = [pytest.mark.worker, pytest.mark.multinode, pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="needs PostgreSQL shared by processes")]


class Cluster:
    """The processes of the test, each in its own process group (stopped by their ids)."""

    def __init__(self, tmp: Path, redis_port: int, web_port: int):
        self.tmp, self.redis_port, self.web_port = tmp, redis_port, web_port
        self.processes: dict[str, subprocess.Popen] = {}

    def env(self, name: str) -> dict[str, str]:
        data_dir = self.tmp / name  # no shared disk: every node its own data dir
        data_dir.mkdir(exist_ok=True)
        return dict(os.environ, DJANGO_SETTINGS_MODULE="portal.settings.test", ORDERLY_DATA_DIR=str(data_dir),
                    DATABASE_URL=database_url(), CELERY_BROKER_URL=f"redis://127.0.0.1:{self.redis_port}/0",
                    SECRET_KEY="multinode-test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
                    ORDERLY_ONLINE_STORAGE_URL=settings.ONLINE_STORAGE_URL,
                    ORDERLY_NEARLINE_STORAGE_URL=settings.NEARLINE_STORAGE_URL,
                    ORDERLY_CACHE_STORAGE_URL=settings.CACHE_STORAGE_URL,
                    PORTAL_BASE_URL=f"http://127.0.0.1:{self.web_port}",
                    ORDERLY_NEARLINE_DELAY_SECONDS="0.15", ORDER_STAGING_STALE_SECONDS="3",
                    ORDER_STUCK_SWEEP_SECONDS="1", LOG_LEVEL="WARNING")

    def start(self, name: str, args: list[str], env: dict | None = None) -> None:
        log = (self.tmp / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(args, cwd=ROOT, env=env or self.env(name), stdout=log,
                                                stderr=subprocess.STDOUT, start_new_session=True)

    def start_redis(self) -> None:
        self.start("redis", ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], env=dict(os.environ))
        deadline = time.monotonic() + 10
        while subprocess.run(["redis-cli", "-p", str(self.redis_port), "ping"], capture_output=True).stdout \
                != b"PONG\n":
            assert time.monotonic() < deadline, "redis did not start"
            time.sleep(0.1)

    def start_worker(self, name: str) -> None:
        self.start(name, [sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool=solo", "-n", f"{name}@%h",
                          "--loglevel=WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"])

    def kill(self, name: str, sig=signal.SIGKILL) -> None:
        process = self.processes.pop(name)
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.kill(name, signal.SIGTERM if name != "redis" else signal.SIGKILL)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-2500:]}" for p in sorted(self.tmp.glob("*.log")))


def _get(url: str, token: str, project: str, **headers) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}", "scope": project, **headers})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _post(url: str, token: str, project: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
        "Authorization": f"Bearer {token}", "scope": project, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, json.loads(response.read() or b"{}")


def _states(order_id: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for state in OrderDataFile.unscoped_objects.filter(order_id=order_id).values_list("state", flat=True):
        out[state] = out.get(state, 0) + 1
    return out


@pytest.mark.django_db(transaction=True)
def test_web_and_workers_on_separate_nodes_share_only_database_redis_and_s3(s3_storage, project, tmp_path):
    project.suborder_max_files, project.user_max_suborders = 8, 10
    project.save()
    member = make_member(project)
    dataset = DatasetFactory(project=project, label="Tape scenes")
    contents: dict[str, bytes] = {}
    for n in range(FILES):
        content = hashlib.sha256(str(n).encode()).digest() * (SIZE // 32)
        name = f"scene_{n:03d}.dat"
        DataFileFactory(data_object=DataObjectFactory(dataset=dataset), data_type=DataType.RAWDATA,
                        tier=StorageTier.NEARLINE, filename=name, content=content)
        contents[name] = content

    cluster = Cluster(tmp_path, free_port(), free_port())
    web = f"http://127.0.0.1:{cluster.web_port}"
    api = f"{web}/api/v1/rs-order"
    try:
        cluster.start_redis()
        cluster.start("web", [sys.executable, "-m", "gunicorn", "portal.wsgi:application", "-b",
                              f"127.0.0.1:{cluster.web_port}", "-w", "2", "--threads", "4", "--timeout", "120"])
        cluster.start_worker("worker1")
        cluster.start_worker("worker2")
        cluster.start("beat", [sys.executable, "-m", "celery", "-A", "portal", "beat", "--loglevel=WARNING",
                               "-s", str(tmp_path / "beat" / "schedule")])
        wait_for_http(f"{web}/healthz", timeout=60)
        status, _, body = _get(f"{web}/readyz", member.token, project.slug)
        assert status == 200 and json.loads(body)["storage"] == "ok", body

        # The order is placed through the web process; the workers build and stage it.
        assert _post(f"{api}/order/basket/selection", member.token, project.slug,
                     {"selectAllOpenSearchRequest": 'dataset:"Tape scenes"'})[0] == 200
        status, created = _post(f"{api}/user/orders", member.token, project.slug, {"label": "multi-node"})
        assert status == 201, created
        order_id = created["content"]["id"]

        # Mid-staging: one worker dies without warning, then Redis restarts (its queue is lost).
        wait_until(lambda: _states(order_id).get(FileState.AVAILABLE, 0) >= 6, 90, "staging to start",
                   cluster.logs)
        cluster.kill("worker1")
        cluster.kill("redis")
        killed_at = _states(order_id)
        assert killed_at.get(FileState.PENDING, 0) > 0, f"staging had already finished: {killed_at}"
        cluster.start_redis()

        wait_until(lambda: Order.unscoped_objects.get(pk=order_id).status == OrderStatus.DONE, 150,
              "the order to complete", cluster.logs)
        states = _states(order_id)
        assert states == {FileState.AVAILABLE: FILES}, states
        files = OrderDataFile.unscoped_objects.filter(order_id=order_id)
        assert files.count() == FILES and files.values("data_file_id").distinct().count() == FILES
        assert set(SubOrder.unscoped_objects.filter(order_id=order_id).values_list("state", flat=True)) == {
            SubOrderState.STAGED}
        assert len(s3_storage.keys(f"cache/order-cache/{project.slug}/{order_id}/")) == FILES

        # Downloads through the web process: every listed file, byte for byte, then the zip.
        status, _, body = _get(f"{api}/user/orders/{order_id}/files/available?size=100", member.token, project.slug)
        listing = json.loads(body)["content"]
        assert status == 200 and len(listing) == FILES
        first = listing[0]
        status, headers, part = _get(first["uri"], member.token, project.slug, Range="bytes=100-1099")
        assert status == 206 and part == contents[first["filename"]][100:1100]
        status, headers, blob = _get(f"{api}/user/orders/{order_id}/download", member.token, project.slug)
        assert status == 200 and len(blob) == int(headers["Content-Length"])
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            assert {name: archive.read(name) for name in contents} == contents
        # marked by the web process once the last chunk was taken
        wait_until(lambda: _states(order_id) == {FileState.DOWNLOADED: FILES}, 30, "the files marked DOWNLOADED",
                   cluster.logs)
    finally:
        cluster.stop_all()
