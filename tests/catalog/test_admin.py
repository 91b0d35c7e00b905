"""The catalog in the admin console: a project ADMIN sees and searches only their project's rows."""
import pytest
from django.test import Client

from portal.tenancy.models import Role
from tests.conftest import make_member

from .factories import DataFileFactory, DataObjectFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def console(two_projects):
    alpha, _ = two_projects
    admin = make_member(alpha, Role.ADMIN)
    admin.user.is_staff = True
    admin.user.save()
    client = Client()
    client.force_login(admin.user)
    return client


def test_project_admin_sees_only_their_catalog(two_projects, console):
    alpha, beta = two_projects
    mine = DataFileFactory(data_object=DataObjectFactory(project=alpha, label="Alpha scene", tags=["clear"]),
                           filename="alpha.tif")
    theirs = DataFileFactory(data_object=DataObjectFactory(project=beta, label="Beta scene"), filename="beta.tif")

    for path in ("dataset", "dataobject", "datafile"):
        listing = console.get(f"/admin/catalog/{path}/")
        assert listing.status_code == 200, path
        assert b"beta" not in listing.content.lower().replace(b"alpha", b"")  # nothing of B

    objects = console.get("/admin/catalog/dataobject/", {"q": "clear"})
    assert b"Alpha scene" in objects.content
    files = console.get("/admin/catalog/datafile/", {"tier__exact": "ONLINE", "q": mine.checksum})
    assert b"alpha.tif" in files.content
    assert console.get(f"/admin/catalog/dataobject/{mine.data_object_id}/change/").status_code == 200
    assert console.get(f"/admin/catalog/datafile/{mine.pk}/change/").status_code == 200
    assert console.get(f"/admin/catalog/datafile/{theirs.pk}/change/").status_code in (302, 404)


def test_editing_tags_keeps_search_index(two_projects, console):
    alpha, _ = two_projects
    obj = DataObjectFactory(project=alpha, label="Scene", tags=["old"])
    response = console.post(f"/admin/catalog/dataobject/{obj.pk}/change/", {
        "ip_id": obj.ip_id, "label": "Scene", "creation_date_0": "2024-01-01", "creation_date_1": "00:00:00",
        "tags": '["new"]', "properties": "{}",
        "files-TOTAL_FORMS": "0", "files-INITIAL_FORMS": "0", "files-MIN_NUM_FORMS": "0", "files-MAX_NUM_FORMS": "1000",
    })
    assert response.status_code == 302, response.content[:2000]
    obj.refresh_from_db()
    assert obj.tags == ["new"] and obj.tags_index == "|new|"
