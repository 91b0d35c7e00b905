"""A file artifact's metaData is made of its own columns when read (not stored: a million rows a
package); the archive's is stored; rows stored before keep showing what they stored."""
from __future__ import annotations

import json

import pytest
from django.conf import settings

from deliveries.models import DeliveryArtifact
from portal.catalog.models import DataFile, DataType, StorageTier
from tests.catalog.factories import DataFileFactory

from .conftest import delivery_row, make_object, prepare, status_of

pytestmark = pytest.mark.django_db


def _expected(data_file: DataFile, name: str) -> str:
    return json.dumps({"filename": name, "productId": data_file.data_object.ip_id, "dataType": data_file.data_type,
                       "mimeType": data_file.mime_type, "md5": data_file.checksum, "tier": data_file.tier},
                      sort_keys=True)


def test_file_meta_data_is_made_of_the_columns_and_the_archive_keeps_its_own(member, run_tasks):
    # Given a data object with an ONLINE image and a NEARLINE file
    obj = make_object(member.project, files=((DataType.RAWDATA, 300),), names=["scene.tif"])
    online = DataFile.unscoped_objects.get(data_object=obj)
    DataFile.unscoped_objects.filter(pk=online.pk).update(mime_type="image/tiff")
    online.refresh_from_db()
    nearline = DataFileFactory(data_object=obj, tier=StorageTier.NEARLINE, filename="tape.dat",
                               data_type=DataType.QUICKLOOK_SD, content=b"tape\n" * 20)

    # When it is prepared
    prepare(member, obj.ip_id, run_tasks)
    body = status_of(member, obj.ip_id).json()

    # Then the API shows each file's catalog facts, as JSON text with sorted keys
    shown = {a["itemKey"]: a["metaData"] for a in body["artifacts"]}
    assert shown["scene.tif"] == _expected(online, "scene.tif")
    assert shown["tape.dat"] == _expected(nearline, "tape.dat")
    assert json.loads(shown["archive"]) == {"contentType": "application/zip", "entries": 3,
                                            "filename": f"{obj.ip_id.replace(':', '_')}.zip"}
    # ... while only the archive stores its meta data
    stored = dict(DeliveryArtifact.unscoped_objects.filter(delivery=delivery_row(member.project, obj.ip_id))
                  .values_list("item_key", "meta_data"))
    assert stored["scene.tif"] == stored["tape.dat"] == {}
    assert stored["archive"] == json.loads(shown["archive"])

    # A file downloads under its own name (not the package's that holds its bytes)
    scene = next(a for a in body["artifacts"] if a["itemKey"] == "scene.tif")
    response = member.client.get(scene["url"].replace(settings.PORTAL_BASE_URL, ""))
    assert response.status_code == 200
    assert 'filename="scene.tif"' in response["Content-Disposition"]


def test_meta_data_stored_by_an_older_preparation_is_shown_as_stored(member, run_tasks):
    obj = make_object(member.project, files=((DataType.RAWDATA, 100),), names=["old.dat"])
    prepare(member, obj.ip_id, run_tasks)
    older = {"filename": "old.dat", "productId": "URN:as-stored", "dataType": "RAWDATA",
             "mimeType": "application/octet-stream", "md5": "0" * 32, "tier": "ONLINE"}
    DeliveryArtifact.unscoped_objects.filter(item_key="old.dat").update(meta_data=older)
    shown = {a["itemKey"]: a["metaData"] for a in status_of(member, obj.ip_id).json()["artifacts"]}
    assert shown["old.dat"] == json.dumps(older, sort_keys=True)
