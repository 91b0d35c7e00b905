"""Conversions on real files (deliveries/conversions.py) and what a failed one does to the
order: listed in NOTICE.txt, `Completed` with additional_info, or `Failed` when nothing is left."""
from __future__ import annotations

import gzip
import io
import zipfile

import pytest
from PIL import Image

from deliveries import conversions
from deliveries.models import Delivery
from portal.catalog import storage
from portal.errors import Invalid
from tests.catalog.factories import DatasetFactory

from .conftest import URL, body, create, make_object, png_bytes, raw, row

JPEG, GZIP = {"type": "fileExtension", "value": "jpeg"}, {"type": "compression", "value": "gzip"}


def _convert(tmp_path, data: bytes, steps, name="picture.png"):
    source = tmp_path / "source"
    source.write_bytes(data)
    result = conversions.convert(source=source, filename=name, mime_type="image/png",
                                 steps=conversions.conversion_validate(steps), target_dir=tmp_path)
    return result, result.path.read_bytes()


@pytest.mark.parametrize(("value", "size", "expected"), [
    ({"width": 64}, (256, 128), (64, 32)),
    ({"height": 64}, (256, 128), (128, 64)),
    ({"width": 100, "height": 10}, (256, 128), (20, 10)),
    ({"width": 1000}, (256, 128), (256, 128)),  # never enlarged
])
def test_resize_keeps_the_aspect_ratio_and_never_enlarges(tmp_path, value, size, expected):
    result, data = _convert(tmp_path, png_bytes(*size), [{"type": "resize", "value": value}])
    assert Image.open(io.BytesIO(data)).size == expected and result.filename == "picture.png"


@pytest.mark.parametrize(("fmt", "pil", "extension"), [("jpeg", "JPEG", ".jpg"), ("webp", "WEBP", ".webp"),
                                                       ("tiff", "TIFF", ".tiff"), ("png", "PNG", ".png")])
def test_format_changes_write_real_images(tmp_path, fmt, pil, extension):
    result, data = _convert(tmp_path, png_bytes(40, 30), [{"type": "fileExtension", "value": fmt}], "a.png")
    image = Image.open(io.BytesIO(data))
    assert image.format == pil and image.size == (40, 30) and result.filename == "a" + extension
    assert result.digests == storage.bytes_digests(data)


def test_gzip_is_deterministic_and_decompresses_to_the_original(tmp_path):
    original = b"any bytes at all " * 1000
    first, data = _convert(tmp_path, original, [GZIP], "notes.txt")
    second, again = _convert(tmp_path, original, [GZIP], "notes.txt")
    assert gzip.decompress(data) == original and data == again and first.filename == "notes.txt.gz"


def test_a_resize_of_a_non_image_fails_with_a_reason(tmp_path):
    with pytest.raises(conversions.ConversionFailed) as failure:
        _convert(tmp_path, b"not a picture", [{"type": "resize", "value": {"width": 10}}], "x.bin")
    assert "not an image" in failure.value.reason
    assert [p.name for p in tmp_path.iterdir()] == ["source"]  # nothing half-written left


@pytest.mark.parametrize("steps", [[], [{"type": "resize", "value": {}}], [{"type": "resize", "value": {"width": 0}}],
                                   [GZIP, JPEG], [{"type": "fileExtension", "value": "gif"}]])
def test_invalid_conversions_are_refused(steps):
    with pytest.raises(Invalid):
        conversions.conversion_validate(steps)


def _zip_of(member, data) -> zipfile.ZipFile:
    href = data["download_location"]["href"]
    response = member.client.get(href[href.index("/api/"):])
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_a_conversion_that_fails_on_one_file_is_listed_and_the_order_completes(member, run_tasks):
    project = member.project
    dataset = DatasetFactory(project=project)
    picture = make_object(project, dataset=dataset, label="Sunset over the bay",
                          files=[raw("sunset.png", png_bytes(300, 200))])
    blob = make_object(project, dataset=dataset, files=[raw("blob.bin", b"\x00binary" * 50)])
    resize = [[JPEG, {"type": "resize", "value": {"width": 30}}]]
    with run_tasks():
        response = create(member, body([picture.ip_id, blob.ip_id],
                                       global_={dataset.ip_id: {"renditions": ["original"], "conversions": resize}},
                                       item_name_resolver_id="label"))
    assert response.status_code == 201, response.content
    data = member.client.get(f"{URL}/{response.json()['order_id']}").json()
    assert data["status"] == "Completed"
    failed_name = f"{blob.label}.jpg"  # the label resolver names every file
    assert "1 file(s) could not be converted" in data["additional_info"] and failed_name in data["additional_info"]
    archive = _zip_of(member, data)
    assert sorted(archive.namelist()) == ["NOTICE.txt", "SHA256SUMS", "Sunset over the bay.jpg"]
    assert archive.read("NOTICE.txt").decode().startswith(f"Failed to convert file ({failed_name}): not an image")
    assert Image.open(io.BytesIO(archive.read("Sunset over the bay.jpg"))).size == (30, 20)

    # The zip freed from the delivery cache: no download_location, and how to get it back.
    order_id = response.json()["order_id"]
    assert member.client.delete(f"/api/v1/delivery/preparedDelivery/downloadorder-{order_id}").status_code == 200
    freed = member.client.get(f"{URL}/{order_id}").json()
    assert freed["download_location"] is None and "prepareDelivery" in freed["additional_info"]
    with run_tasks():
        again = member.client.post("/api/v1/delivery/prepareDelivery", {"catalogId": f"downloadorder-{order_id}"},
                                   format="json")
    assert again.status_code == 200
    rebuilt = member.client.get(f"{URL}/{order_id}").json()
    assert rebuilt["status"] == "Completed" and rebuilt["download_location"] is not None


def test_an_order_where_nothing_could_be_delivered_fails(member, run_tasks):
    blob = make_object(member.project, files=[raw("blob.bin", b"\x00binary" * 50)])
    with run_tasks():
        response = create(member, body([blob.ip_id], individual={
            blob.ip_id: {"conversions": [[{"type": "resize", "value": {"width": 5}}]]}}))
    order = row(response.json()["order_id"])
    data = member.client.get(f"{URL}/{order.pk}").json()
    assert data["status"] == "Failed" and data["download_location"] is None
    assert "No file could be delivered" in data["additional_info"] and "blob.bin" in data["additional_info"]
    assert Delivery.unscoped_objects.get(pk=order.delivery_id).status == "error"
