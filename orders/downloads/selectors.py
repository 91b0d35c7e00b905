"""Reads for downloads: files of an order, one file with its order, the order's file names."""
from __future__ import annotations

from django.db.models import QuerySet
from portal.errors import NotFound
from portal.tenancy.models import Project

from portal.files.names import unique_names

from ..models import DatasetTask, FileState, Order, OrderDataFile
from . import codes

# Files a user can fetch now (DOWNLOADED ones stay listed and downloadable until expiry, so
# paging by id stays stable while the user downloads page after page).
DOWNLOADABLE_STATES = (FileState.AVAILABLE, FileState.DOWNLOADED)
# Zip/metalink names reserve these for the archive's own entries.
RESERVED_ZIP_NAMES = ("SHA256SUMS", "NOTICE.txt")

_ITEM_FIELDS = ("id", "order_id", "product_id", "checksum", "sha256", "size", "filename", "mime_type",
                "state", "crc32", "tier", "location", "cache_path", "error_reason", "data_type")


def files_available(*, project: Project, order: Order) -> QuerySet[OrderDataFile]:
    return (OrderDataFile.objects.filter(project=project, order_id=order.pk, state__in=DOWNLOADABLE_STATES)
            .only(*_ITEM_FIELDS).order_by("id"))


def dataset_task_files(*, project: Project, order: Order, dataset_task_id: int) -> QuerySet[OrderDataFile]:
    """Every file of one dataset task of the order (404 when the task is not the order's)."""
    if not DatasetTask.objects.filter(project=project, order_id=order.pk, id=dataset_task_id).exists():
        raise NotFound(codes.DATASET_TASK_NOT_FOUND,
                       f"Dataset task {dataset_task_id} is not part of order {order.pk}.")
    return (OrderDataFile.objects.filter(project=project, order_id=order.pk,
                                         sub_order__dataset_task_id=dataset_task_id)
            .only(*_ITEM_FIELDS).order_by("id"))


def order_file_with_order(*, project: Project, file_id: int) -> OrderDataFile:
    """404 when the file does not exist in this project."""
    order_file = (OrderDataFile.objects.filter(project=project, id=file_id)
                  .select_related("order", "order__owner").first())
    if order_file is None:
        raise NotFound(codes.ORDER_FILE_NOT_FOUND, f"File {file_id} does not exist.")
    return order_file


# What a zip needs of a file (tuples, not model instances: an order may hold 200,000 files).
ZIP_ROW_FIELDS = ("id", "filename", "size", "crc32", "sha256", "tier", "location", "cache_path")
ZIP_SOURCE_FIELDS = ("id", "tier", "location", "cache_path")


def zip_candidate_rows(*, project: Project, order: Order):
    """The order's files AVAILABLE now (what a fresh order zip holds), as ZIP_ROW_FIELDS
    tuples by id, streamed from the database."""
    return (OrderDataFile.objects.filter(project=project, order_id=order.pk, state=FileState.AVAILABLE)
            .order_by("id").values_list(*ZIP_ROW_FIELDS).iterator(chunk_size=5000))


def zip_source_rows(*, project: Project, order: Order, file_ids) -> list[tuple]:
    """ZIP_SOURCE_FIELDS tuples of these files of the order (a batch: at most a few thousand ids)."""
    return list(OrderDataFile.objects.filter(project=project, order_id=order.pk, id__in=list(file_ids))
                .values_list(*ZIP_SOURCE_FIELDS))


def metalink_files(*, project: Project, order: Order) -> QuerySet[OrderDataFile]:
    """Every file of the order that is or will be downloadable (not the ones in ERROR)."""
    return (OrderDataFile.objects.filter(project=project, order_id=order.pk)
            .exclude(state__in=(FileState.ERROR, FileState.PROCESSING_ERROR))
            .only(*_ITEM_FIELDS).order_by("id"))


def order_file_names(*, project: Project, order: Order, reserved=RESERVED_ZIP_NAMES) -> dict[int, str]:
    """Unique download names over ALL files of the order, so successive zips and the metalink
    extracted into one folder never overwrite one file with another."""
    pairs = OrderDataFile.objects.filter(project=project, order_id=order.pk).values_list("id", "filename")
    return unique_names(pairs.iterator(chunk_size=5000), reserved=reserved)
