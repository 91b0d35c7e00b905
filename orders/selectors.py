"""Reads of orders: one query per list (plus one prefetch), filters by project explicitly."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple
from datetime import datetime

from django.db import connection
from django.db.models import CharField, Count, F, Func, JSONField, Prefetch, Q, QuerySet, Window
from django.db.models.expressions import RawSQL
from portal.errors import NotAllowed, NotFound
from portal.tenancy.models import Project

from . import codes
from .models import DatasetTask, Order, OrderDataFile, OrderStatus, SubOrder


@dataclass(frozen=True)
class OrderFilters:
    """Admin filters (GET /orders query or POST /orders/search body)."""

    owner_email: str | None = None
    statuses: tuple[str, ...] = field(default_factory=tuple)
    statuses_mode: str = "INCLUDE"  # or EXCLUDE
    created_after: datetime | None = None
    created_before: datetime | None = None
    waiting_for_user: bool | None = None


def _with_body_relations(qs: QuerySet) -> QuerySet:
    tasks = DatasetTask.unscoped_objects.only(
        "id", "order_id", "dataset_label", "objects_count", "files_count", "files_size", "first_position").order_by("id")
    return qs.select_related("owner").prefetch_related(Prefetch("dataset_tasks", queryset=tasks))


# An order's dataset tasks as TaskRow fields, by id, within the order's own row (the tasks
# belong to the order, which the list's query already scoped to its project).
_TASKS_JSON = RawSQL(
    "(SELECT COALESCE(jsonb_agg(jsonb_build_array(t.id, t.dataset_label, t.objects_count, t.files_count,"
    f" t.files_size) ORDER BY t.id), '[]'::jsonb) FROM {DatasetTask._meta.db_table} t"
    f" WHERE t.order_id = {Order._meta.db_table}.id)", [], output_field=JSONField())


class TaskRow(NamedTuple):
    """What an order's body says of a dataset task (a tuple: lists render fifty orders)."""

    pk: int
    dataset_label: str
    objects_count: int
    files_count: int
    files_size: int


# What a listed order's body reads (order_content, order_links).
_ROW_FIELDS = ("id", "label", "creation_date", "expiration_date", "percent_completed", "files_in_error_count",
               "available_files_count", "status", "status_date", "waiting_for_user", "frontend_url", "message")
_ROW_DATES = ("creation_date", "expiration_date", "status_date")


class IsoUtc(Func):
    """PostgreSQL: a date as `iso_utc` writes it (UTC, to the millisecond, truncated, `Z`), by the
    database: formatting is cheaper there than loading a datetime and formatting it in Python."""

    template = """to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""
    output_field = CharField()


class OrderRow:
    """A listed order as `order_body` reads it, without a model instance per row."""

    __slots__ = (*_ROW_FIELDS, "owner_email", "task_rows")

    def __init__(self, values: dict, task_rows: list[TaskRow]):
        for name in _ROW_FIELDS:  # a date as a datetime, or as its text when the database formatted it
            setattr(self, name, values[name] if name in values else values[f"{name}_iso"])
        self.owner_email = values["owner_email"]
        self.task_rows = task_rows

    @property
    def pk(self) -> int:
        return self.id


def orders_page(qs: QuerySet[Order], *, offset: int, size: int) -> tuple[list[OrderRow], int]:
    """A page of a list of orders ready for `order_body`: the orders' columns with their owner's
    email and the list's total (COUNT(*) OVER (), not a COUNT first), and their dataset tasks as
    TaskRows (not a prefetch, which builds a queryset per order).

    PostgreSQL answers in one query and formats the dates (IsoUtc), the tasks aggregated as JSON
    per order: a list of fifty orders costs about what one order does. Elsewhere a second query
    reads the page's tasks."""
    on_postgresql = connection.vendor == "postgresql"
    computed = {"owner_email": F("owner__email"), "list_total": Window(Count("pk"))}
    if on_postgresql:
        computed.update({f"{name}_iso": IsoUtc(name) for name in _ROW_DATES}, task_list=_TASKS_JSON)
    plain = [name for name in _ROW_FIELDS if not (on_postgresql and name in _ROW_DATES)]
    rows = list(qs.prefetch_related(None).select_related(None).values(*plain, **computed)[offset : offset + size])
    total = rows[0]["list_total"] if rows else (qs.count() if offset else 0)
    if on_postgresql:
        return [OrderRow(row, [TaskRow(*task) for task in row["task_list"]]) for row in rows], total
    tasks: dict[int, list[TaskRow]] = {row["id"]: [] for row in rows}
    if rows:
        for order_id, *task in (DatasetTask.objects.filter(order_id__in=list(tasks)).order_by("id")
                                .values_list("order_id", "id", "dataset_label", "objects_count", "files_count",
                                             "files_size")):
            tasks[order_id].append(TaskRow(*task))
    return [OrderRow(row, tasks[row["id"]]) for row in rows], total


