"""GET /api/v1/rs-catalog/search/dataobjects and /search/datasets."""
from datetime import datetime, timezone

import pytest
from django.urls import reverse

from portal.catalog.models import DataFile

from .factories import DataFileFactory, DataObjectFactory, DatasetFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/rs-catalog/search/dataobjects"


def make_objects(project, n, dataset=None, **kwargs):
    dataset = dataset or DatasetFactory(project=project, label="Optical scenes")
    objects = []
    for i in range(n):
        obj = DataObjectFactory(project=project, dataset=dataset, label=f"Scene {i:03d}",
                                creation_date=datetime(2024, 1, 1 + i % 28, tzinfo=timezone.utc), **kwargs)
        DataFileFactory(data_object=obj, filename=f"scene_{i:03d}.tif", mime_type="image/tiff")
        DataFileFactory(data_object=obj, data_type="QUICKLOOK_SD", filename=f"scene_{i:03d}.png",
                        mime_type="image/png", tier="NEARLINE")
        objects.append(obj)
    return objects


def test_url_names():
    assert reverse("catalog-search-dataobjects") == URL
    assert reverse("catalog-search-datasets") == "/api/v1/rs-catalog/search/datasets"


def test_search_returns_page_envelope_with_files(member, project):
    objs = make_objects(project, 3, tags=["clear"], properties={"instrument": "OLI"})
    response = member.client.get(URL, {"q": "label:scene* AND tags:clear", "page": 0, "size": 2})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["metadata"] == {"size": 2, "totalElements": 3, "totalPages": 2, "number": 0}
    assert body["links"] == []
    first = body["content"][0]
    assert first["ipId"] == objs[0].ip_id and first["label"] == "Scene 000"
    assert first["creationDate"] == "2024-01-01T00:00:00.000000Z"
    assert first["dataset"] == {"ipId": objs[0].dataset.ip_id, "label": "Optical scenes"}
    assert first["tags"] == ["clear"] and first["properties"] == {"instrument": "OLI"}
    files = {f["dataType"]: f for f in first["files"]}
    raw = DataFile.unscoped_objects.get(data_object=objs[0], data_type="RAWDATA")
    assert files["RAWDATA"] == {
        "dataType": "RAWDATA", "filename": "scene_000.tif", "mimeType": "image/tiff", "size": raw.size,
        "checksum": raw.checksum, "sha256": raw.sha256, "crc32": raw.crc32, "tier": "ONLINE",
        "uri": f"http://testserver/api/v1/rs-catalog/{raw.data_object.ip_id}/files/{raw.checksum}?scope=alpha",
    }
    assert files["QUICKLOOK_SD"]["tier"] == "NEARLINE"
    second = member.client.get(URL, {"q": "label:scene* AND tags:clear", "page": 1, "size": 2}).json()
    assert [o["label"] for o in second["content"]] == ["Scene 002"]


def test_empty_query_lists_everything_of_the_project_only(member, project, other_project):
    make_objects(project, 2)
    make_objects(other_project, 3)
    body = member.client.get(URL).json()
    assert body["metadata"]["totalElements"] == 2


def test_no_n_plus_one(member, project, django_assert_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    make_objects(project, 2)
    member.client.get(URL)  # warm up per-process caches
    with CaptureQueriesContext(connection) as few:
        assert member.client.get(URL, {"size": 50}).status_code == 200
    # count, objects joined with their dataset, one prefetch of files; the rest is auth/scope
    search_queries = [q["sql"] for q in few.captured_queries if "catalog_" in q["sql"]]
    assert len(search_queries) == 3, search_queries
    make_objects(project, 25)
    # Thirteen times the objects, the same number of queries.
    with django_assert_num_queries(len(few.captured_queries)):
        body = member.client.get(URL, {"size": 50}).json()
    assert body["metadata"]["totalElements"] == 27
    assert all(len(o["files"]) == 2 for o in body["content"])


@pytest.mark.parametrize("q, position", [("label:(scene", 12), ("nosuchfield:x", 0), ("tags:a AND", 10)])
def test_malformed_query_is_400_with_position(member, project, q, position):
    make_objects(project, 1)
    response = member.client.get(URL, {"q": q})
    assert response.status_code == 400
    messages = response.json()["messages"]
    assert len(messages) == 1 and messages[0].startswith(f"Invalid query at position {position}:")


@pytest.mark.parametrize("params", [{"page": "x"}, {"size": "0"}, {"page": "-1"}])
def test_bad_paging_is_400(member, project, params):
    assert member.client.get(URL, params).status_code == 400


def test_size_is_capped(member, project):
    assert member.client.get(URL, {"size": 5000}).json()["metadata"]["size"] == 1000


def test_anonymous_and_outsiders(project, other_project, client):
    from tests.conftest import make_member

    assert client.get(URL, {"scope": project.slug}).status_code == 401
    outsider = make_member(other_project)
    outsider.client.credentials(HTTP_AUTHORIZATION=f"Bearer {outsider.token}", HTTP_SCOPE=project.slug)
    assert outsider.client.get(URL).status_code == 403


def test_dataset_search(member, project, django_assert_max_num_queries):
    optical = DatasetFactory(project=project, label="Optical scenes", properties={"mission": "M1"})
    DatasetFactory(project=project, label="Radar swaths")
    make_objects(project, 3, dataset=optical)
    response = member.client.get("/api/v1/rs-catalog/search/datasets", {"q": "label:optical*"})
    assert response.status_code == 200
    body = response.json()
    assert body["metadata"]["totalElements"] == 1
    assert body["content"][0] == {"ipId": optical.ip_id, "label": "Optical scenes",
                                  "creationDate": body["content"][0]["creationDate"],
                                  "properties": {"mission": "M1"}, "objectsCount": 3}
    assert member.client.get("/api/v1/rs-catalog/search/datasets").json()["metadata"]["totalElements"] == 2
    bad = member.client.get("/api/v1/rs-catalog/search/datasets", {"q": "tags:x"})
    assert bad.status_code == 400 and "unknown field 'tags'" in bad.json()["messages"][0]
