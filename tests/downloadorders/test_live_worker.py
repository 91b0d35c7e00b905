"""The issue's first "Done when": a real worker builds a download order with a global RAWDATA
rendition, an individual QUICKLOOK rendition converted PNG -> JPEG at 64 px wide, and gzip on
another object; the zip downloaded from `download_location` holds what was asked."""
from __future__ import annotations

import gzip
import hashlib
import io
import zipfile

import pytest
from django.conf import settings
from django.db import connection
from PIL import Image

from deliveries.downloadorders.models import DownloadOrderEvent
from portal.catalog.models import DataType
from tests.catalog.factories import DatasetFactory

from .conftest import body, create, make_object, png_bytes, raw, wait_final


@pytest.mark.worker
def test_a_download_order_with_renditions_and_conversions_is_built_by_a_live_worker(celery_live_worker, member):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent API reads and worker writes need PostgreSQL (CI)")
    project = member.project
    dataset = DatasetFactory(project=project)
    plain_bytes = b"plain original bytes\n" * 500
    text_bytes = b"a text that compresses well. " * 2000
    plain = make_object(project, dataset=dataset, files=[raw("plain.bin", plain_bytes)])
    pictured = make_object(project, dataset=dataset, files=[
        raw("scene.raw", b"raw scene" * 100),
        (DataType.QUICKLOOK_HD, "scene_ql.png", png_bytes(256, 128), "image/png")])
    texted = make_object(project, dataset=dataset, files=[raw("notes.txt", text_bytes)])

    response = create(member, body(
        [plain.ip_id, pictured.ip_id, texted.ip_id],
        global_={dataset.ip_id: {"renditions": ["RAWDATA"]}},
        individual={
            pictured.ip_id: {"renditions": ["QUICKLOOK"],
                             "conversions": [[{"type": "fileExtension", "value": "jpeg"},
                                              {"type": "resize", "value": {"width": 64}}]]},
            texted.ip_id: {"renditions": ["RAWDATA"], "conversions": [[{"type": "compression", "value": "gzip"}]]},
        },
        order={"zip_filename": "my package"}, name="Holiday pictures"))
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["status"] == "Pending" and created["target_count"] == 3 and created["has_conversions"] is True
    assert created["download_location"] is None

    final = wait_final(member, created["order_id"])
    assert final["status"] == "Completed" and final["additional_info"] is None, final
    location = final["download_location"]
    assert location["title"] == "my package.zip" and location["templated"] is False
    download = member.client.get(location["href"].replace(settings.PORTAL_BASE_URL, ""))
    assert download.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content) if download.streaming
                                         else download.content))

    assert sorted(archive.namelist()) == ["SHA256SUMS", "notes.txt.gz", "plain.bin", "scene_ql.jpg"]
    picture = Image.open(io.BytesIO(archive.read("scene_ql.jpg")))
    picture.load()
    assert picture.format == "JPEG" and picture.size == (64, 32)
    assert gzip.decompress(archive.read("notes.txt.gz")) == text_bytes
    assert archive.read("plain.bin") == plain_bytes
    sums = dict(reversed(line.split("  ", 1)) for line in archive.read("SHA256SUMS").decode().splitlines())
    assert set(sums) == {"notes.txt.gz", "plain.bin", "scene_ql.jpg"}
    for name, digest in sums.items():
        assert hashlib.sha256(archive.read(name)).hexdigest() == digest
    history = list(DownloadOrderEvent.unscoped_objects.filter(download_order_id=created["order_id"])
                   .values_list("from_status", "to_status"))
    assert history == [("", "Pending"), ("Pending", "Processing"), ("Processing", "Completed")]
