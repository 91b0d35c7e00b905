"""Cross-project harness provider: a file of project A's staged order (`dataFileId`).

`orderId` and `datasetTaskId` come from tests/orders/cross_project.py (the same order).
"""
from orders.models import OrderDataFile
from tests.cross_project import provides
from tests.orders.cross_project import order_of_a


@provides("dataFileId")
def order_file_id_of_a(ctx) -> int:
    order = order_of_a(ctx)
    return OrderDataFile.unscoped_objects.filter(order=order).values_list("id", flat=True).first()
