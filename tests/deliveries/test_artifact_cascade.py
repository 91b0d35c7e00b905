"""Artifacts have no foreign-key constraints in the database (a million rows a package): every
deletion of their delivery or project is the ORM's, whose collector must delete them."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client

from deliveries.models import Delivery, DeliveryArtifact, DeliveryStatus
from portal.tenancy.models import Project, Role
from tests.conftest import make_member

from .conftest import delivery_row, make_object, prepare

pytestmark = pytest.mark.django_db


def _artifacts(**filters) -> int:
    return DeliveryArtifact.unscoped_objects.filter(**filters).count()


def _done_delivery(member, run_tasks) -> Delivery:
    obj = make_object(member.project, files=(("RAWDATA", 100), ("QUICKLOOK", 50)))
    prepare(member, obj.ip_id, run_tasks)
    delivery = delivery_row(member.project, obj.ip_id)
    assert delivery.status == DeliveryStatus.DONE
    return delivery


def test_the_artifact_foreign_keys_are_not_constraints_in_the_database():
    # (What the cascade tests below are for: nothing in the database would catch an orphan.)
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, DeliveryArtifact._meta.db_table)
    assert not [name for name, c in constraints.items() if c["foreign_key"]]


def test_deleting_a_delivery_deletes_its_artifacts_and_only_its(member, run_tasks):
    # Given two done deliveries of the same project
    gone, kept = _done_delivery(member, run_tasks), _done_delivery(member, run_tasks)
    assert _artifacts(delivery_id=gone.pk) == 3 and _artifacts(delivery_id=kept.pk) == 3
    # When one is deleted (as the admin's delete does)
    Delivery.unscoped_objects.filter(pk=gone.pk).delete()
    # Then its artifacts are gone, the other's stay
    assert _artifacts(delivery_id=gone.pk) == 0
    assert _artifacts(delivery_id=kept.pk) == 3


def test_the_admin_deletes_a_delivery_with_its_artifacts(member, run_tasks):
    delivery = _done_delivery(member, run_tasks)
    admin = make_member(member.project, Role.ADMIN)
    admin.user.is_staff = True
    admin.user.save()
    console = Client()
    console.force_login(admin.user)
    response = console.post(f"/admin/deliveries/delivery/{delivery.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Delivery.unscoped_objects.filter(pk=delivery.pk).exists()
    assert _artifacts(delivery_id=delivery.pk) == 0


def test_deleting_a_project_deletes_its_artifacts_and_only_its(member, other_project, run_tasks):
    # Given done deliveries in two projects
    mine = _done_delivery(member, run_tasks)
    theirs = _done_delivery(make_member(other_project), run_tasks)
    # When a superuser deletes one project through the admin
    root = make_member(other_project, Role.ADMIN)
    root.user.is_staff = root.user.is_superuser = True
    root.user.save()
    console = Client()
    console.force_login(root.user)
    response = console.post(f"/admin/tenancy/project/{member.project.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Project.objects.filter(pk=member.project.pk).exists()
    # Then none of its artifacts remain, and the other project's are untouched
    assert _artifacts(project_id=mine.project_id) == 0 and _artifacts(delivery_id=mine.pk) == 0
    assert _artifacts(delivery_id=theirs.pk) == 3
