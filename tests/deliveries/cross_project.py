"""Cross-project harness providers: a done delivery of project A (its catalogId and an artifact)."""
from deliveries.models import DeliveryArtifact
from deliveries.preparation import delivery_build
from deliveries.selectors import DATA_OBJECT, Target
from deliveries.services import delivery_prepare
from portal.tenancy.scope import project_scope
from tests.catalog.factories import DataFileFactory, DataObjectFactory, DatasetFactory
from tests.cross_project import PUBLIC_URL_NAMES, provides

# The public key that verifies signatures belongs to the installation, not to a project.
PUBLIC_URL_NAMES.add("delivery-signing-key")


def delivery_of_a(ctx):
    def create():
        dataset = DatasetFactory(project=ctx.project, label=f"{ctx.marker} delivered dataset")
        obj = DataObjectFactory(dataset=dataset, label=f"{ctx.marker} delivered object")
        DataFileFactory(data_object=obj, filename=f"{ctx.marker}-delivered.dat")
        with project_scope(ctx.project):
            delivery = delivery_prepare(project=ctx.project, user=ctx.owner.user,
                                        target=Target(DATA_OBJECT, obj.ip_id))
            delivery_build(project=ctx.project, delivery_id=delivery.pk, generation=delivery.generation)
        return delivery

    return ctx.once("delivery", create)


@provides("catalogId")
def catalog_id_of_a(ctx) -> str:
    return delivery_of_a(ctx).catalog_id


@provides("artifactId")
def artifact_id_of_a(ctx) -> int:
    delivery = delivery_of_a(ctx)
    return DeliveryArtifact.unscoped_objects.filter(delivery=delivery).order_by("id").values_list("id", flat=True)[1]
