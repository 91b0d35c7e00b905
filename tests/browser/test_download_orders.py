"""The basket page's "Download as…" form in a real Chromium: choose a file and a conversion per
dataset, follow the download order's page to its zip."""
from __future__ import annotations

import io
import re
import zipfile

import pytest
from PIL import Image

from deliveries.downloadorders.models import DownloadOrder
from tests.conftest import make_member
from tests.downloadorders.test_pages import build, fill_basket

pytestmark = pytest.mark.browser


def test_download_as_in_a_real_browser(transactional_db, page, live_server, login, project):
    member = make_member(project, email="dora@example.org")
    dataset, _ = fill_basket(member, project)
    login(member.user.email)
    page.goto(f"{live_server.url}/projects/{project.slug}/basket/")
    page.select_option(f'select[name="rendition_{dataset.ip_id}"]', "QUICKLOOK")
    page.select_option("#id_image_format", "webp")
    page.fill("#id_image_width", "40")
    page.click("#download-as-form button")
    page.wait_for_url(re.compile(r"/downloadorders/\d+/$"))
    assert page.locator("#download-order-status").inner_text() == "Pending"

    build(DownloadOrder.unscoped_objects.get(owner=member.user))
    page.reload()
    assert page.locator("#download-order-status").inner_text() == "Completed"
    zip_response = page.request.get(live_server.url + page.locator("#download-order-zip").get_attribute("href"))
    archive = zipfile.ZipFile(io.BytesIO(zip_response.body()))
    assert sorted(archive.namelist()) == ["SHA256SUMS", "beach.webp"]
    assert Image.open(io.BytesIO(archive.read("beach.webp"))).size == (40, 20)
