"""Cross-project harness providers: a basket of project A's owner with a dated selection."""
from basket.dates import format_date
from basket.models import BasketItemSelection
from basket.services import SelectionRequest, basket_add_selection
from portal.catalog.models import DataType
from portal.tenancy.scope import project_scope
from tests.catalog.factories import DataFileFactory, DataObjectFactory, DatasetFactory
from tests.cross_project import provides


def _basket_item(ctx) -> BasketItemSelection:
    def create():
        dataset = DatasetFactory(project=ctx.project, label=f"{ctx.marker} dataset")
        obj = DataObjectFactory(dataset=dataset, label=f"{ctx.marker} object", tags=["marked"])
        DataFileFactory(data_object=obj, data_type=DataType.RAWDATA, filename=f"{ctx.marker}.dat")
        with project_scope(ctx.project):
            basket_add_selection(project=ctx.project, owner=ctx.owner.user,
                                 selection=SelectionRequest(query="tags:marked"))
        return BasketItemSelection.unscoped_objects.get(project=ctx.project)

    return ctx.once("basket_item", create)


@provides("datasetSelectionId")
def dataset_selection_of_a(ctx) -> int:
    return _basket_item(ctx).dataset_selection_id


@provides("itemsSelectionDate")
def items_selection_date_of_a(ctx) -> str:
    return format_date(_basket_item(ctx).date)
