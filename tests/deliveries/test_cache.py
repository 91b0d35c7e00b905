"""The delivery cache: capacity with eviction of the oldest done deliveries, admin eviction and
limits, expiry of done deliveries, the stuck sweep."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from deliveries import services
from deliveries.models import Delivery, DeliveryStatus
from portal.catalog.models import DataType
from portal.tenancy.models import Project

from .conftest import CACHE_CONFIG_URL, CACHE_DELETE_URL, delivery_row, make_object, prepare, status_of

pytestmark = pytest.mark.django_db
GIB = 1024**3


def _done(member, run_tasks, size=2000):
    obj = make_object(member.project, files=((DataType.RAWDATA, size),))
    prepare(member, obj.ip_id, run_tasks)
    assert status_of(member, obj.ip_id).json()["status"] == "done"
    return obj


def _age(project, obj, days: int) -> None:
    Delivery.unscoped_objects.filter(project=project, catalog_id=obj.ip_id).update(
        done_at=timezone.now() - timedelta(days=days))


def _set_capacity(project, capacity: int) -> None:
    Project.objects.filter(pk=project.pk).update(delivery_cache_capacity_bytes=capacity)


def test_a_package_larger_than_the_cache_fails_and_evicts_nothing(member, run_tasks):
    older = _done(member, run_tasks)
    footprint = delivery_row(member.project, older.ip_id).bytes_to_prepare
    _set_capacity(member.project, footprint * 2)
    big = make_object(member.project, files=((DataType.RAWDATA, footprint * 3),))
    prepare(member, big.ip_id, run_tasks)
    body = status_of(member, big.ip_id).json()
    assert body["status"] == "error" and body["error"]["errorCode"] == "DELIVERY.packageTooLarge"
    assert status_of(member, older.ip_id).json()["status"] == "done"  # nothing evicted in vain


def test_the_oldest_done_deliveries_are_evicted_to_make_room(member, run_tasks):
    # Given three done deliveries of about the same footprint, in a cache that holds three
    first, second, third = (_done(member, run_tasks) for _ in range(3))
    _age(member.project, first, 3)
    _age(member.project, second, 2)
    _age(member.project, third, 1)
    footprint = max(d.bytes_to_prepare for d in Delivery.unscoped_objects.all())
    _set_capacity(member.project, footprint * 3 + footprint // 2)
    first_dir = services.delivery_dir(project_slug="alpha", delivery_id=delivery_row(member.project, first.ip_id).pk)
    assert first_dir.exists()

    # When a fourth one of the same size is prepared
    fourth = _done(member, run_tasks)

    # Then only the oldest was evicted (status delete, files gone)
    statuses = [status_of(member, o.ip_id).json()["status"] for o in (first, second, third, fourth)]
    assert statuses == ["delete", "done", "done", "done"]
    assert not first_dir.exists()


def test_admin_cache_delete_by_catalog_id_date_and_size(admin_member, run_tasks):
    objs = [_done(admin_member, run_tasks) for _ in range(4)]
    for days, obj in zip((10, 5, 2, 1), objs):
        _age(admin_member.project, obj, days)
    client = admin_member.client

    response = client.delete(f"{CACHE_DELETE_URL}?catalogId={objs[3].ip_id}")
    assert response.status_code == 200 and response.json() == {"deleted": [objs[3].ip_id], "freed": 1}
    before = (timezone.now() - timedelta(days=7)).date().isoformat()
    assert client.delete(f"{CACHE_DELETE_URL}?date={before}").json()["deleted"] == [objs[0].ip_id]
    assert client.delete(f"{CACHE_DELETE_URL}?size=1").json()["deleted"] == [objs[1].ip_id]
    assert [status_of(admin_member, o.ip_id).json()["status"] for o in objs] == ["delete", "delete", "done", "delete"]

    for bad in ("", "?size=-3", "?date=yesterday", "?size=1&date=2024-01-01"):
        response = client.delete(f"{CACHE_DELETE_URL}{bad}")
        assert response.status_code == 400 and response.json()["code"] == "DELIVERY.invalid", bad
    assert client.delete(f"{CACHE_DELETE_URL}?catalogId=nope").status_code == 404


def test_cache_config_reports_use_and_refuses_a_limit_below_it(admin_member, member, run_tasks):
    obj = _done(admin_member, run_tasks)
    used = delivery_row(admin_member.project, obj.ip_id).bytes_to_prepare
    config = admin_member.client.get(CACHE_CONFIG_URL).json()
    assert config["maxCapacityInGB"] == 10 and config["usedBytes"] == used
    assert config["freeBytes"] == 10 * GIB - used

    response = admin_member.client.put(CACHE_CONFIG_URL, {"maxCapacityInGB": used / GIB / 2}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "DELIVERY.invalid"
    assert "in use" in response.json()["detail"]
    response = admin_member.client.put(CACHE_CONFIG_URL, {"maxCapacityInGB": 2.5}, format="json")
    assert response.status_code == 200 and response.json()["maxCapacityInGB"] == 2.5
    assert Project.objects.get(pk=admin_member.project.pk).delivery_cache_capacity_bytes == int(2.5 * GIB)
    assert admin_member.client.put(CACHE_CONFIG_URL, {"maxCapacityInGB": "lots"}, format="json").status_code == 400

    # Members who are not ADMIN may do none of it
    assert member.client.get(CACHE_CONFIG_URL).status_code == 403
    assert member.client.put(CACHE_CONFIG_URL, {"maxCapacityInGB": 50}, format="json").status_code == 403
    assert member.client.delete(f"{CACHE_DELETE_URL}?size=1").status_code == 403
    assert status_of(member, obj.ip_id).json()["status"] == "done"


def test_done_deliveries_expire_after_the_project_lifetime(member, run_tasks):
    Project.objects.filter(pk=member.project.pk).update(delivery_lifetime_days=2)
    member.project.refresh_from_db()
    fresh, old = _done(member, run_tasks), _done(member, run_tasks)
    expires = Delivery.unscoped_objects.get(catalog_id=fresh.ip_id).expires_at
    assert timedelta(days=2) - timedelta(minutes=1) < expires - timezone.now() <= timedelta(days=2)
    Delivery.unscoped_objects.filter(catalog_id=old.ip_id).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert services.deliveries_expire_sweep(batch_size=1) == 1
    assert services.deliveries_expire_sweep() == 0  # harmless when run twice
    assert status_of(member, old.ip_id).json()["status"] == "delete"
    assert status_of(member, fresh.ip_id).json()["status"] == "done"


def test_expired_files_are_removed_once_committed(member, run_tasks, django_capture_on_commit_callbacks):
    old = _done(member, run_tasks)
    Delivery.unscoped_objects.filter(catalog_id=old.ip_id).update(expires_at=timezone.now() - timedelta(seconds=1))
    old_dir = services.delivery_dir(project_slug="alpha", delivery_id=delivery_row(member.project, old.ip_id).pk)
    assert old_dir.exists()
    with django_capture_on_commit_callbacks(execute=True):
        services.deliveries_expire_sweep()
    assert not old_dir.exists()


def test_the_stuck_sweep_dispatches_a_preparation_no_worker_reports_on(member, django_capture_on_commit_callbacks):
    obj = make_object(member.project)
    prepare(member, obj.ip_id)
    Delivery.unscoped_objects.filter(catalog_id=obj.ip_id).update(
        status=DeliveryStatus.IN_PROGRESS, heartbeat_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks() as callbacks:
        assert services.deliveries_stuck_sweep() == 1
        assert services.deliveries_stuck_sweep() == 0  # the heartbeat was moved on: not twice
    assert len(callbacks) == 1