def _refuse_unless_callers(*, order_id: int, owner_id: int | None, user, is_admin: bool) -> None:
    if owner_id is None:
        raise NotFound(codes.ORDER_NOT_FOUND, f"Order {order_id} does not exist.")
    if owner_id != user.pk and not is_admin:
        raise NotAllowed(codes.USER_NOT_ALLOWED_TO_MANAGE_ORDER)


def order_for_caller(*, project: Project, user, order_id: int, is_admin: bool) -> Order:
    """The order if the caller owns it or administers the project: NotFound unknown, NotAllowed not theirs."""
    order = _with_body_relations(Order.objects.filter(project=project, id=order_id)).first()
    _refuse_unless_callers(order_id=order_id, owner_id=order and order.owner_id, user=user, is_admin=is_admin)
    return order


def order_check_caller(*, project: Project, user, order_id: int, is_admin: bool) -> None:
    """The same checks as order_for_caller, with one light query (before a locking service)."""
    owner_id = Order.objects.filter(project=project, id=order_id).values_list("owner_id", flat=True).first()
    _refuse_unless_callers(order_id=order_id, owner_id=owner_id, user=user, is_admin=is_admin)


def order_list_for_owner(*, project: Project, owner) -> QuerySet[Order]:
    """The owner's orders except DELETED ones, newest first."""
    qs = Order.objects.filter(project=project, owner=owner).exclude(status=OrderStatus.DELETED)
    return _with_body_relations(qs).order_by("-creation_date", "-id")


def _filtered(project: Project, filters: OrderFilters) -> QuerySet[Order]:
    qs = Order.objects.filter(project=project)
    if filters.owner_email:
        qs = qs.filter(owner__email__iexact=filters.owner_email)
    if filters.statuses:
        if filters.statuses_mode == "EXCLUDE":
            qs = qs.exclude(status__in=filters.statuses)
        else:
            qs = qs.filter(status__in=filters.statuses)
    if filters.created_after:
        qs = qs.filter(creation_date__gte=filters.created_after)
    if filters.created_before:
        qs = qs.filter(creation_date__lte=filters.created_before)
    if filters.waiting_for_user is not None:
        qs = qs.filter(waiting_for_user=filters.waiting_for_user)
    return qs


def order_list_for_admin(*, project: Project, filters: OrderFilters) -> QuerySet[Order]:
    return _with_body_relations(_filtered(project, filters)).order_by("-creation_date", "-id")


CSV_COLUMNS = ("id", "creation_date", "expiration_date", "owner__email", "status", "status_date",
               "percent_completed", "files_in_error_count", "files_size", "files_count")


def order_csv_rows(*, project: Project, filters: OrderFilters, chunk_size: int = 2000):
    """Plain tuples by id, fetched in chunks (server-side cursor on PostgreSQL)."""
    return _filtered(project, filters).order_by("id").values_list(*CSV_COLUMNS).iterator(chunk_size=chunk_size)


_CSV_DATES = {"creation_date", "expiration_date", "status_date"}


def order_csv_copy_sql(*, project: Project, filters: OrderFilters, delimiter: str) -> tuple[str, list]:
    """PostgreSQL only: `COPY (...) TO STDOUT` of the CSV_COLUMNS rows by id as CSV, dates
    formatted like `iso_utc` (to the millisecond, truncated, `Z`), NULL dates empty. The
    database formats the rows: a million orders leave it at the speed of COPY."""
    aliases = {f"c{i}": F(column) for i, column in enumerate(CSV_COLUMNS)}
    inner, params = _filtered(project, filters).order_by("id").values(**aliases).query.sql_with_params()
    outer = ", ".join(IsoUtc.template % {"expressions": f"q.c{i}"} if column in _CSV_DATES
                      else f"q.c{i}" for i, column in enumerate(CSV_COLUMNS))
    assert len(delimiter) == 1 and delimiter not in "'\\"
    return (f"COPY (SELECT {outer} FROM ({inner}) q) TO STDOUT (FORMAT csv, DELIMITER '{delimiter}')",
            list(params))


PAGE_FILE_FIELDS = ("id", "order_id", "product_id", "filename", "size", "mime_type", "state", "state_date",
                    "error_reason", "data_type", "tier")


def order_files_for_page(*, project: Project, order: Order) -> QuerySet[OrderDataFile]:
    """Every file of the order with its state, by id (the API lists them per dataset task)."""
    return (OrderDataFile.objects.filter(project=project, order_id=order.pk)
            .only(*PAGE_FILE_FIELDS).order_by("id"))


def order_files_all_downloadable(*, project: Project, order: Order) -> bool:
    """Whether every file of the order is downloadable (none PENDING or in an error state):
    one probe of the order's sub-orders' counters, not of its files (no index holds a file's
    state, so a probe of the files would read every row of a finished order).

    True is exact: a file enters PENDING or an error state only with its sub-order's
    counters created (build) or recounted (download failure) in the same transaction, or
    while it is still counted pending or in error (staging's failures, retries), so a
    counter not yet recounted only ever answers False (the caller's slower, exact path)."""
    return not SubOrder.objects.filter(project=project, order_id=order.pk).filter(
        Q(pending_count__gt=0) | Q(error_count__gt=0)).exists()
