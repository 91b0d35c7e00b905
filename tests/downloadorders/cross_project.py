"""Cross-project harness providers: a download order of project A and one of its targets."""
from deliveries.downloadorders.services import DownloadOrderRequest, download_order_create
from portal.tenancy.scope import project_scope
from tests.catalog.factories import DataFileFactory, DataObjectFactory, DatasetFactory
from tests.cross_project import provides


def download_order_of_a(ctx):
    def create():
        dataset = DatasetFactory(project=ctx.project, label=f"{ctx.marker} ordered dataset")
        obj = DataObjectFactory(dataset=dataset, label=f"{ctx.marker} ordered object")
        DataFileFactory(data_object=obj, filename=f"{ctx.marker}-ordered.dat")
        with project_scope(ctx.project):
            order = download_order_create(project=ctx.project, owner=ctx.owner.user, request=DownloadOrderRequest(
                selection_pool="entities", entities=(obj.ip_id,), name=f"{ctx.marker} download order"))
        return order, obj

    return ctx.once("download_order", create)


@provides("downloadOrderId")
def download_order_id_of_a(ctx) -> int:
    return download_order_of_a(ctx)[0].pk


@provides("entityId")
def entity_id_of_a(ctx) -> str:
    return str(download_order_of_a(ctx)[1].pk)
