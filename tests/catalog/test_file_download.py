"""GET /api/v1/rs-catalog/{productURN}/files/{checksum}: real bytes, ranges, ETag, tiers."""
import base64
import hashlib

import pytest
from django.urls import reverse

from portal.catalog import storage

from .factories import DataFileFactory

pytestmark = pytest.mark.django_db
CONTENT = bytes(range(256)) * 4  # 1024 bytes


def url(f, checksum=None):
    return reverse("catalog-file-download", kwargs={"productURN": f.data_object.ip_id,
                                                    "checksum": checksum or f.checksum})


def body(response):
    return b"".join(response.streaming_content)


@pytest.fixture
def online(project):
    return DataFileFactory(project=project, content=CONTENT, filename="scène 1.tif", mime_type="image/tiff")


def test_whole_file(member, online):
    response = member.client.get(url(online))
    assert response.status_code == 200
    assert body(response) == CONTENT
    assert response["Content-Length"] == "1024"
    assert response["Content-Type"] == "image/tiff"
    assert response["ETag"] == f'"{hashlib.sha256(CONTENT).hexdigest()}"'
    assert response["Accept-Ranges"] == "bytes"
    assert response["X-Checksum-MD5"] == hashlib.md5(CONTENT).hexdigest()
    assert response["Repr-Digest"] == f"sha-256=:{base64.b64encode(hashlib.sha256(CONTENT).digest()).decode()}:"
    assert "attachment" in response["Content-Disposition"] and "sc%C3%A8ne%201.tif" in response["Content-Disposition"]


def test_by_sha256_too(member, online):
    assert body(member.client.get(url(online, online.sha256))) == CONTENT


@pytest.mark.parametrize("header, status, expected, content_range", [
    ("bytes=0-9", 206, CONTENT[:10], "bytes 0-9/1024"),
    ("bytes=1000-", 206, CONTENT[1000:], "bytes 1000-1023/1024"),
    ("bytes=-4", 206, CONTENT[-4:], "bytes 1020-1023/1024"),
    ("bytes=1020-5000", 206, CONTENT[1020:], "bytes 1020-1023/1024"),
    ("bytes=0-1,5-6", 200, CONTENT, None),   # multi-range: whole file
    ("items=0-1", 200, CONTENT, None),       # unknown unit: ignored
])
def test_ranges(member, online, header, status, expected, content_range):
    response = member.client.get(url(online), HTTP_RANGE=header)
    assert response.status_code == status
    assert body(response) == expected
    assert response["Content-Length"] == str(len(expected))
    assert response.get("Content-Range") == content_range


def test_unsatisfiable_range(member, online):
    response = member.client.get(url(online), HTTP_RANGE="bytes=2000-")
    assert response.status_code == 416
    assert response["Content-Range"] == "bytes */1024"


def test_if_range_and_if_none_match(member, online):
    etag = f'"{online.sha256}"'
    resumed = member.client.get(url(online), HTTP_RANGE="bytes=10-19", HTTP_IF_RANGE=etag)
    assert resumed.status_code == 206 and body(resumed) == CONTENT[10:20]
    changed = member.client.get(url(online), HTTP_RANGE="bytes=10-19", HTTP_IF_RANGE='"other"')
    assert changed.status_code == 200 and body(changed) == CONTENT
    assert member.client.get(url(online), HTTP_IF_NONE_MATCH=etag).status_code == 304


def test_head(member, online):
    response = member.client.head(url(online))
    assert response.status_code == 200
    assert response["Content-Length"] == "1024"


def test_nearline_is_409(member, project):
    nearline = DataFileFactory(project=project, tier="NEARLINE")
    response = member.client.get(url(nearline))
    assert response.status_code == 409
    assert response.json() == {"messages": ["NEARLINE_FILE_MUST_BE_ORDERED"]}


def test_unknown_and_missing(member, online):
    assert member.client.get(url(online, "0" * 32)).status_code == 404
    assert member.client.get(f"/api/v1/rs-catalog/URN:AIP:DATA:alpha:nope:V1/files/{online.checksum}").status_code == 404
    storage.data_file_path(online).unlink()
    response = member.client.get(url(online))
    assert response.status_code == 404 and response.json() == {"messages": ["FILE_UNREADABLE"]}


def test_other_project_cannot_read(project, other_project, online):
    from tests.conftest import make_member

    outsider = make_member(other_project)
    assert outsider.client.get(url(online)).status_code == 404  # B's scope: A's file does not exist
    outsider.client.credentials(HTTP_AUTHORIZATION=f"Bearer {outsider.token}", HTTP_SCOPE=project.slug)
    assert outsider.client.get(url(online)).status_code == 403
