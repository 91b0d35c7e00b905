"""Admin console: deliveries scoped to the projects one administers; "rebuild deliveries"."""
import pytest
from django.test import Client

from deliveries.models import Delivery, DeliveryStatus
from portal.tenancy.models import Role
from tests.conftest import make_member

from .conftest import delivery_row, make_object, prepare, status_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def console(project):
    admin = make_member(project, Role.ADMIN)
    admin.user.is_staff = True
    admin.user.save()
    client = Client()
    client.force_login(admin.user)
    return client


def test_deliveries_are_listed_per_project_and_rebuilt(console, member, other_project, run_tasks):
    mine = make_object(member.project)
    prepare(member, mine.ip_id, run_tasks)
    stranger = make_member(other_project)
    theirs = make_object(other_project)
    prepare(stranger, theirs.ip_id)
    listing = console.get("/admin/deliveries/delivery/", {"q": "URN"})
    assert listing.status_code == 200
    assert mine.ip_id.encode() in listing.content and theirs.ip_id.encode() not in listing.content
    theirs_row = Delivery.unscoped_objects.get(catalog_id=theirs.ip_id)
    assert console.get(f"/admin/deliveries/delivery/{theirs_row.pk}/change/").status_code in (302, 404)
    mine_row = delivery_row(member.project, mine.ip_id)
    assert console.get(f"/admin/deliveries/delivery/{mine_row.pk}/change/").status_code == 200
    assert console.get("/admin/deliveries/deliveryartifact/").status_code == 200

    with run_tasks():
        response = console.post("/admin/deliveries/delivery/", {"action": "rebuild_deliveries",
                                                                "_selected_action": [mine_row.pk]})
    assert response.status_code == 302
    rebuilt = delivery_row(member.project, mine.ip_id)
    assert (rebuilt.status, rebuilt.generation) == (DeliveryStatus.DONE, 2)
    assert len(status_of(member, mine.ip_id).json()["artifacts"]) == 2
