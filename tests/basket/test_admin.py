"""The basket rows in the admin console: a project ADMIN sees only their project's baskets."""
import pytest
from django.test import Client

from basket.models import BasketDatasetSelection, BasketItemSelection
from portal.tenancy.models import Role
from tests.basket.conftest import SELECTION_URL
from tests.catalog.factories import DatasetFactory
from tests.conftest import make_member
from tests.basket.conftest import make_object

pytestmark = pytest.mark.django_db


def test_project_admin_sees_only_their_projects_baskets(member, other_project, catalog):
    member.client.post(SELECTION_URL, {"selectAllOpenSearchRequest": "tags:red"}, format="json")
    outsider = make_member(other_project, email="outsider@beta.org")
    make_object(DatasetFactory(project=other_project, label="Beta data"))
    assert outsider.client.post(SELECTION_URL, {"selectAllOpenSearchRequest": "tags:red"},
                                format="json").status_code == 200
    admin = make_member(member.project, Role.ADMIN)
    admin.user.is_staff = True
    admin.user.save()
    client = Client()
    client.force_login(admin.user)

    baskets = client.get("/admin/basket/basket/")
    assert baskets.status_code == 200
    assert member.user.email.encode() in baskets.content and b"outsider@beta.org" not in baskets.content
    selections = client.get("/admin/basket/basketdatasetselection/")
    assert selections.status_code == 200
    selection = BasketDatasetSelection.unscoped_objects.filter(project=member.project).first()
    assert client.get(f"/admin/basket/basketdatasetselection/{selection.pk}/change/").status_code == 200
    foreign = BasketItemSelection.unscoped_objects.get(project=other_project)
    assert client.get(f"/admin/basket/basketitemselection/{foreign.pk}/change/").status_code in (302, 404)
    assert client.get("/admin/basket/basketitemselection/?q=red").status_code == 200
