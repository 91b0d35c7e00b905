"""The whole path on a real Celery worker (Redis in CI): prepare answers at once, the worker
copies, verifies and zips, and the status reaches done with downloadable, signed artifacts."""
from __future__ import annotations

import hashlib
import time

import pytest
from django.conf import settings

from deliveries import signing
from portal.catalog.models import DataType, StorageTier

from .conftest import SIGNING_KEY_URL, make_object, prepare, status_of


def _wait(member, catalog_id, timeout=30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = status_of(member, catalog_id).json()
        if body["status"] in ("done", "error"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"delivery still {body['status']}")


@pytest.mark.worker
def test_a_delivery_is_prepared_by_a_live_worker(celery_live_worker, member):
    obj = make_object(member.project, files=((DataType.RAWDATA, 200_000), (DataType.QUICKLOOK_SD, 3000)))
    tape = make_object(member.project, files=((DataType.RAWDATA, 5000),), tier=StorageTier.NEARLINE,
                       dataset=obj.dataset)

    first = prepare(member, obj.dataset.ip_id)
    assert first.status_code == 200 and first.json()["status"] == "pending"
    body = _wait(member, obj.dataset.ip_id)

    assert body["status"] == "done" and body["progress"] == 100, body
    assert len(body["artifacts"]) == 4
    public_pem = member.client.get(SIGNING_KEY_URL).content
    for artifact in body["artifacts"]:
        response = member.client.get(artifact["url"].replace(settings.PORTAL_BASE_URL, ""))
        data = b"".join(response.streaming_content) if response.streaming else response.content
        assert hashlib.sha256(data).hexdigest() == artifact["hash"]["hash"]
        assert signing.verify_sha256(public_pem, artifact["hash"]["hash"], artifact["signature"])
    assert tape.ip_id in {a["metaData"].split('"productId": "')[1].split('"')[0] for a in body["artifacts"][1:]}
