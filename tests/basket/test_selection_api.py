"""POST /order/basket/selection: both body shapes, 200 / 204 / 417 / 422, GET and DELETE basket."""
from __future__ import annotations

import re

import pytest
from django.utils import timezone

from basket.models import Basket, BasketItemSelection
from portal.tenancy.scope import project_scope
from tests.basket.conftest import BASKET_URL, SELECTION_URL, make_object, selections_by_label
from tests.catalog.factories import DataObjectFactory, DatasetFactory

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
NO_FILE = {"messages": ["This selection contains no file that can be ordered"]}

pytestmark = pytest.mark.django_db


def _add(member, body):
    return member.client.post(SELECTION_URL, body, format="json")


def _baskets(project) -> int:
    return Basket.unscoped_objects.filter(project=project).count()


def test_older_shape_query_gives_the_exact_basket_body(member, catalog):
    response = _add(member, {"selectAllOpenSearchRequest": "tags:red"})

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"content", "links"} and body["links"] == []
    content = body["content"]
    assert set(content) == {"id", "owner", "quota", "datasetSelections"}
    assert content["owner"] == member.user.email
    # Red objects live in both datasets: one item selection in each dataset selection.
    by_label = selections_by_label(body)
    assert set(by_label) == {"Optical scenes", "Radar scenes"}
    optical = by_label["Optical scenes"]
    assert set(optical) == {"id", "datasetIpid", "datasetLabel", "openSearchRequest", "objectsCount", "filesCount",
                            "filesSize", "quota", "fileSelectionDescription", "itemsSelections"}
    assert optical["datasetIpid"] == catalog.optical.ip_id
    # RAWDATA only by default: 3 objects x 100 bytes (their quicklooks are not counted).
    assert (optical["objectsCount"], optical["filesCount"], optical["filesSize"], optical["quota"]) == (3, 3, 300, 3)
    assert optical["fileSelectionDescription"] is None
    [item] = optical["itemsSelections"]
    assert set(item) == {"date", "openSearchRequest", "objectsCount", "filesCount", "filesSize", "quota"}
    assert ISO_Z.match(item["date"])
    assert item["openSearchRequest"] == f"(tags:red) AND creationDate:[* TO {item['date']}]"
    assert optical["openSearchRequest"] == f"((({'tags:red'}) AND creationDate:[* TO {item['date']}]))"
    radar = by_label["Radar scenes"]
    assert (radar["objectsCount"], radar["filesCount"], radar["filesSize"]) == (2, 2, 400)
    assert radar["itemsSelections"][0]["date"] == item["date"]
    assert content["quota"] == 5


def test_older_shape_query_minus_ip_ids(member, catalog):
    excluded = catalog.red_optical[0].ip_id

    body = _add(member, {"selectAllOpenSearchRequest": "tags:red", "ipIds": [excluded]}).json()

    optical = selections_by_label(body)["Optical scenes"]
    assert (optical["objectsCount"], optical["filesSize"]) == (2, 200)
    assert f'NOT (ipId:"{excluded}")' in optical["itemsSelections"][0]["openSearchRequest"]


def test_older_shape_ip_ids_only(member, catalog):
    chosen = [catalog.blue_optical[0].ip_id, catalog.red_radar[1].ip_id]

    body = _add(member, {"ipIds": chosen}).json()

    by_label = selections_by_label(body)
    assert by_label["Optical scenes"]["filesSize"] == 1000
    assert by_label["Radar scenes"]["objectsCount"] == 1
    assert by_label["Radar scenes"]["itemsSelections"][0]["openSearchRequest"].startswith(
        f'(ipId:"{chosen[1]}") AND creationDate:[* TO '
    )


def test_ip_ids_of_another_project_are_unknown(member, catalog, other_project):
    foreign = DataObjectFactory(project=other_project)
    make_object(foreign.dataset)  # the other project has orderable files
    foreign_ids = list(DataObjectFactory._meta.model.unscoped_objects.filter(project=other_project)
                       .values_list("ip_id", flat=True))

    response = _add(member, {"ipIds": foreign_ids})

    assert response.status_code == 204
    assert response.data == NO_FILE  # (the test client drops a 204 body from .content)
    assert _baskets(member.project) == 0


