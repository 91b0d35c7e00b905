import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_runs_web_worker_and_beat_on_the_embedded_default_and_stops_on_ctrl_c(tmp_path):
    # The embedded default: no DATABASE_URL, no broker URL, everything under the data dir.
    env = {k: v for k, v in _clean_env().items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update(ORDERLY_DATA_DIR=str(tmp_path / "data"), DJANGO_SETTINGS_MODULE="portal.settings.base")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env,
                   check=True, capture_output=True, timeout=300)
    port = _free_port()
    server = subprocess.Popen([sys.executable, "manage.py", "serve", "--port", str(port), "--concurrency", "1"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        body = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and body is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    body = response.read().decode()
            except OSError:
                time.sleep(0.5)
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
    assert (tmp_path / "data" / "orderly.sqlite3").exists()
