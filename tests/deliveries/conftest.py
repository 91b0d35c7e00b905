"""Deliveries test helpers: catalog items with real files, prepare through the API, run the task."""
from __future__ import annotations


import pytest

from deliveries.models import Delivery
from portal.catalog.models import DataType, StorageTier
from tests.catalog.factories import DataFileFactory, DataObjectFactory, DatasetFactory

PREPARE_URL = "/api/v1/delivery/prepareDelivery"
STATUS_URL = "/api/v1/delivery/preparedDelivery"
SIGNING_KEY_URL = "/api/v1/delivery/signing-key"
CACHE_CONFIG_URL = "/api/v1/delivery/cache/config"
CACHE_DELETE_URL = "/api/v1/delivery/cache/delete"


def make_object(project, *, files=((DataType.RAWDATA, 100),), tier=StorageTier.ONLINE, dataset=None,
                names=None):
    """A data object with real files of (type, size); bytes differ per object and file."""
    dataset = dataset or DatasetFactory(project=project)
    obj = DataObjectFactory(dataset=dataset)
    for index, (data_type, size) in enumerate(files):
        DataFileFactory(data_object=obj, data_type=data_type, tier=tier,
                        content=(f"{obj.ip_id}/{index}/".encode() * (size // 10 + 1))[:size],
                        filename=names[index] if names else f"{obj.label.replace(' ', '_')}_{index}.dat")
    return obj


def prepare(member, catalog_id, run_tasks=None, **extra):
    body = {"catalogId": catalog_id, **extra}
    if run_tasks is None:
        return member.client.post(PREPARE_URL, body, format="json")
    with run_tasks():
        return member.client.post(PREPARE_URL, body, format="json")


def status_of(member, catalog_id, **params):
    return member.client.get(f"{STATUS_URL}/{catalog_id}", params)


def delivery_row(project, catalog_id) -> Delivery:
    return Delivery.unscoped_objects.get(project=project, catalog_id=catalog_id)


@pytest.fixture(autouse=True)
def _own_delivery_cache(settings, tmp_path):
    """A delivery cache per test: ids are reused between tests, cache folders must not be."""
    settings.DELIVERY_CACHE_DIR = tmp_path / "delivery-cache"
