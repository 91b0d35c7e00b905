"""The whole path on a real Celery worker (Redis in CI): 201 PENDING at once, then the
background build and staging bring the order to DONE, and the creation mail is sent."""
from __future__ import annotations

import time

import pytest
from django.core import mail

from portal.catalog.models import StorageTier

from .conftest import ORDERS_URL, fill_basket, make_objects


def _wait_for_status(member, order_id, statuses, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = member.client.get(f"{ORDERS_URL}/{order_id}").json()["content"]
        if content["status"] in statuses:
            return content
        time.sleep(0.1)
    raise AssertionError(f"order still {content['status']}")


@pytest.mark.worker
def test_an_order_completes_on_a_live_worker(celery_live_worker, member):
    objects = make_objects(member.project, count=3) + make_objects(member.project, count=2,
                                                                  tier=StorageTier.NEARLINE, label="Tape")
    fill_basket(member, objects)

    response = member.client.post(ORDERS_URL, {"label": "live"}, format="json")
    assert response.status_code == 201 and response.json()["content"]["status"] == "PENDING"

    content = _wait_for_status(member, response.json()["content"]["id"], {"DONE", "DONE_WITH_WARNING", "FAILED"})
    assert content["status"] == "DONE"
    assert (content["percentCompleted"], content["availableFilesCount"]) == (100, 5)
    assert sorted(t["filesCount"] for t in content["datasetTasks"]) == [2, 3]
    deadline = time.monotonic() + 10
    while len(mail.outbox) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert {m.subject.split('"')[-1].strip() for m in mail.outbox} == {"created", "is ready"}
