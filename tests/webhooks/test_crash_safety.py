"""A real worker process killed with SIGKILL while it sends a webhook (after the change was
committed) loses nothing: the beat sweep hands the message to a new worker, which sends it
with the same webhook-id, and the message is logged as delivered once."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from standardwebhooks.webhooks import Webhook

from orders import services as order_services
from portal.tenancy.scope import project_scope
from portal.webhooks import services
from portal.webhooks.models import MessageStatus, WebhookAttempt, WebhookMessage
from tests.orders.conftest import fill_basket, make_objects
from tests.conftest import database_url, wait_until

ROOT = Path(__file__).resolve().parents[2]


def _start_worker(log: Path) -> subprocess.Popen:
    env = dict(os.environ, DATABASE_URL=database_url(), CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
               ORDERLY_DATA_DIR=str(settings.DATA_DIR), DJANGO_SETTINGS_MODULE="portal.settings.test",
               WEBHOOKS_ALLOW_PRIVATE_NETWORKS="true", WEBHOOKS_CLAIM_STALE_SECONDS="1",
               WEBHOOKS_TIMEOUT_SECONDS="60")
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool=solo", "--loglevel=WARNING",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_while_sending_still_delivers_once(member, private_hooks, receiver, tmp_path):
    if connection.vendor != "postgresql" or not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip("needs PostgreSQL and Redis shared with a worker process")
    from portal.celery import app

    app.control.purge()
    secret = member.client.post("/api/v1/webhooks", {"url": receiver.url, "events": ["order.created"]},
                                format="json").json()["secret"]
    receiver.hold = threading.Event()  # the first request hangs: the worker is mid-send
    fill_basket(member, make_objects(member.project, count=1))
    with project_scope(member.project):
        # committed at once: the message is in the outbox, its send task in the broker
        order = order_services.order_create(project=member.project, owner=member.user, label="watched")
    message = WebhookMessage.unscoped_objects.get()
    log = tmp_path / "worker.log"

    first = _start_worker(log)
    try:
        assert receiver.hold.wait(60), log.read_text()[-3000:]
    finally:
        # when the worker dies in the middle of the POST
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    receiver.hold = None
    receiver.release.set()
    assert WebhookMessage.unscoped_objects.get(pk=message.pk).status == MessageStatus.PENDING

    second = _start_worker(log)
    try:
        # then beat's sweep hands the orphaned message to the new worker
        time.sleep(1.5)
        assert services.webhooks_sweep(stale_after=timedelta(seconds=1)) == 1
        wait_until(lambda: WebhookMessage.unscoped_objects.get(pk=message.pk).status == MessageStatus.DELIVERED, 60,
              "the message to be delivered")
        time.sleep(0.5)
        assert services.webhooks_sweep(stale_after=timedelta(seconds=1)) == 0  # nothing left behind
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(timeout=30)

    # the receiver saw the same message (one id, one body) and can verify both
    assert len(receiver.received) == 2
    assert {r.headers["webhook-id"] for r in receiver.received} == {message.msg_id}
    assert len({r.body for r in receiver.received}) == 1
    assert Webhook(secret).verify(receiver.received[-1].body, receiver.received[-1].headers)["data"]["content"][
        "id"] == order.pk
    assert WebhookMessage.unscoped_objects.count() == 1
    assert list(WebhookAttempt.unscoped_objects.values_list("number", "status_code")) == [(1, 200)]
