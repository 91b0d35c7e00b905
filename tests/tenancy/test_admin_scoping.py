import pytest
from django.test import Client

from portal.tenancy.models import Role
from tests.conftest import make_member


@pytest.fixture
def staff_admin_of_alpha(two_projects):
    alpha, _ = two_projects
    admin = make_member(alpha, Role.ADMIN)
    admin.user.is_staff = True
    admin.user.save()
    return admin


def test_project_admin_sees_only_their_projects_rows_in_the_console(two_projects, staff_admin_of_alpha):
    alpha, beta = two_projects
    insider = make_member(alpha, email="insider@alpha.org")
    outsider = make_member(beta, email="outsider@beta.org")
    client = Client()
    client.force_login(staff_admin_of_alpha.user)

    listing = client.get("/admin/tenancy/membership/")
    assert listing.status_code == 200
    assert insider.user.email.encode() in listing.content
    assert outsider.user.email.encode() not in listing.content

    projects = client.get("/admin/tenancy/project/")
    assert b"alpha" in projects.content and b">beta<" not in projects.content

    beta_membership = outsider.user.memberships.get()
    assert client.get(f"/admin/tenancy/membership/{beta_membership.pk}/change/").status_code in (302, 404)
    tokens = client.get("/admin/tenancy/apitoken/")
    assert tokens.status_code == 200 and outsider.user.email.encode() not in tokens.content


def test_superuser_sees_every_project(two_projects, django_user_model):
    root = django_user_model.objects.create_superuser(email="root@example.org", password="x")
    make_member(two_projects[1], email="outsider@beta.org")
    client = Client()
    client.force_login(root)
    assert b"outsider@beta.org" in client.get("/admin/tenancy/membership/").content


def test_plain_member_cannot_open_the_console(member):
    member.user.is_staff = True
    member.user.save()
    client = Client()
    client.force_login(member.user)
    response = client.get("/admin/tenancy/membership/")
    assert response.status_code in (302, 403)