def test_nothing_orderable_is_204_and_stores_nothing(member, catalog):
    # The grey object only has a THUMBNAIL, which cannot be ordered.
    response = _add(member, {"selectAllOpenSearchRequest": "tags:grey"})

    assert response.status_code == 204
    assert response.data == NO_FILE  # (the test client drops a 204 body from .content)
    assert _baskets(member.project) == 0
    assert member.client.get(BASKET_URL).status_code == 204


def test_nothing_orderable_leaves_an_existing_basket_unchanged(member, catalog):
    _add(member, {"selectAllOpenSearchRequest": "tags:blue"})

    assert _add(member, {"selectAllOpenSearchRequest": "tags:nosuchtag"}).status_code == 204

    assert BasketItemSelection.unscoped_objects.filter(project=member.project).count() == 1


@pytest.mark.parametrize("body", [{}, {"ipIds": []}, {"selectAllOpenSearchRequest": None},
                                  {"selectAllOpenSearchRequest": "  ", "ipIds": None}])
def test_older_shape_without_query_or_ip_ids_is_417(member, catalog, body):
    response = _add(member, body)

    assert response.status_code == 417
    assert response.json() == {"messages": ["If opensearch request is null, at least on IP_ID must be provided"]}
    assert _baskets(member.project) == 0


def test_older_shape_with_malformed_fields_is_400(member, catalog):
    assert _add(member, {"ipIds": "not-a-list"}).status_code == 400
    assert member.client.post(SELECTION_URL, [1, 2], format="json").status_code == 400


def test_older_shape_query_that_does_not_parse_is_422(member, catalog):
    response = _add(member, {"selectAllOpenSearchRequest": "tags:(red AND"})

    assert response.status_code == 422
    [message] = response.json()["messages"]
    assert "selectAllOpenSearchRequest" in message and "position" in message


def test_newer_shape_dataset_query_and_entity_ids(member, catalog):
    body = {
        "engineType": "legacy",
        "datasetUrn": catalog.optical.ip_id,
        "searchParameters": {"q": ["tags:red OR tags:blue"]},
        "entityIdsToExclude": [catalog.red_optical[0].ip_id],
    }

    response = _add(member, body)

    assert response.status_code == 200
    [optical] = response.json()["content"]["datasetSelections"]  # radar left out by datasetUrn
    assert optical["datasetLabel"] == "Optical scenes"
    assert (optical["objectsCount"], optical["filesCount"], optical["filesSize"]) == (3, 3, 1200)


def test_newer_shape_included_entities_restrict_the_query(member, catalog):
    wanted = catalog.red_optical[1].ip_id
    body = {"engineType": "legacy", "searchParameters": {"q": ["tags:red"]}, "entityIdsToInclude": [wanted]}

    [optical] = _add(member, body).json()["content"]["datasetSelections"]

    assert optical["objectsCount"] == 1
    assert f'ipId:"{wanted}"' in optical["openSearchRequest"]


def test_newer_shape_without_query_selects_the_whole_dataset(member, catalog):
    body = {"engineType": "legacy", "datasetUrn": catalog.radar.ip_id}

    [radar] = _add(member, body).json()["content"]["datasetSelections"]

    assert (radar["objectsCount"], radar["filesSize"]) == (2, 400)


@pytest.mark.parametrize("body, named", [
    ({"engineType": "opensearch", "searchParameters": {"q": ["tags:red"]}}, "engineType"),
    ({"searchParameters": {"q": ["tags:red"]}}, "engineType"),
    ({"engineType": "legacy", "searchParameters": {"q": 12}}, "searchParameters.q"),
    ({"engineType": "legacy", "searchParameters": "tags:red"}, "searchParameters"),
    ({"engineType": "legacy", "entityIdsToInclude": "URN"}, "entityIdsToInclude"),
    ({"engineType": "legacy", "searchParameters": {"q": ["tags:(red AND"]}}, "searchParameters.q"),
    ({"engineType": "legacy", "searchParameters": {"q": ["nosuchfield:red"]}}, "nosuchfield"),
    ({"engineType": "legacy", "datasetUrn": "URN:AIP:DATASET:alpha:nope:V1"}, "datasetUrn"),
])
def test_newer_shape_invalid_is_422_naming_the_problem(member, catalog, body, named):
    response = _add(member, body)

    assert response.status_code == 422, response.content
    assert named in " ".join(response.json()["messages"])
    assert _baskets(member.project) == 0


