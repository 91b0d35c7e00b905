import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
# Set by the browser tests for Playwright's event loop; never part of a deployment.
TEST_ONLY_ENV = ("DJANGO_ALLOW_ASYNC_UNSAFE",)


def _clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in TEST_ONLY_ENV}


def test_check_deploy_is_clean_with_production_settings():
    env = {
        **_clean_env(),
        "DJANGO_SETTINGS_MODULE": "portal.settings.production",
        "SECRET_KEY": "x" * 20 + "production-like-secret-key-0123456789-abcdefghijklmnop",
        "ALLOWED_HOSTS": "orderly.example.org",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.fixture(scope="module")
def embedded(tmp_path_factory) -> tuple[dict, Path]:
    """The embedded default (no DATABASE_URL, no broker URL, everything under the data dir), migrated."""
    data = tmp_path_factory.mktemp("embedded") / "data"
    env = {k: v for k, v in _clean_env().items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update(ORDERLY_DATA_DIR=str(data), DJANGO_SETTINGS_MODULE="portal.settings.base")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env,
                   check=True, capture_output=True, timeout=300)
    return env, data


def _wait_for_health(port: int) -> str | None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                return response.read().decode()
        except OSError:
            time.sleep(0.5)
    return None


def test_serve_runs_web_worker_and_beat_on_the_embedded_default_and_stops_on_ctrl_c(embedded):
    env, data = embedded
    port = free_port()
    server = subprocess.Popen([sys.executable, "manage.py", "serve", "--port", str(port), "--concurrency", "1"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        body = _wait_for_health(port)
        assert body is not None, "the server never answered /healthz"
        assert '"status": "ok"' in body
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/docs/", timeout=5) as response:
            assert b"swagger-ui" in response.read()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css", timeout=5) as response:
            assert response.status == 200
    finally:
        server.send_signal(signal.SIGINT)
        output, _ = server.communicate(timeout=60)
    assert server.returncode == 0, output
    assert "Stopped." in output
    assert (data / "orderly.sqlite3").exists()


def _descendants(root: int) -> dict[int, str]:
    """{pid: start time} of every process below `root` (Linux /proc)."""
    parents: dict[int, list[int]] = {}
    starts: dict[int, str] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        parents.setdefault(int(fields[1]), []).append(pid)
        starts[pid] = fields[19]
    found, todo = {}, [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            found[child] = starts[child]
            todo.append(child)
    return found


def _still_running(pid: int, start: str) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[19] == start and fields[0] not in ("Z", "X")  # same process, not a zombie


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="walks the process tree in /proc")
def test_sigterm_stops_everything_serve_started_even_with_a_stuck_request(embedded):
    env, _ = embedded
    port = free_port()
    server = subprocess.Popen([sys.executable, "manage.py", "serve", "--port", str(port), "--concurrency", "1",
                               "--stop-timeout", "3"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    stuck = socket.create_connection(("127.0.0.1", port), timeout=60) if _wait_for_health(port) else None
    try:
        assert stuck is not None, "the server never answered /healthz"
        # A request whose body never comes: its thread blocks in a read for as long as we wait.
        stuck.sendall(b"POST /api/v1/rs-authentication/oauth/token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n"
                      b"grant_type=pass")
        time.sleep(1)
        started = _descendants(server.pid)
        assert len(started) >= 3, started  # gunicorn master and worker, the Celery worker...
        server.send_signal(signal.SIGTERM)
        began = time.monotonic()
        output, _ = server.communicate(timeout=60)
        took = time.monotonic() - began
    finally:
        if stuck is not None:
            stuck.close()
        if server.poll() is None:
            server.kill()
    assert "Stopped." in output, output
    left = [pid for pid, start in started.items() if _still_running(pid, start)]
    assert not left, f"still running after serve returned: {left}\n{output}"
    assert took < 3 + 20, took  # the bounded graceful stop, then the kill

