"""Cross-project harness providers for the catalog endpoints' path parameters."""
from tests.cross_project import provides

from .factories import DataFileFactory, DataObjectFactory


def _file_in_a(ctx):
    def make():
        obj = DataObjectFactory(project=ctx.project, label=f"{ctx.marker} object", tags=[ctx.marker])
        return DataFileFactory(data_object=obj, filename=f"{ctx.marker}.dat",
                               content=f"secret bytes of {ctx.marker}".encode())
    return ctx.once("catalog-file", make)


@provides("productURN")
def product_urn_in_a(ctx):
    return _file_in_a(ctx).data_object.ip_id


@provides("checksum")
def checksum_in_a(ctx):
    return _file_in_a(ctx).checksum


@provides("urn")
def data_object_urn_in_a(ctx):
    return _file_in_a(ctx).data_object.ip_id


@provides("datasetUrn")
def dataset_urn_in_a(ctx):
    return _file_in_a(ctx).data_object.dataset.ip_id
