"""Reads only the pages need (everything else comes from the apps' own selectors)."""
from __future__ import annotations

from django.db.models import QuerySet

from orders.models import Order, OrderDataFile
from portal.tenancy.models import Project

PAGE_FILE_FIELDS = ("id", "order_id", "product_id", "filename", "size", "mime_type", "state", "state_date",
                    "error_reason", "data_type", "tier")


def order_files_for_page(*, project: Project, order: Order) -> QuerySet[OrderDataFile]:
    """Every file of the order with its state, by id (the API lists them per dataset task)."""
    return (OrderDataFile.objects.filter(project=project, order_id=order.pk)
            .only(*PAGE_FILE_FIELDS).order_by("id"))
