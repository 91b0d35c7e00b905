"""File filters and removals: PUT updateFileFilters, DELETE a dated selection or a dataset."""
from __future__ import annotations

from urllib.parse import quote

import pytest
from django.utils import timezone

from basket.models import BasketDatasetSelection, BasketItemSelection
from tests.basket.conftest import BASKET_URL, SELECTION_URL, dataset_url, make_object, selections_by_label

pytestmark = pytest.mark.django_db


def _add(member, query):
    response = member.client.post(SELECTION_URL, {"selectAllOpenSearchRequest": query}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def _filters(member, selection_id, body):
    return member.client.put(f"{dataset_url(selection_id)}/updateFileFilters", body, format="json")


@pytest.fixture
def optical(member, catalog) -> dict:
    """The optical dataset selection after adding the red objects (3 x RAWDATA 100 + QUICKLOOK_SD 10)."""
    return selections_by_label(_add(member, "tags:red"))["Optical scenes"]


# --- updateFileFilters -----------------------------------------------------------------

def test_file_types_change_the_counts(member, optical):
    response = _filters(member, optical["id"], {"fileTypes": ["QUICKLOOK_SD", "RAWDATA"]})

    assert response.status_code == 200
    updated = selections_by_label(response.json())["Optical scenes"]
    assert (updated["filesCount"], updated["filesSize"]) == (6, 330)
    assert updated["quota"] == 3  # quota counts the RAWDATA files among them
    assert updated["itemsSelections"][0]["filesCount"] == 6
    assert updated["fileSelectionDescription"] == {"fileTypes": ["QUICKLOOK_SD", "RAWDATA"], "fileNamePattern": None}


def test_quicklooks_only_have_no_quota(member, optical):
    updated = selections_by_label(_filters(member, optical["id"], {"fileTypes": ["QUICKLOOK_SD"]}).json())

    assert (updated["Optical scenes"]["filesSize"], updated["Optical scenes"]["quota"]) == (30, 0)


def test_filename_pattern_must_match_the_whole_name(member, catalog, optical):
    name = catalog.red_optical[0].label.replace(" ", "_")

    whole = _filters(member, optical["id"], {"fileNamePattern": rf"{name}_0\.rawdata"}).json()
    part = _filters(member, optical["id"], {"fileNamePattern": name}).json()

    assert selections_by_label(whole)["Optical scenes"]["filesCount"] == 1
    assert selections_by_label(part)["Optical scenes"]["filesCount"] == 0


def test_empty_body_removes_the_filters(member, optical):
    _filters(member, optical["id"], {"fileTypes": ["QUICKLOOK_SD"], "fileNamePattern": ".*"})

    response = member.client.put(f"{dataset_url(optical['id'])}/updateFileFilters")

    assert response.status_code == 200
    restored = selections_by_label(response.json())["Optical scenes"]
    assert restored["fileSelectionDescription"] is None
    assert (restored["filesCount"], restored["filesSize"]) == (3, 300)


def test_new_selections_honour_the_filters(member, catalog, optical):
    _filters(member, optical["id"], {"fileTypes": ["QUICKLOOK_SD"]})
    make_object(catalog.optical, tags=("green",), files=(("QUICKLOOK_SD", 7),), creation_date=timezone.now())

    body = _add(member, "tags:green")

    updated = selections_by_label(body)["Optical scenes"]
    assert updated["itemsSelections"][0]["filesSize"] == 7
    assert updated["filesSize"] == 37


@pytest.mark.parametrize("body, named", [
    ({"fileNamePattern": "(unclosed"}, "fileNamePattern"),
    ({"fileNamePattern": "*.nc"}, "fileNamePattern"),
    ({"fileTypes": ["NOT_A_TYPE"]}, "NOT_A_TYPE"),
    ({"fileTypes": ["THUMBNAIL"]}, "THUMBNAIL"),
    ({"fileTypes": "RAWDATA"}, "fileTypes"),
])
def test_invalid_filters_are_400_and_change_nothing(member, optical, body, named):
    response = _filters(member, optical["id"], body)

    assert response.status_code == 400
    assert named in " ".join(response.json()["messages"])
    selection = BasketDatasetSelection.unscoped_objects.get(pk=optical["id"])
    assert (selection.file_types, selection.filename_pattern) == ([], "")


def test_filters_of_an_unknown_selection_are_404(member, optical):
    assert _filters(member, optical["id"] + 1000, {"fileTypes": ["RAWDATA"]}).status_code == 404


# --- DELETE a dated item selection ----------------------------------------------------------

def test_removing_an_item_recomputes_the_dataset_counts(member, catalog, optical):
    make_object(catalog.optical, tags=("red",), creation_date=timezone.now())
    body = _add(member, "tags:red")
    newest, oldest = selections_by_label(body)["Optical scenes"]["itemsSelections"]
    assert selections_by_label(body)["Optical scenes"]["objectsCount"] == 4

    response = member.client.delete(f"{dataset_url(optical['id'])}/{quote(newest['date'], safe='')}")

    assert response.status_code == 200
    remaining = selections_by_label(response.json())["Optical scenes"]
    assert [i["date"] for i in remaining["itemsSelections"]] == [oldest["date"]]
    assert (remaining["objectsCount"], remaining["filesCount"], remaining["filesSize"]) == (3, 3, 300)


def test_the_dataset_selection_goes_with_its_last_item(member, optical):
    date = optical["itemsSelections"][0]["date"]

    response = member.client.delete(f"{dataset_url(optical['id'])}/{quote(date, safe='')}")

    assert response.status_code == 200
    assert "Optical scenes" not in selections_by_label(response.json())
    assert "Radar scenes" in selections_by_label(response.json())
    assert not BasketDatasetSelection.unscoped_objects.filter(pk=optical["id"]).exists()


def test_an_offset_date_names_the_same_instant(member, optical):
    date = optical["itemsSelections"][0]["date"].replace("Z", "+00:00")

    assert member.client.delete(f"{dataset_url(optical['id'])}/{quote(date, safe='')}").status_code == 200


@pytest.mark.parametrize("bad", ["yesterday", "2024-13-45T00:00:00Z", "0"])
def test_an_unparseable_date_is_400(member, optical, bad):
    response = member.client.delete(f"{dataset_url(optical['id'])}/{quote(bad, safe='')}")

    assert response.status_code == 400
    assert BasketItemSelection.unscoped_objects.filter(dataset_selection_id=optical["id"]).count() == 1


def test_an_unknown_date_or_selection_is_404(member, optical):
    assert member.client.delete(f"{dataset_url(optical['id'])}/2001-01-01T00:00:00.000Z").status_code == 404
    date = quote(optical["itemsSelections"][0]["date"], safe="")
    assert member.client.delete(f"{dataset_url(optical['id'] + 1000)}/{date}").status_code == 404


# --- DELETE a whole dataset selection -------------------------------------------------------

def test_removing_a_dataset_selection(member, optical):
    response = member.client.delete(dataset_url(optical["id"]))

    assert response.status_code == 200
    assert set(selections_by_label(response.json())) == {"Radar scenes"}
    assert response.json()["content"]["quota"] == 2
    assert member.client.delete(dataset_url(optical["id"])).status_code == 404


def test_another_users_selection_is_404(member, project, optical):
    from tests.conftest import make_member

    stranger = make_member(project)

    assert stranger.client.delete(dataset_url(optical["id"])).status_code == 404
    assert _filters(stranger, optical["id"], {}).status_code == 404
    date = quote(optical["itemsSelections"][0]["date"], safe="")
    assert stranger.client.delete(f"{dataset_url(optical['id'])}/{date}").status_code == 404
    assert BasketDatasetSelection.unscoped_objects.filter(pk=optical["id"]).exists()


def test_basket_stays_after_its_last_selection_goes(member, optical):
    body = member.client.get(BASKET_URL).json()
    for selection in body["content"]["datasetSelections"]:
        member.client.delete(dataset_url(selection["id"]))

    response = member.client.get(BASKET_URL)

    assert response.status_code == 200
    assert response.json()["content"]["datasetSelections"] == []
    assert response.json()["content"]["quota"] == 0


def test_a_stored_query_that_no_longer_parses_matches_nothing(member, catalog):
    # `cloud` is a bare property name: valid only while some object has that property.
    cloudy = make_object(catalog.radar, tags=("x",), properties={"cloud": 5})
    body = member.client.post(SELECTION_URL, {"selectAllOpenSearchRequest": "cloud:5"}, format="json").json()
    radar = selections_by_label(body)["Radar scenes"]
    _add(member, "tags:red")
    cloudy.delete()

    response = _filters(member, radar["id"], {"fileTypes": ["RAWDATA"]})

    assert response.status_code == 200
    updated = selections_by_label(response.json())["Radar scenes"]
    assert [i["objectsCount"] for i in updated["itemsSelections"]] == [2, 0]
    assert _add(member, "tags:blue")["content"]["quota"] == 6
