"""Building an order in the background: its frozen basket selection resolved into dataset
tasks, sub-orders and files, then the order started."""
from __future__ import annotations

from django.db import IntegrityError, connection, transaction
from django.db.models import Max, Sum
from django.utils import timezone

from portal.catalog.models import Dataset
from portal.tenancy.models import Project

from . import codes, dispatch
from .bulk import insert_order_files_from_query
from .models import DatasetTask, FileState, Order, OrderDataFile, SubOrder
from .progress import order_progress_refresh
from .scheduling import suborders_schedule
from .transitions import Action, order_lock, order_transition


# An order with at least this many files is followed by an ANALYZE of the order files table
# (PostgreSQL, in the build's transaction): the planner otherwise takes the new order for a
# handful of rows and plans its staging and download bookkeeping as scans of all its files.
ANALYZE_MIN_FILES = 100_000


class BuildRaced(RuntimeError):
    """The catalog changed while an order was being built (the build is rolled back)."""


def dataset_task_build(*, project: Project, order: Order, dataset: Dataset | None, dataset_ip_id: str,
                       dataset_label: str, files, objects_count: int | None = None,
                       selection: dict | None = None) -> DatasetTask:
    """Makes one dataset task, its sub-orders and its files from a DataFile queryset.

    Splits greedily in (data object, file) order: a new sub-order starts when the current
    one would exceed the project's max files or max bytes. Only the sizes come to Python;
    the rows are copied inside the database (one INSERT ... SELECT, no per-file query).
    """
    # Positions continue after the files of the order's earlier tasks (one index lookup).
    last = OrderDataFile.objects.filter(project=project, order_id=order.pk).aggregate(last=Max("position"))["last"] or 0
    task = DatasetTask.objects.create(project=project, order=order, dataset=dataset, dataset_label=dataset_label,
                                      dataset_ip_id=dataset_ip_id, selection=selection or {},
                                      first_position=last + 1)
    max_files, max_bytes = project.suborder_max_files, project.suborder_max_bytes
    chunks: list[list[int]] = []  # [files, bytes] per sub-order
    count = size_in_chunk = 0
    for size in files.order_by("data_object_id", "id").values_list("size", flat=True).iterator(chunk_size=20_000):
        if not chunks or count >= max_files or (count and size_in_chunk + size > max_bytes):
            chunks.append([0, 0])
            count = size_in_chunk = 0
        count += 1
        size_in_chunk += size
        chunks[-1][0], chunks[-1][1] = count, size_in_chunk
    sub_orders = SubOrder.objects.bulk_create([
        SubOrder(project=project, order=order, dataset_task=task, owner_id=order.owner_id, files_count=n,
                 files_size=b, pending_count=n) for n, b in chunks])
    ranges, first = [], 1
    for sub_order, (n, _) in zip(sub_orders, chunks):
        ranges.append((first, first + n - 1, sub_order.pk))
        first += n
    total_files, total_size = sum(n for n, _ in chunks), sum(b for _, b in chunks)
    inserted = insert_order_files_from_query(project_id=project.pk, order_id=order.pk, files=files, ranges=ranges,
                                             state=FileState.PENDING, now=timezone.now(),
                                             first_position=last + 1)
    if inserted != total_files:  # the catalog changed between the two reads: build again
        raise BuildRaced(f"expected {total_files} files, copied {inserted}")
    if objects_count is None:
        objects_count = files.order_by().values("data_object_id").distinct().count()
    DatasetTask.objects.filter(pk=task.pk).update(objects_count=objects_count, files_count=total_files,
                                                  files_size=total_size)
    return task


def _build_from_selection(*, project: Project, order: Order) -> None:
    from basket.selectors import snapshot_dataset_files, snapshot_dataset_objects_count
    from basket.snapshot import snapshot_from_json

    for entry in snapshot_from_json(order.selection):
        dataset = Dataset.objects.filter(project=project, pk=entry.dataset_id).first()
        if dataset is None and entry.dataset_ip_id:
            dataset = Dataset.objects.filter(project=project, ip_id=entry.dataset_ip_id).first()
        files = snapshot_dataset_files(project=project, dataset_entry=entry)
        objects_count = snapshot_dataset_objects_count(project=project, dataset_entry=entry)
        dataset_task_build(project=project, order=order, dataset=dataset,
                           dataset_ip_id=entry.dataset_ip_id or str(entry.dataset_id),
                           dataset_label=entry.dataset_label or entry.dataset_ip_id, files=files,
                           objects_count=objects_count, selection=entry.to_json())


def order_build(*, project: Project, order_id: int, resolver=None) -> bool:
    """Resolves the order's frozen selection into files and sub-orders, then starts it.

    One transaction: a worker killed mid-way leaves nothing behind and the redelivered task
    builds again. Idempotent: a built order is left alone; a concurrent duplicate run fails
    on the dataset task's unique constraint and gives up. Returns whether it built.
    `resolver(project=, order=)` replaces the basket resolution (tests, bench).
    """
    order = Order.objects.filter(project=project, id=order_id).first()
    if order is None or order.built_at is not None:
        return False
    try:
        with transaction.atomic():
            (resolver or _build_from_selection)(project=project, order=order)
            _analyze_if_large(project=project, order_id=order_id)
            order_build_finish(project=project, order_id=order_id)
    except IntegrityError:
        if Order.objects.filter(project=project, id=order_id, built_at__isnull=False).exists():
            return False
        raise
    except Order.DoesNotExist:  # removed while building
        return False
    return True


def _analyze_if_large(*, project: Project, order_id: int) -> None:
    if connection.vendor != "postgresql":
        return
    files = DatasetTask.objects.filter(project=project, order_id=order_id).aggregate(n=Sum("files_count"))["n"]
    if (files or 0) >= ANALYZE_MIN_FILES:
        with connection.cursor() as cursor:
            # Samples a bounded number of rows (default_statistics_target), whatever the table's size.
            cursor.execute(f"ANALYZE {connection.ops.quote_name(OrderDataFile._meta.db_table)}")


@transaction.atomic
def order_build_finish(*, project: Project, order_id: int) -> Order:
    """Totals, built_at, PENDING -> RUNNING (a paused order stays paused), sub-orders scheduled."""
    order = order_lock(project=project, order_id=order_id)
    if order.built_at is not None:
        return order
    totals = DatasetTask.objects.filter(project=project, order_id=order_id).aggregate(
        files=Sum("files_count"), size=Sum("files_size"))
    order.built_at = timezone.now()
    order.files_count, order.files_size = totals["files"] or 0, totals["size"] or 0
    if order.files_count == 0:
        order.message = codes.EMPTY_BASKET_MESSAGE
    Order.objects.filter(pk=order.pk).update(built_at=order.built_at, files_count=order.files_count,
                                             files_size=order.files_size, message=order.message)
    order_transition(project=project, order_id=order_id, action=Action.START, refuse=False)
    # Sub-orders were made with their counters (all files pending): nothing to recount.
    order = order_progress_refresh(project=project, order_id=order_id, sub_order_ids=())
    suborders_schedule(project=project, owner_id=order.owner_id)
    dispatch.task_on_commit("order_mail_task", project.pk, order.pk, "created")
    return order
