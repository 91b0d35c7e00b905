"""CSV export of orders (ADMIN): streamed row by row, constant memory at any size."""
from __future__ import annotations

import csv
from typing import Iterator

from django.db import connection
from django.http import StreamingHttpResponse

from portal.tenancy.models import Project
from portal.tenancy.scope import project_scope

from .selectors import OrderFilters, order_csv_copy_sql, order_csv_rows
from .serializers import iso_utc

HEADER = ("ORDER_ID", "CREATION_DATE", "EXPIRATION_DATE", "OWNER", "STATUS", "STATUS_DATE",
          "PERCENT_COMPLETE", "FILES_IN_ERROR", "FILES_SIZE", "FILES_COUNT")


class _Line:
    """A write-only 'file' for csv.writer: returns each formatted line instead of storing it."""

    def write(self, value: str) -> str:
        return value


COPY_CHUNK = 64 * 1024


def _copied_lines(*, project: Project, filters: OrderFilters) -> Iterator[bytes]:
    """The rows as PostgreSQL's COPY writes them, gathered into ~64 KiB chunks."""
    sql, params = order_csv_copy_sql(project=project, filters=filters, delimiter=";")
    buffer = bytearray()
    with connection.cursor() as cursor, cursor.cursor.copy(sql, params) as copy:
        for data in copy:
            buffer += data
            if len(buffer) >= COPY_CHUNK:
                yield bytes(buffer)
                buffer.clear()
    if buffer:
        yield bytes(buffer)


def _written_lines(*, project: Project, filters: OrderFilters) -> Iterator[str]:
    """The same rows formatted here (SQLite; the reference the COPY path is tested against)."""
    writer = csv.writer(_Line(), delimiter=";", lineterminator="\n")
    for (order_id, created, expires, owner, status, status_date, percent, errors, size,
         count) in order_csv_rows(project=project, filters=filters):
        yield writer.writerow((order_id, iso_utc(created) or "", iso_utc(expires) or "", owner, status,
                               iso_utc(status_date) or "", percent, errors, size, count))


def orders_csv_lines(*, project: Project, filters: OrderFilters) -> Iterator[str | bytes]:
    """Runs after the view returned: re-enters the project scope captured by the caller."""
    writer = csv.writer(_Line(), delimiter=";", lineterminator="\n")
    yield writer.writerow(HEADER)
    with project_scope(project):
        rows = _copied_lines if connection.vendor == "postgresql" else _written_lines
        yield from rows(project=project, filters=filters)


def orders_csv_response(*, project: Project, filters: OrderFilters) -> StreamingHttpResponse:
    response = StreamingHttpResponse(orders_csv_lines(project=project, filters=filters),
                                     content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = "attachment;filename=orders.csv"
    return response
