"""Bulk insertion of order data files.

A 100,000-object order inserts hundreds of thousands of rows: `insert_order_files_from_query`
copies them inside the database with one INSERT ... SELECT (no row travels through Python,
no model instance is built).
"""
from __future__ import annotations

from datetime import datetime

from django.db import connection
from django.db.models import F, QuerySet

from .models import OrderDataFile

FILE_COLUMNS = ("project_id", "order_id", "sub_order_id", "data_file_id", "product_id", "data_type",
                "filename", "mime_type", "size", "checksum", "sha256", "crc32", "tier", "location",
                "state", "state_date", "error_reason", "cache_path", "position")


# Aliases of the catalog columns an order file copies, in FILE_COLUMNS order from data_file_id.
_SOURCE = (("f_id", "id"), ("f_ip", "data_object__ip_id"), ("f_type", "data_type"), ("f_name", "filename"),
           ("f_mime", "mime_type"), ("f_size", "size"), ("f_md5", "checksum"), ("f_sha", "sha256"),
           ("f_crc", "crc32"), ("f_tier", "tier"), ("f_loc", "location"))


def insert_order_files_from_query(*, project_id: int, order_id: int, files: QuerySet,
                                  ranges: list[tuple[int, int, int]], state: str, now: datetime,
                                  first_position: int = 1) -> int:
    """Copies the catalog files of `files` into order files with one INSERT ... SELECT.

    Files are numbered in (data object, id) order; `ranges` gives each sub-order its
    positions: (first, last, sub_order_id), 1-based and inclusive. Rows are inserted in that
    order (so ids follow it) with `position` = `first_position` - 1 + their number. Returns
    the rows inserted.
    """
    if not ranges:
        return 0
    source = files.order_by().values(f_obj=F("data_object_id"), **{alias: F(path) for alias, path in _SOURCE})
    inner_sql, inner_params = source.query.sql_with_params()
    qn = connection.ops.quote_name
    table = qn(OrderDataFile._meta.db_table)
    columns = ", ".join(qn(c) for c in FILE_COLUMNS)
    copied = ", ".join(f"f.{alias}" for alias, _ in _SOURCE)
    numbered = f"(SELECT q.*, ROW_NUMBER() OVER (ORDER BY q.f_obj, q.f_id) AS rn FROM ({inner_sql}) q) f"
    if connection.vendor == "postgresql":
        # The sub-order of a file: a binary search of its number in the ranges' first numbers
        # (width_bucket), not a join testing every range against every file; rows stay in
        # the window's order, so no sort of the whole order before the insert.
        sql = (
            f"INSERT INTO {table} ({columns}) "
            f"SELECT %s, %s, (%s::bigint[])[width_bucket(f.rn, %s::bigint[])], {copied}, %s, %s, '', '', "
            f"f.rn + %s FROM {numbered} WHERE f.rn <= %s ORDER BY f.f_obj, f.f_id"
        )
        params = [project_id, order_id, [sub for _, _, sub in ranges], [lo for lo, _, _ in ranges], state, now,
                  first_position - 1, *inner_params, ranges[-1][1]]
    else:
        bounds = ", ".join(["(%s, %s, %s)"] * len(ranges))
        sql = (
            f"INSERT INTO {table} ({columns}) "
            # The CTE inside the INSERT's query: sqlite3 reports no rowcount for a leading WITH.
            f"WITH b (lo, hi, sub_order_id) AS (VALUES {bounds}) "
            f"SELECT %s, %s, b.sub_order_id, {copied}, %s, %s, '', '', f.rn + %s "
            f"FROM {numbered} JOIN b ON f.rn BETWEEN b.lo AND b.hi ORDER BY f.rn"
        )
        params = [value for bound in ranges for value in bound] + [project_id, order_id, state, now,
                                                                   first_position - 1, *inner_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
