"""Reads for downloads: files of an order, one file with its order, the order's file names."""
from __future__ import annotations

from dataclasses import dataclass

from django.db import connection
from django.db.models import QuerySet
from django.db.models.functions import Collate
from portal.errors import NotFound
from portal.tenancy.models import Project

from portal.files.names import UniqueNames

from ..models import DatasetTask, FileState, Order, OrderDataFile
from ..selectors import order_files_all_downloadable
from . import codes

# Files a user can fetch now (DOWNLOADED ones stay listed and downloadable until expiry, so
# paging by id stays stable while the user downloads page after page).
DOWNLOADABLE_STATES = (FileState.AVAILABLE, FileState.DOWNLOADED)
# Zip/metalink names reserve these for the archive's own entries.
RESERVED_ZIP_NAMES = ("SHA256SUMS", "NOTICE.txt")

_ITEM_FIELDS = ("id", "order_id", "product_id", "checksum", "sha256", "size", "filename", "mime_type",
                "state", "crc32", "tier", "location", "cache_path", "error_reason", "data_type")


@dataclass(frozen=True)
class FileList:
    """A list of an order's files by id. When `first_position` is set, the list is exactly
    the positions first_position.. of `total` files, so a page is a range of positions
    (indexed; no OFFSET scan, no COUNT); otherwise it pages `files` with COUNT and OFFSET."""

    files: QuerySet[OrderDataFile]
    first_position: int | None = None
    total: int | None = None

    def page(self, *, offset: int, size: int) -> tuple[list[OrderDataFile], int]:
        if self.first_position is not None and offset < self.total:
            first = self.first_position + offset
            last = min(first + size, self.first_position + self.total) - 1
            rows = list(self.files.filter(position__range=(first, last)))
            if len(rows) == last - first + 1:
                return rows, self.total
            # A position not downloadable after all (counters not recounted yet): page exactly.
        elif self.first_position is not None:
            return [], self.total
        total = self.files.count()
        return (list(self.files[offset : offset + size]) if offset < total else []), total


def _positioned_tasks(order: Order) -> list[DatasetTask] | None:
    """The order's dataset tasks when every one was built with positions (prefetched by
    order_for_caller), else None."""
    tasks = list(order.dataset_tasks.all())
    return tasks if order.built_at is not None and all(t.first_position is not None for t in tasks) else None


def files_available(*, project: Project, order: Order) -> FileList:
    files = (OrderDataFile.objects.filter(project=project, order_id=order.pk, state__in=DOWNLOADABLE_STATES)
             .only(*_ITEM_FIELDS).order_by("id"))
    tasks = _positioned_tasks(order)
    # Every file downloadable (the usual finished order): the list is all positions. The
    # sub-orders' counters say so (no index holds a file's state: a probe of the files would
    # read every row of the order).
    if tasks and order_files_all_downloadable(project=project, order=order):
        return FileList(files=files, first_position=1, total=sum(t.files_count for t in tasks))
    return FileList(files=files)


