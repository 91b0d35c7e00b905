"""The catalog's tenant models fail closed: no scope, no rows; a scope shows only its project."""
import pytest

from portal.catalog.models import DataFile, DataObject, Dataset
from portal.tenancy.scope import ScopeError, project_scope

from .factories import DataFileFactory, DatasetFactory

pytestmark = pytest.mark.django_db


def test_catalog_models_fail_closed(two_projects):
    a, b = two_projects
    DatasetFactory(project=a, label="A dataset")
    DataFileFactory(project=b)  # with its object and dataset in B

    # Outside any scope, the default manager refuses instead of returning every tenant's rows.
    for model in (Dataset, DataObject, DataFile):
        with pytest.raises(ScopeError):
            model.objects.count()

    with project_scope(a):
        assert list(Dataset.objects.values_list("label", flat=True)) == ["A dataset"]
        assert DataObject.objects.count() == 0 and DataFile.objects.count() == 0
    with project_scope(b):
        assert Dataset.objects.count() == 1 and DataObject.objects.count() == 1 and DataFile.objects.count() == 1
        assert not Dataset.objects.filter(label="A dataset").exists()

    # The explicit escape hatch sees both.
    assert Dataset.unscoped_objects.count() == 2
    assert set(Dataset.unscoped_objects.values_list("project__slug", flat=True)) == {"alpha", "beta"}
