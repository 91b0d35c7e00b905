"""The receiver printed in the README verifies a real delivery (and rejects a forged one)."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import urllib3

from portal.webhooks.models import WebhookEndpoint
from portal.webhooks.services import webhook_endpoint_ping
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def _readme_receiver() -> str:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"A receiver that verifies deliveries.*?```python\n(.*?)```", readme, re.S).group(1)
    assert len(block.strip().splitlines()) <= 10
    return block


@pytest.mark.django_db
def test_the_readme_receiver_verifies_a_delivery(member, private_hooks, run_tasks, tmp_path):
    port = free_port()
    script = tmp_path / "receiver.py"
    script.write_text(_readme_receiver())
    response = member.client.post("/api/v1/webhooks", {"url": f"http://127.0.0.1:{port}/",
                                                       "events": ["order.created"]}, format="json")
    secret = response.json()["secret"]
    process = subprocess.Popen([sys.executable, str(script)], env=dict(os.environ, WEBHOOK_SECRET=secret,
                                                                       PORT=str(port)),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        forged = urllib3.request("POST", f"http://127.0.0.1:{port}/", body=b'{"type":"ping"}', headers={
            "webhook-id": "msg_forged", "webhook-timestamp": str(int(time.time())),
            "webhook-signature": "v1,AAAA"})
        assert forged.status == 400
        endpoint = WebhookEndpoint.unscoped_objects.get()
        with run_tasks():
            message = webhook_endpoint_ping(project=member.project, endpoint=endpoint)
        message.refresh_from_db()
        assert message.status == "delivered" and message.last_status_code == 204
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0]
    assert f"{message.msg_id} ping" in output
