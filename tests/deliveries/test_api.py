"""The delivery API: prepare (idempotent), status (never starts work), delete, downloads, access."""
from __future__ import annotations

import hashlib

import pytest
from django.conf import settings

from deliveries.models import Delivery, DeliveryRequestKey, DeliveryStatus
from orders.models import Order
from portal.catalog.models import DataType, StorageTier
from portal.tenancy.models import Role
from tests.conftest import make_member
from tests.orders.conftest import make_objects, order_of

from .conftest import PREPARE_URL, SIGNING_KEY_URL, STATUS_URL, delivery_row, make_object, prepare, status_of

pytestmark = pytest.mark.django_db


def _path(url: str) -> str:
    return url.replace(settings.PORTAL_BASE_URL, "")


def _bytes(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_prepare_is_idempotent_and_enqueues_once(member, django_capture_on_commit_callbacks):
    obj = make_object(member.project)
    with django_capture_on_commit_callbacks() as callbacks:
        first = prepare(member, obj.ip_id)
    assert first.status_code == 200
    assert first.json() == {"catalogId": obj.ip_id, "status": "pending", "progress": 0, "size": 0,
                            "expiresAt": None, "artifacts": []}
    assert len(callbacks) == 1
    with django_capture_on_commit_callbacks() as callbacks:
        again = prepare(member, obj.ip_id)
    assert again.status_code == 200 and again.json()["status"] == "pending"
    assert callbacks == []  # under way: nothing enqueued again
    # Another member of the project shares the same delivery
    other = make_member(member.project)
    assert prepare(other, obj.ip_id).json()["status"] == "pending"
    assert Delivery.unscoped_objects.filter(project=member.project).count() == 1


def test_a_done_delivery_is_returned_as_is_and_a_deleted_one_is_prepared_again(member, run_tasks,
                                                                              django_capture_on_commit_callbacks):
    obj = make_object(member.project)
    prepare(member, obj.ip_id, run_tasks)
    with django_capture_on_commit_callbacks() as callbacks:
        body = prepare(member, obj.ip_id).json()
    assert body["status"] == "done" and len(body["artifacts"]) == 2 and callbacks == []

    deleted = member.client.delete(f"{STATUS_URL}/{obj.ip_id}")
    assert deleted.status_code == 200
    assert (deleted.json()["status"], deleted.json()["artifacts"]) == ("delete", [])
    assert status_of(member, obj.ip_id).json()["status"] == "delete"

    body = prepare(member, obj.ip_id, run_tasks).json()
    assert status_of(member, obj.ip_id).json()["status"] == "done"
    assert delivery_row(member.project, obj.ip_id).generation == 2


def test_reading_never_starts_work_and_unknown_is_not_found(member, django_capture_on_commit_callbacks):
    obj = make_object(member.project)
    with django_capture_on_commit_callbacks() as callbacks:
        response = status_of(member, obj.ip_id)
    assert response.status_code == 404 and response.json()["code"] == "DELIVERY.notFound"
    assert response["Content-Type"] == "application/problem+json"
    assert callbacks == [] and not Delivery.unscoped_objects.exists()
    assert prepare(member, "URN:AIP:DATA:alpha:nothing:V1").json()["code"] == "DELIVERY.notFound"
    assert prepare(member, "order-999999").status_code == 404
    assert prepare(member, "order-abc").status_code == 404
    assert member.client.post(PREPARE_URL, {}, format="json").status_code == 400
    assert status_of(member, obj.ip_id, source="ftp").status_code == 400


def test_status_reads_in_two_queries(member, run_tasks, django_assert_max_num_queries):
    obj = make_object(member.project, files=[(DataType.RAWDATA, 50)] * 20)
    prepare(member, obj.ip_id, run_tasks)
    with django_assert_max_num_queries(6):  # token, membership, delivery, artifacts (+ project)
        body = status_of(member, obj.ip_id).json()
    assert len(body["artifacts"]) == 21


def test_idempotency_key_returns_the_first_result(member, run_tasks):
    obj = make_object(member.project)
    key = {"HTTP_IDEMPOTENCY_KEY": "retry-me"}
    with run_tasks():
        member.client.post(PREPARE_URL, {"catalogId": obj.ip_id}, format="json", **key)
    member.client.delete(f"{STATUS_URL}/{obj.ip_id}")
    # A retry of the first request (same key) does not prepare again; a new request does
    assert member.client.post(PREPARE_URL, {"catalogId": obj.ip_id}, format="json", **key).json()["status"] == "delete"
    assert prepare(member, obj.ip_id).json()["status"] == "pending"
    assert DeliveryRequestKey.unscoped_objects.count() == 1


def test_an_order_delivery_is_for_its_owner_and_admins_only(member, run_tasks):
    order = order_of(member, make_objects(member.project, count=2), label="to deliver", run=run_tasks)
    catalog_id = f"order-{order.pk}"
    stranger = make_member(member.project)
    admin = make_member(member.project, Role.ADMIN)

    assert prepare(stranger, catalog_id).status_code == 403
    assert not Delivery.unscoped_objects.exists()
    body = prepare(member, catalog_id, run_tasks).json()
    assert status_of(member, catalog_id).json()["status"] == "done"
    assert len(status_of(admin, catalog_id).json()["artifacts"]) == 3
    assert status_of(stranger, catalog_id).status_code == 403
    assert stranger.client.delete(f"{STATUS_URL}/{catalog_id}").status_code == 403
    archive = status_of(member, catalog_id).json()["artifacts"][0]
    assert stranger.client.get(_path(archive["url"])).status_code == 403
    assert member.client.get(_path(archive["url"])).status_code == 200
    assert body["catalogId"] == catalog_id


def test_cache_downloads_support_ranges_and_etags(member, run_tasks):
    obj = make_object(member.project, files=((DataType.RAWDATA, 5000),))
    prepare(member, obj.ip_id, run_tasks)
    artifact = status_of(member, obj.ip_id).json()["artifacts"][1]
    url = _path(artifact["url"])
    whole = member.client.get(url)
    data = _bytes(whole)
    assert whole["ETag"] == f'"{artifact["hash"]["hash"]}"' and whole["Accept-Ranges"] == "bytes"
    assert hashlib.sha256(data).hexdigest() == artifact["hash"]["hash"]

    part = member.client.get(url, HTTP_RANGE="bytes=100-199", HTTP_IF_RANGE=whole["ETag"])
    assert part.status_code == 206 and part["Content-Range"] == "bytes 100-199/5000"
    assert _bytes(part) == data[100:200]
    stale = member.client.get(url, HTTP_RANGE="bytes=100-199", HTTP_IF_RANGE='"other"')
    assert stale.status_code == 200 and _bytes(stale) == data
    assert member.client.get(url, HTTP_RANGE="bytes=9000-").status_code == 416
    head = member.client.head(url)
    assert head.status_code == 200 and head["Content-Length"] == "5000"


def test_remote_source_points_at_catalog_files_and_nearline_has_none(member, run_tasks):
    online = make_object(member.project, files=((DataType.RAWDATA, 300),))
    from tests.catalog.factories import DataFileFactory
    tape = DataFileFactory(data_object=online, tier=StorageTier.NEARLINE, filename="tape.dat",
                           content=b"on tape\n" * 10)
    prepare(member, online.ip_id, run_tasks)
    body = status_of(member, online.ip_id, source="remote").json()
    by_key = {a["itemKey"]: a for a in body["artifacts"]}
    assert "/api/v1/delivery/artifacts/" in by_key["archive"]["url"]  # the archive lives in the cache only
    assert by_key["tape.dat"]["url"] == ""
    assert by_key["tape.dat"]["error"]["errorCode"] == "DELIVERY.downloadNotAvailable"
    [online_key] = [k for k in by_key if k not in ("archive", "tape.dat")]
    remote_url = by_key[online_key]["url"]
    assert f"/api/v1/rs-catalog/{online.ip_id}/files/" in remote_url
    response = member.client.get(_path(remote_url))
    assert response.status_code == 200
    assert hashlib.sha256(_bytes(response)).hexdigest() == by_key[online_key]["hash"]["hash"]
    assert tape.sha256 == by_key["tape.dat"]["hash"]["hash"]


def test_the_signing_key_is_public_pem(client):
    response = client.get(SIGNING_KEY_URL)
    assert response.status_code == 200 and response["Content-Type"] == "application/x-pem-file"
    assert response.content.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert client.get(SIGNING_KEY_URL).content == response.content  # one key per installation


def test_a_deleted_order_cannot_be_reached_after_removal(member, run_tasks):
    order = order_of(member, make_objects(member.project, count=1), label="short lived", run=run_tasks)
    prepare(member, f"order-{order.pk}", run_tasks)
    Order.unscoped_objects.filter(pk=order.pk).delete()
    assert status_of(member, f"order-{order.pk}").status_code == 404
    assert Delivery.unscoped_objects.filter(status=DeliveryStatus.DONE).count() == 1


def test_a_member_of_another_project_cannot_prepare_or_read_a_projects_items(member, other_project, run_tasks):
    obj = make_object(member.project)
    prepare(member, obj.ip_id, run_tasks)
    intruder = make_member(other_project, Role.ADMIN)
    assert prepare(intruder, obj.ip_id).status_code == 404  # not in beta's catalog
    assert status_of(intruder, obj.ip_id).status_code == 404
    assert intruder.client.delete(f"{STATUS_URL}/{obj.ip_id}").status_code == 404
    artifact_url = _path(status_of(member, obj.ip_id).json()["artifacts"][0]["url"]).split("?")[0]
    assert intruder.client.get(artifact_url).status_code == 404
    assert not Delivery.unscoped_objects.filter(project=other_project).exists()
    assert status_of(member, obj.ip_id).json()["status"] == "done"


def test_an_order_not_built_yet_cannot_be_prepared(member):
    order = order_of(member, make_objects(member.project, count=1), label="not built")  # tasks not run
    response = prepare(member, f"order-{order.pk}")
    assert response.status_code == 409 and response.json()["code"] == "DELIVERY.downloadNotAvailable"
    assert not Delivery.unscoped_objects.exists()
