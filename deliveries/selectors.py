"""Reads of deliveries: targets named by catalog ids, package contents, cache usage."""
from __future__ import annotations

from dataclasses import dataclass

from django.db import connection
from django.db.models import QuerySet, Sum
from django.db.models.functions import Collate

from orders.models import Order, OrderDataFile
from orders.selectors import order_for_caller
from portal.errors import NotFound, Refused
from portal.files.names import UniqueNames
from portal.catalog.models import DataFile, DataObject, Dataset, DataType
from portal.tenancy.models import Project

from . import codes
from .downloadorders.codes import CATALOG_PREFIX as DOWNLOAD_ORDER_PREFIX, TARGET_KIND as DOWNLOAD_ORDER
from .models import CACHE_HOLDING_STATUSES, Delivery, DeliveryArtifact, DeliveryStatus

ORDER, DATA_OBJECT, DATASET = "order", "dataobject", "dataset"


@dataclass(frozen=True)
class Target:
    kind: str
    catalog_id: str
    order_id: int | None = None


@dataclass(frozen=True, slots=True)
class PackageFile:
    """A file to put in a package, with the catalog's facts. Duck-types as a DataFile for
    `storage.open_online` / `storage.restore_nearline` (pk, filename, tier, location, sha256)."""

    pk: int
    filename: str
    product_id: str
    data_type: str
    mime_type: str
    size: int
    crc32: int
    checksum: str
    sha256: str
    tier: str
    location: str


def order_id_of(catalog_id: str) -> int | None:
    """The order id of the one canonical form `order-<id>` (ASCII digits, no leading zero), so
    `order-02` or `order-\u0662` never name order 2 a second time; anything else is None."""
    if not catalog_id.startswith(codes.ORDER_PREFIX):
        return None
    digits = catalog_id[len(codes.ORDER_PREFIX):]
    canonical = digits.isascii() and digits.isdigit() and digits[:1] != "0" and len(digits) < 19
    return int(digits) if canonical else None


def _check_order_caller(*, project: Project, user, order_id: int, is_admin: bool) -> Order:
    try:
        return order_for_caller(project=project, user=user, order_id=order_id, is_admin=is_admin)
    except NotFound as exc:  # in this protocol's words
        raise NotFound(codes.NOT_FOUND, f"Order {order_id} does not exist.") from exc


def _check_download_order_caller(*, project: Project, user, catalog_id: str, is_admin: bool) -> Target:
    from .downloadorders.selectors import download_order_for_caller

    digits = catalog_id[len(DOWNLOAD_ORDER_PREFIX):]
    try:
        if not (digits.isdigit() and len(digits) < 19):
            raise NotFound()
        download_order_for_caller(project=project, user=user, download_order_id=int(digits), is_admin=is_admin)
    except NotFound as exc:  # in this protocol's words
        raise NotFound(codes.NOT_FOUND, f"No download order is named {catalog_id!r}.") from exc
    return Target(DOWNLOAD_ORDER, catalog_id)


def target_for_caller(*, project: Project, user, catalog_id: str, is_admin: bool) -> Target:
    """What `catalog_id` names, if the caller may read it: an order or a download order (its
    owner and ADMINs) or a data object / dataset URN (any member). Unknown: 404 DELIVERY.notFound."""
    if catalog_id.startswith(DOWNLOAD_ORDER_PREFIX):
        return _check_download_order_caller(project=project, user=user, catalog_id=catalog_id, is_admin=is_admin)
    if catalog_id.startswith(codes.ORDER_PREFIX):
        order_id = order_id_of(catalog_id)
        if order_id is None:
            raise NotFound(codes.NOT_FOUND, f"No order is named {catalog_id!r}.")
        order = _check_order_caller(project=project, user=user, order_id=order_id, is_admin=is_admin)
        if order.built_at is None:
            # Its files are not resolved yet: a package now would be empty.
            raise Refused(codes.DOWNLOAD_NOT_AVAILABLE,
                          f"Order {order_id} is still being built: prepare its delivery once it runs.")
        return Target(ORDER, catalog_id, order_id)
    if DataObject.objects.filter(project=project, ip_id=catalog_id).exists():
        return Target(DATA_OBJECT, catalog_id)
    if Dataset.objects.filter(project=project, ip_id=catalog_id).exists():
        return Target(DATASET, catalog_id)
    raise NotFound(codes.NOT_FOUND, f"Nothing in the catalog is named {catalog_id!r}.")


def check_reader(*, project: Project, user, delivery: Delivery, is_admin: bool) -> None:
    """An order's delivery is read only by the order's owner and ADMINs."""
    if delivery.target_kind == ORDER:
        _check_order_caller(project=project, user=user, order_id=order_id_of(delivery.catalog_id) or 0,
                            is_admin=is_admin)
    elif delivery.target_kind == DOWNLOAD_ORDER:
        _check_download_order_caller(project=project, user=user, catalog_id=delivery.catalog_id, is_admin=is_admin)


