"""Bulk insertion of order data files: COPY on PostgreSQL, executemany elsewhere.

A 100,000-object order inserts hundreds of thousands of rows; building model instances
for them would dominate the build time, so rows go to the database as plain tuples.
"""
from __future__ import annotations

from django.db import connection

from .models import OrderDataFile

FILE_COLUMNS = ("project_id", "order_id", "sub_order_id", "data_file_id", "product_id", "data_type",
                "filename", "mime_type", "size", "checksum", "sha256", "crc32", "tier", "location",
                "state", "state_date", "error_reason", "cache_path")


def insert_order_files(rows: list[tuple]) -> None:
    """Inserts rows whose values follow FILE_COLUMNS (one batch)."""
    if not rows:
        return
    table = connection.ops.quote_name(OrderDataFile._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(c) for c in FILE_COLUMNS)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            placeholders = ", ".join(["%s"] * len(FILE_COLUMNS))
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", rows)