def dataset_task_files(*, project: Project, order: Order, dataset_task_id: int) -> FileList:
    """Every file of one dataset task of the order (404 when the task is not the order's)."""
    task = (DatasetTask.objects.filter(project=project, order_id=order.pk, id=dataset_task_id)
            .only("id", "first_position", "files_count").first())
    if task is None:
        raise NotFound(codes.DATASET_TASK_NOT_FOUND,
                       f"Dataset task {dataset_task_id} is not part of order {order.pk}.")
    if task.first_position is not None and order.built_at is not None:
        return FileList(files=OrderDataFile.objects.filter(project=project, order_id=order.pk)
                        .only(*_ITEM_FIELDS).order_by("id"),
                        first_position=task.first_position, total=task.files_count)
    return FileList(files=OrderDataFile.objects.filter(project=project, order_id=order.pk,
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


# Rows of a zip's files fetched from the server-side cursor at a time: what its planning holds
# besides the batch it lays out (archive.NAME_BATCH), at a million files part of the worker's peak.
ZIP_ROW_FETCH = 2000


def zip_candidate_rows(*, project: Project, order: Order, by_name: bool = False, file_ids=None):
    """The order's files AVAILABLE now (what a fresh order zip holds), as ZIP_ROW_FIELDS
    tuples, streamed from the database: by id, or by filename in code-point order when
    `by_name` (the database sorts: a million names never sit in a list); only `file_ids`
    when given (a batch)."""
    if file_ids is not None:
        # By primary key only, the order and state checked on the rows (see zip_source_rows).
        rows = (OrderDataFile.objects.filter(project=project, id__in=list(file_ids)).order_by("id")
                .values_list("order_id", "state", *ZIP_ROW_FIELDS))
        return iter([row[2:] for row in rows if row[0] == order.pk and row[1] == FileState.AVAILABLE])
    files = OrderDataFile.objects.filter(project=project, order_id=order.pk, state=FileState.AVAILABLE)
    if by_name:
        # UTF-8 compared byte by byte sorts as code points, as Python compares str.
        binary = "C" if connection.vendor == "postgresql" else "BINARY"
        files = files.order_by(Collate("filename", binary), "id")
    else:
        files = files.order_by("id")
    return files.values_list(*ZIP_ROW_FIELDS).iterator(chunk_size=ZIP_ROW_FETCH)


ZIP_NAME_ROW_FIELDS = ZIP_ROW_FIELDS + ("state",)


def zip_order_rows_by_name(*, project: Project, order: Order):
    """EVERY file of the order (whatever its state: all names count for unique names), as
    ZIP_NAME_ROW_FIELDS tuples, by filename in code-point order then id, streamed from the
    database: a zip of an order whose names are all distinct is planned in this one pass."""
    binary = "C" if connection.vendor == "postgresql" else "BINARY"
    return (OrderDataFile.objects.filter(project=project, order_id=order.pk)
            .order_by(Collate("filename", binary), "id")
            .values_list(*ZIP_NAME_ROW_FIELDS).iterator(chunk_size=ZIP_ROW_FETCH))


def zip_source_rows(*, project: Project, order: Order, file_ids) -> list[tuple]:
    """ZIP_SOURCE_FIELDS tuples of these files of the order (a batch: at most a few thousand ids).

    Found by primary key only, the order checked on the rows: given `order_id` in the WHERE
    clause, SQLite walked the order's `(order, position)` index for every batch (a resumed
    zip of a million files waited two minutes for its first byte)."""
    rows = (OrderDataFile.objects.filter(project=project, id__in=list(file_ids)).order_by()
            .values_list("order_id", *ZIP_SOURCE_FIELDS))
    return [row[1:] for row in rows if row[0] == order.pk]


def order_file_names(*, project: Project, order: Order, reserved=RESERVED_ZIP_NAMES) -> UniqueNames:
    """Unique download names over ALL files of the order, so successive zips and the metalink
    extracted into one folder never overwrite one file with another: `.name(id, filename)`.
    Two passes over (id, filename), ~8 bytes kept per file (see UniqueNames)."""
    pairs = OrderDataFile.objects.filter(project=project, order_id=order.pk).values_list("id", "filename")
    return UniqueNames(lambda: pairs.iterator(chunk_size=5000), reserved=reserved)


METALINK_FIELDS = ("id", "filename", "size", "checksum", "sha256", "mime_type", "product_id")


def metalink_rows(*, project: Project, order: Order):
    """METALINK_FIELDS tuples of every file of the order that is or will be downloadable (not
    the ones in ERROR), by id, streamed from the database."""
    return (OrderDataFile.objects.filter(project=project, order_id=order.pk)
            .exclude(state__in=(FileState.ERROR, FileState.PROCESSING_ERROR))
            .order_by("id").values_list(*METALINK_FIELDS).iterator(chunk_size=5000))
