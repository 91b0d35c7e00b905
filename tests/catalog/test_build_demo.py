"""build_demo: a browsable demo project with users, 3 datasets, thousands of objects, real files."""
import pytest
from django.core.management import call_command
from PIL import Image

from portal.catalog import storage
from portal.catalog.models import DataFile, DataObject, Dataset
from portal.tenancy.models import Membership, Project
from portal.tenancy.scope import project_scope

pytestmark = pytest.mark.django_db


def test_build_demo(capsys):
    call_command("build_demo")
    out = capsys.readouterr().out
    assert "admin@demo.orderly / demo-admin-pass" in out and "user@demo.orderly / demo-user-pass" in out
    project = Project.objects.get(slug="demo")
    assert set(Membership.objects.filter(project=project).values_list("role", flat=True)) == {"ADMIN", "REGISTERED_USER"}
    with project_scope(project):
        assert Dataset.objects.count() == 3
        assert DataObject.objects.count() >= 3000
        assert set(DataFile.objects.values_list("tier", flat=True).distinct()) == {"ONLINE", "NEARLINE"}
        quicklook = DataFile.objects.filter(data_type="QUICKLOOK_SD").first()
        with storage.open_online(quicklook) as fh:
            assert Image.open(fh).size == (96, 96)
        nearline = DataFile.objects.filter(tier="NEARLINE").first()
        assert storage.file_digests(storage.data_file_path(nearline)).sha256 == nearline.sha256
        before = DataFile.objects.count()

    call_command("build_demo", "--if-absent")
    assert "already present" in capsys.readouterr().out
    call_command("build_demo")  # again: idempotent
    assert "objects: 0 created, 0 updated" in capsys.readouterr().out
    with project_scope(project):
        assert DataFile.objects.count() == before
