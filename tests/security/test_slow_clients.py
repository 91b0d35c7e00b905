"""Slow readers do not starve the server `manage.py serve` runs (issue 11, item 8).

Twenty clients start a file download each and then stop reading (as a client on a slow link
does, only more so): each holds one server thread, blocked on a full socket. The server must
still answer /healthz and an API call. With serve's former model (one worker, 16 threads) the
sixteen first readers held every thread and /healthz waited until they hung up. (Latency
figures: bench/slow_clients.py.)
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

from portal.management.commands.serve import WEB_THREADS, WEB_WORKERS, web_command
from tests.conftest import free_port, wait_for_http

ROOT = Path(__file__).resolve().parents[2]
READERS = 20

SETUP = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path
    import django
    django.setup()
    from django.core.management import call_command
    from portal.catalog.models import DataFile
    from portal.tenancy.models import Project, User
    from portal.tenancy.services import token_issue
    data = Path(os.environ["ORDERLY_DATA_DIR"])
    (data / "big.dat").write_bytes(os.urandom(1 << 20) * 16)
    (data / "manifest.json").write_text(json.dumps({"datasets": [{"label": "D", "objects": [
        {"label": "O", "files": [{"dataType": "RAWDATA", "path": "big.dat", "tier": "ONLINE"}]}]}]}))
    call_command("migrate", verbosity=0)
    call_command("create_project", "slow")
    call_command("add_member", "slow", "reader@example.org", "--role", "REGISTERED_USER")
    call_command("load_catalog", "slow", str(data / "manifest.json"), verbosity=0)
    project = Project.objects.get(slug="slow")
    token = token_issue(user=User.objects.get(email="reader@example.org"), project=project).raw_key
    data_file = DataFile.unscoped_objects.select_related("data_object").get(project=project)
    print(json.dumps({"token": token, "path": f"/api/v1/rs-catalog/{data_file.data_object.ip_id}/files/"
                                              f"{data_file.checksum}?scope=slow"}))
""")


def _stalled_reader(port: int, path: str, token: str) -> socket.socket:
    """Starts a download, reads its first bytes, then reads nothing more."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    return sock


def test_stalled_downloads_leave_the_server_answering(tmp_path):
    assert WEB_WORKERS * WEB_THREADS > 100  # room for a hundred slow readers (README sizing)
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    env.update(ORDERLY_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="portal.settings.base", LOG_LEVEL="WARNING")
    setup = subprocess.run([sys.executable, "-c", SETUP], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=300)
    assert setup.returncode == 0, setup.stderr
    target = json.loads(setup.stdout.strip().splitlines()[-1])
    port = free_port()
    server = subprocess.Popen(web_command(host="127.0.0.1", port=port), cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    readers = []
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        for _ in range(READERS):
            readers.append(_stalled_reader(port, target["path"], target["token"]))
        for reader in readers:  # every download is under way (and stalls once buffers are full)
            assert reader.recv(64).startswith(b"HTTP/1.1 200")

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=20) as response:
            assert json.loads(response.read())["status"] == "ok"
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/me?scope=slow",
                                         headers={"Authorization": f"Bearer {target['token']}"})
        with urllib.request.urlopen(request, timeout=20) as response:
            assert json.loads(response.read())["email"] == "reader@example.org"
    finally:
        for reader in readers:
            reader.close()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