def delivery_for_caller(*, project: Project, user, catalog_id: str, is_admin: bool,
                        with_artifacts: bool = True) -> Delivery:
    """The delivery of `catalog_id` with its artifacts (two queries; one without them: a
    million-artifact delivery is read with `delivery_artifacts`), or 404 DELIVERY.notFound."""
    if catalog_id.startswith((codes.ORDER_PREFIX, DOWNLOAD_ORDER_PREFIX)):
        target_for_caller(project=project, user=user, catalog_id=catalog_id, is_admin=is_admin)
    delivery = Delivery.objects.filter(project=project, catalog_id=catalog_id)
    if with_artifacts:
        delivery = delivery.prefetch_related("artifacts")
    delivery = delivery.first()
    if delivery is None:
        raise NotFound(codes.NOT_FOUND, f"No delivery for {catalog_id!r}.")
    return delivery


def delivery_artifacts(*, project: Project, delivery: Delivery) -> QuerySet[DeliveryArtifact]:
    """A delivery's artifacts in the API's order (the archive first, then files by name)."""
    return DeliveryArtifact.objects.filter(project=project, delivery=delivery).order_by("id")


def artifact_for_caller(*, project: Project, user, artifact_id: int, is_admin: bool) -> DeliveryArtifact:
    artifact = (DeliveryArtifact.objects.filter(project=project, id=artifact_id)
                .select_related("delivery").first())
    if artifact is None or artifact.delivery.status != DeliveryStatus.DONE:
        raise NotFound(codes.NOT_FOUND, f"No artifact {artifact_id}.")
    check_reader(project=project, user=user, delivery=artifact.delivery, is_admin=is_admin)
    return artifact


_FILE_FIELDS = ("pk", "filename", "product_id", "data_type", "mime_type", "size", "crc32", "checksum", "sha256",
                "tier", "location")


def _package_query(*, project: Project, delivery: Delivery) -> QuerySet | None:
    """The files of the delivery's target (None: an order that no longer exists), with
    `product_id` named alike for both kinds of target."""
    if delivery.target_kind == ORDER:
        order_id = order_id_of(delivery.catalog_id)
        if not Order.objects.filter(project=project, id=order_id).exists():
            return None
        return OrderDataFile.objects.filter(project=project, order_id=order_id)
    qs = DataFile.objects.filter(project=project)
    if delivery.target_kind == DATA_OBJECT:
        qs = qs.filter(data_object__ip_id=delivery.catalog_id)
    else:
        qs = qs.filter(data_object__dataset__ip_id=delivery.catalog_id)
    if delivery.item_type:
        qs = qs.filter(data_type=delivery.item_type)
    return qs


def _rows(qs: QuerySet, delivery: Delivery):
    if delivery.target_kind == ORDER:
        return qs.values_list(*_FILE_FIELDS)
    return qs.values_list("pk", "filename", "data_object__ip_id", *_FILE_FIELDS[3:])


def package_names(*, project: Project, delivery: Delivery, reserved=()) -> UniqueNames:
    """The unique names of the delivery's files in its package (`.name(pk, filename)`), over
    two passes of (pk, filename) streamed from the database (~8 bytes kept per file)."""
    qs = _package_query(project=project, delivery=delivery)
    if qs is None:
        return UniqueNames(lambda: (), reserved=reserved)
    pairs = qs.order_by().values_list("pk", "filename")
    return UniqueNames(lambda: pairs.iterator(chunk_size=5000), reserved=reserved)


def package_rows(*, project: Project, delivery: Delivery, by_name: bool = False, file_ids=None):
    """Tuples of _FILE_FIELDS (PackageFile's fields) of the delivery's files, streamed from the
    database: by id, or by filename in code-point order when `by_name` (the database sorts: a
    million names never sit in a list); only `file_ids` when given (a batch)."""
    qs = _package_query(project=project, delivery=delivery)
    if qs is None:
        return iter(())
    if file_ids is not None:
        qs = qs.filter(pk__in=list(file_ids))
    if by_name:
        # UTF-8 compared byte by byte sorts as code points, as Python compares str.
        binary = "C" if connection.vendor == "postgresql" else "BINARY"
        qs = qs.order_by(Collate("filename", binary), "pk")
    else:
        qs = qs.order_by("pk")
    return _rows(qs, delivery).iterator(chunk_size=5000)


def valid_item_types() -> set[str]:
    return set(DataType.values)


def cache_used_bytes(*, project: Project, exclude_id: int | None = None) -> int:
    """Bytes held or reserved in the project's delivery cache."""
    qs = Delivery.objects.filter(project=project, status__in=CACHE_HOLDING_STATUSES)
    if exclude_id is not None:
        qs = qs.exclude(id=exclude_id)
    return qs.aggregate(total=Sum("bytes_to_prepare"))["total"] or 0


def evictable_deliveries(*, project: Project) -> QuerySet[Delivery]:
    """Done deliveries, oldest first: what eviction frees first."""
    return Delivery.objects.filter(project=project, status=DeliveryStatus.DONE).order_by("done_at", "id")
