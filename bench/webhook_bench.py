"""Webhook costs, with a baseline measured in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/orderly_webhook_bench .venv/bin/python bench/webhook_bench.py

Uses a throw-away database (`test_<name>`, dropped at the end; the embedded SQLite works too)
and a local HTTP receiver on 127.0.0.1 answering 204. Prints, for --messages N:
  publish, nobody listens   what every order/delivery status change pays when no endpoint exists
  publish, one endpoint     writing the outbox row (payload built, JSON) per event
  send                      one signed attempt each (claim, SSRF check, POST, attempt log)
  raw POST (baseline)       the same body POSTed with urllib3 on a new connection, nothing else
  one-query transaction     (baseline) a transaction with one indexed SELECT
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.test")
os.environ["WEBHOOKS_ALLOW_PRIVATE_NETWORKS"] = "true"

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402


class _Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def _rate(n: int, seconds: float) -> str:
    return f"{n / seconds:8.0f}/s ({seconds / n * 1e3:.2f} ms each)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500)
    n = parser.parse_args().messages
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"

    setup_test_environment()
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        import urllib3

        from portal.tenancy.models import Membership, Project, Role, User
        from portal.tenancy.scope import project_scope
        from portal.webhooks import services
        from portal.webhooks.models import WebhookMessage

        services._send_on_commit = lambda *a, **k: None  # this process plays the worker
        project = Project.objects.create(slug="bench", label="Bench")
        user = User.objects.create_user("bench@example.org", "pass-word-123")
        Membership.objects.create(user=user, project=project, role=Role.ADMIN)
        data = {"content": {"id": 1, "label": "bench", "status": "RUNNING", "datasetTasks": []}, "links": []}
        print(f"{n} events on {connection.vendor}, receiver {url}")
        with project_scope(project):
            t = time.perf_counter()
            for _ in range(n):
                with transaction.atomic():
                    Project.objects.filter(pk=project.pk).exists()
            print(f"one-query transaction     {_rate(n, time.perf_counter() - t)}  (baseline)")
            t = time.perf_counter()
            for _ in range(n):
                with transaction.atomic():
                    services.webhook_publish(project=project, event_type="order.created", data=data, audience=None)
            print(f"publish, nobody listens   {_rate(n, time.perf_counter() - t)}")
            services.webhook_endpoint_create(project=project, owner=user, url=url, event_types=["order.created"])
            t = time.perf_counter()
            for _ in range(n):
                with transaction.atomic():
                    services.webhook_publish(project=project, event_type="order.created", data=data,
                                             audience=[user.pk])
            print(f"publish, one endpoint     {_rate(n, time.perf_counter() - t)}")
            ids = list(WebhookMessage.unscoped_objects.order_by("id").values_list("id", flat=True))
            payload = WebhookMessage.unscoped_objects.get(pk=ids[0]).payload.encode()
            t = time.perf_counter()
            for message_id in ids:
                assert services.webhook_message_send(message_id=message_id) == "delivered"
            t_send = time.perf_counter() - t
            print(f"send                      {_rate(n, t_send)}")
            t = time.perf_counter()
            for _ in range(n):
                pool = urllib3.HTTPConnectionPool("127.0.0.1", server.server_address[1], retries=False)
                assert pool.urlopen("POST", "/hook", body=payload, redirect=False).status == 204
                pool.close()
            t_raw = time.perf_counter() - t
            print(f"raw POST (baseline)       {_rate(n, t_raw)}")
            print(f"send / raw POST: {t_send / t_raw:.1f}x the time")
    finally:
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)
        server.shutdown()


if __name__ == "__main__":
    main()