def test_dataset_of_another_project_is_unknown(member, catalog, other_project):
    foreign = DatasetFactory(project=other_project)
    make_object(foreign)

    response = _add(member, {"engineType": "legacy", "datasetUrn": foreign.ip_id})

    assert response.status_code == 422
    assert _baskets(member.project) == 0


def test_selections_are_frozen_at_their_date(member, catalog):
    # Given a selection of the red objects
    _add(member, {"selectAllOpenSearchRequest": "tags:red"})
    # When more red objects are ingested afterwards
    for _ in range(4):
        make_object(catalog.optical, creation_date=timezone.now())
    # Then the counts do not move
    optical = selections_by_label(member.client.get(BASKET_URL).json())["Optical scenes"]
    assert (optical["objectsCount"], optical["filesCount"], optical["filesSize"]) == (3, 3, 300)

    # And a new selection of the same query adds them, the dataset counting their union once
    body = _add(member, {"selectAllOpenSearchRequest": "tags:red"}).json()
    optical = selections_by_label(body)["Optical scenes"]
    assert [i["objectsCount"] for i in optical["itemsSelections"]] == [7, 3]  # newest first
    assert (optical["objectsCount"], optical["filesCount"], optical["filesSize"]) == (7, 7, 700)
    newest, oldest = (i["date"] for i in optical["itemsSelections"])
    assert newest > oldest
    assert optical["openSearchRequest"] == (
        f"(((tags:red) AND creationDate:[* TO {newest}]) OR ((tags:red) AND creationDate:[* TO {oldest}]))"
    )


def test_counts_are_aggregate_queries_not_loops(member, catalog):
    # The same number of queries for 4 objects as for 40: nothing is counted in Python.
    def queries_to_add(tag: str, n: int) -> int:
        for _ in range(n):
            make_object(catalog.radar, tags=(tag,))
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            assert _add(member, {"selectAllOpenSearchRequest": f"tags:{tag}"}).status_code == 200
        return len(captured)

    few = queries_to_add("few", 4)
    many = queries_to_add("many", 40)
    assert many <= few + 1  # the second add also recomputes the existing radar selection


def test_get_basket_is_200_with_a_bounded_number_of_queries(member, catalog, django_assert_max_num_queries):
    for query in ("tags:red", "tags:blue", "tags:red OR tags:blue"):
        _add(member, {"selectAllOpenSearchRequest": query})

    # auth + membership + basket, selections, items: the same for any basket size
    with django_assert_max_num_queries(8):
        response = member.client.get(BASKET_URL)

    assert response.status_code == 200
    by_label = selections_by_label(response.json())
    assert len(by_label["Optical scenes"]["itemsSelections"]) == 3
    assert by_label["Optical scenes"]["objectsCount"] == 4


def test_get_without_basket_is_204(member, catalog):
    response = member.client.get(BASKET_URL)

    assert response.status_code == 204
    assert response.content == b""


def test_delete_basket_is_200_and_removes_it(member, catalog):
    _add(member, {"selectAllOpenSearchRequest": "tags:red"})

    assert member.client.delete(BASKET_URL).status_code == 200

    assert member.client.get(BASKET_URL).status_code == 204
    with project_scope(member.project):
        assert not BasketItemSelection.objects.exists()


def test_one_basket_per_user(member, project, catalog):
    from tests.conftest import make_member

    other = make_member(project)
    _add(member, {"selectAllOpenSearchRequest": "tags:red"})
    _add(other, {"selectAllOpenSearchRequest": "tags:blue"})

    mine = member.client.get(BASKET_URL).json()["content"]
    theirs = other.client.get(BASKET_URL).json()["content"]
    assert mine["id"] != theirs["id"]
    assert theirs["quota"] == 1 and mine["quota"] == 5

