"""REGARDS' own catalog API (engines/legacy, rs-access-project, rs-dam) and downloads by `uri`.

Callers hold a bearer token and send no `scope`, as every REGARDS client does.
"""
from datetime import datetime, timezone

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from portal.catalog.models import DataFile
from portal.tenancy.models import Role
from tests.conftest import make_member

from .factories import DataFileFactory, DataObjectFactory, DatasetFactory

pytestmark = pytest.mark.django_db
LEGACY = "/api/v1/rs-catalog/engines/legacy"
ACCESS = "/api/v1/rs-access-project"


def token_client(member) -> APIClient:
    """Bearer token only, no scope: how REGARDS clients call."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {member.token}")
    return client


def body_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.fixture
def catalog(project):
    """Two datasets; 5 AIA/SDO objects a day apart in one, 2 EIT/SOHO objects in the other."""
    sdo = DatasetFactory(project=project, label="GAIA-DEM", properties={"dataset_name": "GAIA-DEM data",
                                                                         "instrument": "AIA", "observatory": "SDO"})
    soho = DatasetFactory(project=project, label="SOHO", properties={"dataset_name": "SOHO data"})
    objects = []
    for i in range(5):
        obj = DataObjectFactory(project=project, dataset=sdo, label=f"aia_{i}", tags=["solar"],
                                creation_date=datetime(2024, 1, 1 + i, tzinfo=timezone.utc),
                                properties={"instrument": "AIA", "observatory": "SDO", "wavemin": 171 + i,
                                            "date_obs": f"2023-03-{15 + i:02d}T12:00:00.000Z"})
        DataFileFactory(data_object=obj, filename=f"aia_{i}.fits", mime_type="application/fits",
                        content=f"FITS bytes of aia {i}\n".encode() * 50)
        DataFileFactory(data_object=obj, data_type="QUICKLOOK_SD", filename=f"aia_{i}.png", tier="NEARLINE",
                        mime_type="image/png")
        objects.append(obj)
    for i in range(2):
        obj = DataObjectFactory(project=project, dataset=soho, label=f"eit_{i}",
                                creation_date=datetime(2024, 2, 1 + i, tzinfo=timezone.utc),
                                properties={"instrument": "EIT", "observatory": "SOHO", "wavemin": 195})
        DataFileFactory(data_object=obj, filename=f"eit_{i}.fits")
        objects.append(obj)
    return {"sdo": sdo, "soho": soho, "objects": objects}


# --- search -------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [f"{LEGACY}/dataobjects/search", f"{ACCESS}/dataobjects/search"])
def test_a_token_without_scope_searches_its_project_with_regards_entity_json(member, catalog, other_project, url):
    DataObjectFactory(project=other_project, label="aia_secret", properties={"instrument": "AIA"})
    response = token_client(member).get(url, {"q": 'properties.instrument:"AIA"', "page": 0, "size": 20})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["metadata"] == {"size": 20, "totalElements": 5, "totalPages": 1, "number": 0}
    assert body["facets"] == []
    item = body["content"][0]
    obj = catalog["objects"][0]
    raw = DataFile.unscoped_objects.get(data_object=obj, data_type="RAWDATA")
    entity = item["content"]
    assert entity["id"] == obj.ip_id and entity["virtualId"] == obj.ip_id.rsplit(":", 1)[0] + ":LAST"
    assert entity["entityType"] == "DATA" and entity["type"] == "Feature" and entity["label"] == "aia_0"
    assert entity["tags"] == [catalog["sdo"].ip_id, "solar"]
    assert entity["properties"] == obj.properties and entity["version"] == 1 and entity["last"] is True
    assert entity["geometry"] is None and entity["normalizedGeometry"] is None
    assert entity["files"]["RAWDATA"] == [{
        "dataType": "RAWDATA", "reference": False,
        "uri": f"http://testserver/api/v1/rs-catalog/downloads/{obj.ip_id}/files/{raw.checksum}",
        "mimeType": "application/fits", "online": True, "checksum": raw.checksum, "digestAlgorithm": "MD5",
        "filesize": raw.size, "filename": "aia_0.fits", "types": [],
    }]
    assert entity["files"]["QUICKLOOK_SD"][0]["online"] is False
    assert item["links"] == [{"rel": "self", "href": f"http://testserver{LEGACY}/dataobjects/{obj.ip_id}"}]
    assert ("services" in entity) == url.startswith(ACCESS)
    if "services" in entity:
        assert entity["services"] == []


def test_properties_are_searchable_bare_or_prefixed_with_a_date_range(member, catalog):
    client = token_client(member)
    q = "properties.date_obs:[2023-03-16T00:00:00.000Z TO 2023-03-18T00:00:00.000Z] AND observatory:SDO"
    labels = [i["content"]["label"] for i in client.get(f"{ACCESS}/dataobjects/search", {"q": q}).json()["content"]]
    assert labels == ["aia_1", "aia_2"]
    q = "creationDate:[2024-01-02 TO 2024-01-03] AND wavemin:[172 TO *]"
    labels = [i["content"]["label"] for i in client.get(f"{LEGACY}/dataobjects/search", {"q": q}).json()["content"]]
    assert labels == ["aia_1", "aia_2"]


def test_a_malformed_query_is_400_with_messages(member, catalog):
    response = token_client(member).get(f"{LEGACY}/dataobjects/search", {"q": "label:(unclosed"})
    assert response.status_code == 400
    assert "position" in response.json()["messages"][0]


def test_paging_links_follow_spring_hateoas(member, catalog):
    client = token_client(member)
    first = client.get(f"{LEGACY}/dataobjects/search", {"q": "instrument:AIA", "size": 2}).json()
    rels = {link["rel"]: link["href"] for link in first["links"]}
    assert set(rels) == {"first", "self", "next", "last"}
    assert "page=1" in rels["next"] and "size=2" in rels["next"] and "q=instrument%3AAIA" in rels["next"]
    assert "page=2" in rels["last"]
    second = client.get(rels["next"]).json()
    assert second["metadata"]["number"] == 1
    assert {link["rel"] for link in second["links"]} == {"first", "prev", "self", "next", "last"}
    assert [i["content"]["label"] for i in second["content"]] == ["aia_2", "aia_3"]
    last = client.get(rels["last"]).json()
    assert [i["content"]["label"] for i in last["content"]] == ["aia_4"]
    assert "next" not in {link["rel"] for link in last["links"]}


def test_sort_by_property_and_label(member, catalog):
    client = token_client(member)
    body = client.get(f"{LEGACY}/dataobjects/search", {"sort": ["wavemin,DESC", "label,ASC"]}).json()
    assert [i["content"]["label"] for i in body["content"]] == ["eit_0", "eit_1", "aia_4", "aia_3", "aia_2",
                                                                 "aia_1", "aia_0"]
    body = client.get(f"{LEGACY}/dataobjects/search", {"sort": "properties.observatory,label,DESC"}).json()
    assert [i["content"]["label"] for i in body["content"]][:3] == ["eit_1", "eit_0", "aia_4"]


@pytest.mark.parametrize("sort", ["bad__name,ASC", ",DESC", "label;drop,ASC"])
def test_a_bad_sort_is_400_with_messages(member, catalog, sort):
    response = token_client(member).get(f"{LEGACY}/dataobjects/search", {"sort": sort})
    assert response.status_code == 400 and response.json()["messages"]


def test_facets_count_terms_of_the_matching_objects(member, catalog):
    body = token_client(member).get(f"{LEGACY}/dataobjects/search",
                                    {"facets": ["instrument", "dataset"], "q": "wavemin:[* TO 400]"}).json()
    by_name = {f["attributeName"]: f for f in body["facets"]}
    assert by_name["instrument"] == {"type": "STRING", "attributeName": "instrument", "others": 0, "values": [
        {"word": "AIA", "count": 5, "openSearchQuery": 'instrument:"AIA"'},
        {"word": "EIT", "count": 2, "openSearchQuery": 'instrument:"EIT"'}]}
    assert [(v["word"], v["count"]) for v in by_name["dataset"]["values"]] == [
        (catalog["sdo"].ip_id, 5), (catalog["soho"].ip_id, 2)]
    tags = token_client(member).get(f"{LEGACY}/dataobjects/search", {"facets": "tags"}).json()["facets"]
    assert tags == [{"type": "STRING", "attributeName": "tags", "others": 0,
                     "values": [{"word": "solar", "count": 5, "openSearchQuery": 'tags:"solar"'}]}]
    # A facet's query finds exactly its count.
    q = by_name["instrument"]["values"][1]["openSearchQuery"]
    assert token_client(member).get(f"{LEGACY}/dataobjects/search", {"q": q}).json()["metadata"]["totalElements"] == 2


def test_facets_list_the_top_ten_values_and_count_the_others(member, project):
    dataset = DatasetFactory(project=project)
    for i in range(12):
        DataObjectFactory(project=project, dataset=dataset, tags=["all", f"t{i:02d}"], properties={"n": i % 11})
    facets = {f["attributeName"]: f for f in token_client(member).get(
        f"{LEGACY}/dataobjects/search", {"facets": "tags,n"}).json()["facets"]}
    assert [(v["word"], v["count"]) for v in facets["tags"]["values"]] == [("all", 12)] + [
        (f"t{i:02d}", 1) for i in range(9)]
    assert facets["tags"]["others"] == 3  # t09, t10, t11
    assert facets["n"]["values"][0] == {"word": "0", "count": 2, "openSearchQuery": 'n:"0"'}
    assert len(facets["n"]["values"]) == 10 and facets["n"]["others"] == 1


def test_datasets_and_entities_search(member, catalog):
    client = token_client(member)
    datasets = client.get(f"{LEGACY}/datasets/search").json()
    assert [i["content"]["label"] for i in datasets["content"]] == ["GAIA-DEM", "SOHO"]
    assert datasets["content"][0]["content"]["entityType"] == "DATASET"
    assert datasets["content"][0]["content"]["properties"]["dataset_name"] == "GAIA-DEM data"
    every = client.get(f"{ACCESS}/search", {"size": 3, "page": 0}).json()
    assert every["metadata"]["totalElements"] == 2 + 7
    assert [i["content"]["entityType"] for i in every["content"]] == ["DATASET", "DATASET", "DATA"]
    assert all(i["content"]["services"] == [] for i in every["content"])
    page = client.get(f"{LEGACY}/entities/search", {"size": 3, "page": 2}).json()
    assert [i["content"]["label"] for i in page["content"]] == ["aia_4", "eit_0", "eit_1"]
    # A field only data objects know narrows to data objects; datasets just do not match.
    tagged = client.get(f"{LEGACY}/entities/search", {"q": "tags:solar"}).json()
    assert tagged["metadata"]["totalElements"] == 5


def test_one_entity_by_urn_and_the_objects_of_one_dataset(member, catalog):
    client = token_client(member)
    obj = catalog["objects"][6]
    response = client.get(f"{LEGACY}/dataobjects/{obj.ip_id}")
    assert response.status_code == 200 and response.json()["content"]["label"] == "eit_1"
    dataset = client.get(f"{LEGACY}/datasets/{catalog['soho'].ip_id}").json()
    assert dataset["content"]["id"] == catalog["soho"].ip_id and dataset["content"]["files"] == {}
    inside = client.get(f"{LEGACY}/datasets/{catalog['soho'].ip_id}/dataobjects/search").json()
    assert [i["content"]["label"] for i in inside["content"]] == ["eit_0", "eit_1"]
    for url in (f"{LEGACY}/dataobjects/URN:AIP:DATA:alpha:nope:V1", f"{LEGACY}/datasets/URN:nope",
                f"{LEGACY}/datasets/URN:nope/dataobjects/search"):
        missing = client.get(url)
        assert missing.status_code == 404 and missing.json() == {"messages": ["ENTITY_NOT_FOUND"]}


def test_rs_dam_datasets_for_any_member(project, catalog):
    reader = make_member(project, Role.REGISTERED_USER)
    response = token_client(reader).get("/api/v1/rs-dam/datasets", {"page": 0, "size": 100})
    assert response.status_code == 200
    body = response.json()
    assert body["metadata"]["totalElements"] == 2
    dataset = body["content"][0]["content"]
    assert dataset["type"] == "DATASET" and dataset["id"] == catalog["sdo"].pk
    assert dataset["ipId"] == catalog["sdo"].ip_id and dataset["creationDate"].endswith("Z")
    assert dataset["model"]["type"] == "DATASET" and dataset["tags"] == []
    assert dataset["feature"] == {"id": catalog["sdo"].ip_id, "entityType": "DATASET", "label": "GAIA-DEM",
                                  "providerId": "GAIA-DEM", "model": dataset["model"]["name"], "files": {},
                                  "tags": [], "properties": catalog["sdo"].properties, "type": "Feature"}
    only = token_client(reader).get("/api/v1/rs-dam/datasets", {"label": "soh"}).json()
    assert [i["content"]["feature"]["label"] for i in only["content"]] == ["SOHO"]


# --- query counts -------------------------------------------------------------------------

@pytest.mark.parametrize("url, params, small", [
    (f"{LEGACY}/dataobjects/search", {"q": "instrument:AIA OR instrument:EIT", "sort": "wavemin"}, 1),
    (f"{ACCESS}/dataobjects/search", {"facets": ["instrument", "tags", "dataset"]}, 1),
    (f"{ACCESS}/search", {}, 3),  # a page holding both kinds: datasets and data objects
    (f"{LEGACY}/datasets/search", {}, 1),
    ("/api/v1/rs-dam/datasets", {}, 1),
])
def test_query_counts_do_not_grow_with_the_page(member, catalog, django_assert_num_queries, url, params, small):
    client = token_client(member)
    client.get(url, {**params, "size": small})  # the token's last_used_at write happens once
    with django_assert_num_queries(_count(client, url, {**params, "size": small})):
        response = client.get(url, {**params, "size": 100})
    assert response.status_code == 200 and len(response.json()["content"]) > small


def _count(client, url, params) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert client.get(url, params).status_code == 200
    return len(queries)


# --- downloads by uri ---------------------------------------------------------------------

def _raw_uri(client, obj) -> str:
    entity = client.get(f"{LEGACY}/dataobjects/{obj.ip_id}").json()["content"]
    return entity["files"]["RAWDATA"][0]["uri"]


def test_the_uri_downloads_the_same_bytes_as_the_catalog_file_endpoint(member, catalog):
    client = token_client(member)
    obj = catalog["objects"][2]
    raw = DataFile.unscoped_objects.get(data_object=obj, data_type="RAWDATA")
    uri = _raw_uri(client, obj)
    by_uri = client.get(uri)
    assert by_uri.status_code == 200
    assert body_of(by_uri) == b"FITS bytes of aia 2\n" * 50
    legacy = member.client.get(reverse("catalog-file-download", kwargs={"productURN": obj.ip_id,
                                                                        "checksum": raw.checksum}))
    assert body_of(legacy) == body_of(client.get(uri))
    for header in ("ETag", "Content-Length", "Accept-Ranges", "X-Checksum-MD5", "Content-Disposition"):
        assert by_uri[header] == legacy[header]
    part = client.get(uri, HTTP_RANGE="bytes=5-14", HTTP_IF_RANGE=by_uri["ETag"])
    assert part.status_code == 206 and body_of(part) == (b"FITS bytes of aia 2\n" * 50)[5:15]
    assert client.get(uri, HTTP_IF_NONE_MATCH=by_uri["ETag"]).status_code == 304


def test_the_uri_works_with_the_token_in_the_link(member, catalog):
    uri = _raw_uri(token_client(member), catalog["objects"][0])
    response = APIClient().get(uri, {"token": member.token})
    assert response.status_code == 200 and body_of(response) == b"FITS bytes of aia 0\n" * 50
    assert APIClient().get(uri, {"token": "ordly_not-a-token"}).status_code == 401
    assert APIClient().get(uri).status_code == 401


def test_a_nearline_uri_answers_as_the_catalog_file_endpoint(member, catalog):
    client = token_client(member)
    entity = client.get(f"{LEGACY}/dataobjects/{catalog['objects'][0].ip_id}").json()["content"]
    response = client.get(entity["files"]["QUICKLOOK_SD"][0]["uri"])
    assert response.status_code == 409
    assert response.json() == {"messages": ["NEARLINE_FILE_MUST_BE_ORDERED"]}


def test_another_projects_token_never_downloads_by_uri(member, catalog, other_project):
    uri = _raw_uri(token_client(member), catalog["objects"][0])
    stranger = make_member(other_project, Role.ADMIN)
    assert token_client(stranger).get(uri).status_code == 404
    assert APIClient().get(uri, {"token": stranger.token}).status_code == 404
    assert token_client(stranger).get(uri, {"scope": "alpha"}).status_code == 403


# --- every API takes its project from the token -------------------------------------------

@pytest.mark.parametrize("url, expected", [
    ("/api/v1/rs-order/user/orders", 200),
    ("/api/v1/rs-order/order/basket", 204),
    ("/api/v1/rs-catalog/search/dataobjects", 200),
    ("/api/v1/delivery/preparedDelivery/order-999999", 404),
    ("/api/v1/tokens", 200),
])
def test_every_api_takes_the_project_from_the_token(member, url, expected):
    response = token_client(member).get(url)
    assert response.status_code == expected, response.content
    assert token_client(member).get(url, {"scope": "nope"}).status_code == 404
    session = APIClient()
    session.force_login(member.user)
    assert session.get(url).status_code == 400


# --- the documented REGARDS shapes --------------------------------------------------------

# Fields and JSON types of REGARDS' published search response (generated REST docs of
# LegacySearchEngineControllerIT.searchDataobjects): page, item, data object entity, RAWDATA file.
DOCUMENTED_PAGE = {"facets": list, "metadata": dict, "content": list, "links": list}
DOCUMENTED_METADATA = {"size": int, "totalElements": int, "totalPages": int, "number": int}
DOCUMENTED_ITEM = {"content": dict, "links": list}
DOCUMENTED_ENTITY = {"virtualId": str, "providerId": str, "entityType": str, "label": str, "model": str,
                     "files": dict, "tags": list, "last": bool, "version": int, "id": str,
                     "geometry": type(None), "normalizedGeometry": type(None), "properties": dict, "type": str}
DOCUMENTED_RAWDATA = {"dataType": str, "reference": bool, "uri": str, "mimeType": str, "online": bool,
                      "filesize": int, "filename": str, "types": list}


def _has_shape(document: dict, shape: dict, where: str) -> None:
    for field, kind in shape.items():
        assert field in document, f"{where}: no {field}"
        assert isinstance(document[field], kind), f"{where}.{field}: {type(document[field]).__name__}"


def test_the_search_answer_has_every_documented_regards_field(member, catalog):
    body = token_client(member).get(f"{LEGACY}/dataobjects/search").json()
    _has_shape(body, DOCUMENTED_PAGE, "page")
    _has_shape(body["metadata"], DOCUMENTED_METADATA, "metadata")
    assert {"rel": "self", "href": body["links"][2]["href"]} in body["links"]
    for item in body["content"]:
        _has_shape(item, DOCUMENTED_ITEM, "item")
        _has_shape(item["content"], DOCUMENTED_ENTITY, "entity")
        assert item["content"]["entityType"] == "DATA" and item["content"]["type"] == "Feature"
        assert item["links"][0]["rel"] == "self" and item["links"][0]["href"].endswith(item["content"]["id"])
        for raw in item["content"]["files"]["RAWDATA"]:
            _has_shape(raw, DOCUMENTED_RAWDATA, "RAWDATA file")
            assert raw["dataType"] == "RAWDATA" and raw["reference"] is False
