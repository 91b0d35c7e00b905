"""Cross-project harness providers: a built and staged order of project A's owner."""
from basket.services import SelectionRequest, basket_add_selection
from orders import build, services, staging
from orders.models import DatasetTask, Order, SubOrder, SubOrderState
from portal.catalog.models import DataType
from portal.tenancy.scope import project_scope
from tests.catalog.factories import DataFileFactory, DataObjectFactory, DatasetFactory
from tests.cross_project import provides


def order_of_a(ctx) -> Order:
    """One order of A (DONE, files AVAILABLE), labelled with the marker; created once."""
    def create():
        dataset = DatasetFactory(project=ctx.project, label=f"{ctx.marker} ordered dataset")
        obj = DataObjectFactory(dataset=dataset, label=f"{ctx.marker} ordered object", tags=["ordered"])
        DataFileFactory(data_object=obj, data_type=DataType.RAWDATA, filename=f"{ctx.marker}-ordered.dat")
        project = ctx.project
        with project_scope(project):
            basket_add_selection(project=project, owner=ctx.owner.user,
                                 selection=SelectionRequest(included_ip_ids=(obj.ip_id,)))
            order = services.order_create(project=project, owner=ctx.owner.user, label=f"{ctx.marker} order")
            build.order_build(project=project, order_id=order.pk)
            for sub_id in SubOrder.objects.filter(order=order, state=SubOrderState.STAGING).values_list("id", flat=True):
                staging.suborder_stage(project=project, sub_order_id=sub_id)
            return Order.objects.get(pk=order.pk)

    return ctx.once("order", create)


@provides("orderId")
def order_id_of_a(ctx) -> int:
    return order_of_a(ctx).pk


@provides("datasetTaskId")
def dataset_task_id_of_a(ctx) -> int:
    order = order_of_a(ctx)
    return DatasetTask.unscoped_objects.filter(order=order).values_list("id", flat=True).first()
