"""Orders test helpers: catalogs with real files, baskets, orders built and staged for real."""
from __future__ import annotations

import re

from basket.services import SelectionRequest, basket_add_selection
from orders import build, services
from orders.models import Order, OrderDataFile, SubOrder
from portal.catalog.models import DataType, StorageTier
from portal.tenancy.scope import project_scope
from tests.catalog.factories import DataFileFactory, DataObjectFactory, DatasetFactory

ORDERS_URL = "/api/v1/rs-order/user/orders"
ADMIN_ORDERS_URL = "/api/v1/rs-order/orders"


def make_objects(project, *, count=3, files=((DataType.RAWDATA, 100),), tier=StorageTier.ONLINE, dataset=None,
                 label="Scenes"):
    """`count` data objects of one dataset, each with real files of (type, size)."""
    dataset = dataset or DatasetFactory(project=project, label=label)
    objects = []
    for _ in range(count):
        obj = DataObjectFactory(dataset=dataset)
        for index, (data_type, size) in enumerate(files):
            DataFileFactory(data_object=obj, data_type=data_type, tier=tier,
                            content=(f"{obj.ip_id}/{index}/".encode() * size)[:size],
                            filename=f"{obj.label.replace(' ', '_')}_{index}.dat")
        objects.append(obj)
    return objects


def fill_basket(member, objects) -> None:
    with project_scope(member.project):
        basket_add_selection(project=member.project, owner=member.user,
                             selection=SelectionRequest(included_ip_ids=tuple(o.ip_id for o in objects)))


def order_of(member, objects, *, label=None, run=None) -> Order:
    """Basket with `objects`, then an order through the service; built and staged when `run`."""
    fill_basket(member, objects)
    with project_scope(member.project):
        if run is not None:
            with run():
                order = services.order_create(project=member.project, owner=member.user, label=label)
        else:
            order = services.order_create(project=member.project, owner=member.user, label=label)
        return Order.objects.get(pk=order.pk)


def reload(order) -> Order:
    return Order.unscoped_objects.get(pk=order.pk)


def file_states(order) -> dict[str, int]:
    out: dict[str, int] = {}
    for state in OrderDataFile.unscoped_objects.filter(order_id=order.pk).values_list("state", flat=True):
        out[state] = out.get(state, 0) + 1
    return out


def sub_states(order) -> list[str]:
    return list(SubOrder.unscoped_objects.filter(order_id=order.pk).order_by("id").values_list("state", flat=True))


def bulk_catalog(project, *, objects: int, files_per_object: int = 1, tier=StorageTier.ONLINE,
                 content: bytes = b"x" * 64, label="Bulk scenes"):
    """A large catalog fast: one real stored file, shared by every DataFile row (same sha256)."""
    from datetime import datetime, timedelta, timezone as dt_timezone
    import uuid

    from portal.catalog import storage
    from portal.catalog.models import DataFile, DataObject, Dataset

    digests = storage.bytes_digests(content)
    location = storage.location_for(project_slug=project.slug, sha256=digests.sha256)
    storage.store_file(tier=tier, location=location, source=content)
    dataset = Dataset.unscoped_objects.create(project=project, ip_id=f"URN:AIP:DATASET:{project.slug}:{uuid.uuid4()}:V1",
                                              label=label)
    start = datetime(2024, 1, 1, tzinfo=dt_timezone.utc)
    batch = 5000
    for offset in range(0, objects, batch):
        rows = [DataObject(project=project, dataset=dataset, label=f"obj {i}", creation_date=start + timedelta(seconds=i),
                           ip_id=f"URN:AIP:DATA:{project.slug}:{uuid.uuid4()}:V1")
                for i in range(offset, min(objects, offset + batch))]
        DataObject.unscoped_objects.bulk_create(rows, batch_size=batch)
        ids = list(DataObject.unscoped_objects.filter(project=project, dataset=dataset, label__in=[r.label for r in rows])
                   .values_list("id", flat=True))
        DataFile.unscoped_objects.bulk_create(
            [DataFile(project=project, data_object_id=oid, data_type=DataType.RAWDATA, filename=f"f{oid}_{k}.dat",
                      size=digests.size, checksum=digests.md5, sha256=digests.sha256, crc32=digests.crc32,
                      tier=tier, location=location)
             for oid in ids for k in range(files_per_object)], batch_size=batch)
    return dataset


def dataset_resolver(dataset):
    """An order_build resolver taking every RAWDATA file of `dataset` (no basket needed)."""
    from portal.catalog.models import DataFile, DataObject

    def resolve(*, project, order):
        files = DataFile.objects.filter(project=project, data_object__dataset=dataset, data_type=DataType.RAWDATA)
        build.dataset_task_build(project=project, order=order, dataset=dataset, dataset_ip_id=dataset.ip_id,
                                    dataset_label=dataset.label, files=files,
                                    objects_count=DataObject.objects.filter(dataset=dataset).count())
    return resolve


def bare_order(project, owner, label="bulk") -> Order:
    """A PENDING order row, as order_create makes it (for builds driven by a resolver)."""
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    return Order.unscoped_objects.create(project=project, owner=owner, label=label, creation_date=now, status_date=now,
                                         expiration_date=now + timedelta(days=3))


# A statement's condition on the files' ids: `id IN (…)`, `id IN (SELECT value FROM json_each(…))`, `id = ANY(…)`.
BY_IDS = re.compile(r'(^|[\s(."])id"?\s*(IN\s*\(|=\s*ANY\s*\()', re.IGNORECASE)

