"""Wire shapes of orders (REGARDS camelCase). `order_body` renders one order with its links."""
from __future__ import annotations

from rest_framework import serializers

from portal.api.pagination import page_output_serializer
from portal.dates import iso_utc

from .models import Order, OrderStatus
from .transitions import order_links


def order_content(order: Order) -> dict:
    return {
        "id": order.pk,
        "owner": getattr(order, "owner_email", None) or order.owner.email,
        "label": order.label,
        "creationDate": iso_utc(order.creation_date),
        "expirationDate": iso_utc(order.expiration_date),
        "percentCompleted": order.percent_completed,
        "filesInErrorCount": order.files_in_error_count,
        "availableFilesCount": order.available_files_count,
        "status": order.status,
        "statusDate": iso_utc(order.status_date),
        "waitingForUser": order.waiting_for_user,
        "frontendUrl": order.frontend_url or None,
        "message": order.message or None,
        "datasetTasks": [
            {"id": task.pk, "datasetLabel": task.dataset_label, "objectsCount": task.objects_count,
             "filesCount": task.files_count, "filesSize": task.files_size}
            for task in _tasks(order)
        ],
    }


def _tasks(order: Order):
    # A page of orders carries its tasks as rows (selectors.orders_page); one order, prefetched.
    rows = getattr(order, "task_rows", None)
    return rows if rows is not None else order.dataset_tasks.all()


def order_body(order: Order, *, is_admin: bool) -> dict:
    """`{"content": {...}, "links": [...]}`; needs owner and dataset_tasks loaded (selectors do)."""
    return {"content": order_content(order), "links": order_links(order, is_admin=is_admin)}


# --- serializers for input validation and the OpenAPI schema ---------------------------

class OrderCreateInputSerializer(serializers.Serializer):
    # Length and uniqueness are checked by the service (with REGARDS' 422 codes).
    label = serializers.CharField(required=False, allow_blank=True, allow_null=True, trim_whitespace=True)
    onSuccessUrl = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=2000)


class OrderExtendInputSerializer(serializers.Serializer):
    days = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=3650)


class OrderStatusesFilterSerializer(serializers.Serializer):
    values = serializers.ListField(child=serializers.ChoiceField(choices=OrderStatus.choices), max_length=20)
    mode = serializers.ChoiceField(choices=["INCLUDE", "EXCLUDE"], default="INCLUDE")


class OrderDateRangeSerializer(serializers.Serializer):
    after = serializers.DateTimeField(required=False, allow_null=True)
    before = serializers.DateTimeField(required=False, allow_null=True)


class OrderSearchInputSerializer(serializers.Serializer):
    owner = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=254)
    statuses = OrderStatusesFilterSerializer(required=False, allow_null=True)
    creationDate = OrderDateRangeSerializer(required=False, allow_null=True)
    waitingForUser = serializers.BooleanField(required=False, allow_null=True)


class OrderLinkSerializer(serializers.Serializer):
    rel = serializers.CharField()
    href = serializers.CharField()


class OrderDatasetTaskOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    datasetLabel = serializers.CharField()
    objectsCount = serializers.IntegerField()
    filesCount = serializers.IntegerField()
    filesSize = serializers.IntegerField()


class OrderContentOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    owner = serializers.EmailField()
    label = serializers.CharField()
    creationDate = serializers.CharField()
    expirationDate = serializers.CharField()
    percentCompleted = serializers.IntegerField()
    filesInErrorCount = serializers.IntegerField()
    availableFilesCount = serializers.IntegerField()
    status = serializers.ChoiceField(choices=OrderStatus.choices)
    statusDate = serializers.CharField()
    waitingForUser = serializers.BooleanField()
    frontendUrl = serializers.CharField(allow_null=True)
    message = serializers.CharField(allow_null=True)
    datasetTasks = OrderDatasetTaskOutputSerializer(many=True)


class OrderBodyOutputSerializer(serializers.Serializer):
    content = OrderContentOutputSerializer()
    links = OrderLinkSerializer(many=True)


OrderPageOutputSerializer = page_output_serializer("OrderPageOutputSerializer", OrderBodyOutputSerializer)
