"""The basket page's "Download as…" form: a download order of the basket with the chosen file
and conversion per dataset; its page shows progress, then the zip link (Django client and a real
Chromium: tests/browser/test_download_orders.py). Other projects' members and other users get 404/403."""
from __future__ import annotations

import io
import re
import zipfile

from django.test import Client
from PIL import Image

from deliveries.downloadorders.models import DownloadOrder
from deliveries.preparation import delivery_build
from portal.catalog.models import DataType
from portal.tenancy.scope import project_scope
from tests.catalog.factories import DatasetFactory
from tests.conftest import make_member

from .conftest import make_object, png_bytes, raw

def fill_basket(member, project):
    dataset = DatasetFactory(project=project, label="Holiday scenes")
    obj = make_object(project, dataset=dataset, label="Beach", files=[
        raw("beach.raw", b"r" * 100), (DataType.QUICKLOOK_MD, "beach.png", png_bytes(200, 100), "image/png")])
    assert member.client.post("/api/v1/rs-order/order/basket/selection", {"ipIds": [obj.ip_id]},
                              format="json").status_code == 200
    return dataset, obj


def _browser_client(member) -> Client:
    client = Client()
    client.force_login(member.user)
    return client


def build(order: DownloadOrder) -> None:
    with project_scope(order.project):
        delivery_build(project=order.project, delivery_id=order.delivery_id, generation=order.delivery.generation)


def test_download_as_form_creates_a_download_order_and_its_page_shows_the_zip(member, project, other_project):
    dataset, _ = fill_basket(member, project)
    client = _browser_client(member)
    basket_page = client.get(f"/projects/{project.slug}/basket/")
    assert b'id="download-as-form"' in basket_page.content and b"Holiday scenes" in basket_page.content

    response = client.post(f"/projects/{project.slug}/downloadorders/new", {
        f"rendition_{dataset.ip_id}": "QUICKLOOK", "image_format": "jpeg", "image_width": "50",
        "zip_filename": "beach pictures"})
    order = DownloadOrder.unscoped_objects.get(owner=member.user)
    assert response.status_code == 302 and response["Location"].endswith(f"/downloadorders/{order.pk}/")
    assert order.configuration["global"][dataset.ip_id]["conversions"] == [
        [{"type": "fileExtension", "value": "jpeg"}, {"type": "resize", "value": {"width": 50}}]]
    waiting = client.get(response["Location"])
    assert b"Pending" in waiting.content and b'http-equiv="refresh"' in waiting.content

    build(order)
    done = client.get(response["Location"]).content.decode()
    assert "Completed" in done and "refresh" not in done
    zip_url = re.search(r'id="download-order-zip" href="([^"]+)"', done).group(1).replace("&amp;", "&")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(client.get(zip_url).streaming_content)))
    assert sorted(archive.namelist()) == ["SHA256SUMS", "beach.jpg"]
    assert Image.open(io.BytesIO(archive.read("beach.jpg"))).size == (50, 25)

    bad = client.post(f"/projects/{project.slug}/downloadorders/new", {
        f"rendition_{dataset.ip_id}": "RAWDATA", "image_width": "huge"}, follow=True)
    assert b"UNKNOWN_CONVERSION" in bad.content and DownloadOrder.unscoped_objects.count() == 1

    colleague = _browser_client(make_member(project))
    assert colleague.get(response["Location"]).status_code == 403
    outsider = make_member(other_project)
    outsider_client = _browser_client(outsider)
    assert outsider_client.get(f"/projects/{project.slug}/downloadorders/{order.pk}/").status_code == 404
    assert outsider_client.get(f"/projects/{other_project.slug}/downloadorders/{order.pk}/").status_code == 404
    assert outsider_client.post(f"/projects/{project.slug}/downloadorders/new",
                                {f"rendition_{dataset.ip_id}": "RAWDATA"}).status_code == 404
    assert DownloadOrder.unscoped_objects.count() == 1
