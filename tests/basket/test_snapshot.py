"""The interfaces orders are built from: basket_for_owner, basket_snapshot, snapshot_dataset_files."""
from __future__ import annotations

import json

import pytest
from django.utils import timezone

from basket import selectors, services
from basket.models import BasketDatasetSelection, BasketItemSelection
from portal.catalog.models import DataFile
from portal.tenancy.scope import project_scope
from tests.basket.conftest import SELECTION_URL, make_object

pytestmark = pytest.mark.django_db


@pytest.fixture
def basket(member, catalog):
    member.client.post(SELECTION_URL, {"selectAllOpenSearchRequest": "tags:red", "ipIds": [
        catalog.red_optical[0].ip_id]}, format="json")
    member.client.post(SELECTION_URL, {"ipIds": [catalog.blue_optical[0].ip_id]}, format="json")
    with project_scope(member.project):
        yield selectors.basket_for_owner(project=member.project, owner=member.user)


def _entry(snapshot, label):
    return next(e for e in snapshot if e["dataset_label"] == label)


def test_snapshot_is_json_and_describes_every_dated_selection(basket, catalog):
    snapshot = services.basket_snapshot(basket=basket)

    assert json.loads(json.dumps(snapshot)) == snapshot
    optical = _entry(snapshot, "Optical scenes")
    assert optical["dataset_id"] == catalog.optical.pk and optical["dataset_ip_id"] == catalog.optical.ip_id
    assert optical["file_types"] == ["RAWDATA"] and optical["filename_pattern"] == ""
    first, second = optical["items"]
    assert first["query"] == "tags:red" and first["excluded_ip_ids"] == [catalog.red_optical[0].ip_id]
    assert second["query"] == "" and second["included_ip_ids"] == [catalog.blue_optical[0].ip_id]
    assert first["date"] < second["date"]


def test_snapshot_files_are_the_ordered_files_in_order(basket, catalog, project):
    optical = _entry(services.basket_snapshot(basket=basket), "Optical scenes")

    files = selectors.snapshot_dataset_files(project=project, dataset_entry=optical)

    expected = [o for o in catalog.red_optical[1:]] + catalog.blue_optical
    assert [(f.data_object_id, f.data_type) for f in files] == sorted((o.pk, "RAWDATA") for o in expected)
    assert selectors.snapshot_dataset_objects_count(project=project, dataset_entry=optical) == 3
    assert optical["files_count"] == files.count() == 3


def test_snapshot_stays_frozen_after_ingestion_and_basket_changes(basket, catalog, project):
    snapshot = json.loads(json.dumps(services.basket_snapshot(basket=basket)))
    make_object(catalog.optical, creation_date=timezone.now())  # a new red object
    services.basket_empty(basket=basket)

    optical = _entry(snapshot, "Optical scenes")
    assert selectors.snapshot_dataset_files(project=project, dataset_entry=optical).count() == 3


def test_snapshot_files_honour_types_and_pattern(basket, catalog, project):
    optical = _entry(services.basket_snapshot(basket=basket), "Optical scenes")
    optical.update(file_types=["QUICKLOOK_SD"], filename_pattern=r".*_1\.quicklook_sd")

    files = list(selectors.snapshot_dataset_files(project=project, dataset_entry=optical))

    assert len(files) == 2 and all(f.data_type == "QUICKLOOK_SD" for f in files)


def test_snapshot_files_is_one_query(basket, project, django_assert_num_queries):
    optical = _entry(services.basket_snapshot(basket=basket), "Optical scenes")
    files = selectors.snapshot_dataset_files(project=project, dataset_entry=optical)

    with django_assert_num_queries(1):
        assert len(list(files.iterator())) == 3
    assert isinstance(files.first(), DataFile)


def test_basket_empty_keeps_an_empty_basket(basket, member, project):
    services.basket_empty(basket=basket)

    assert not BasketDatasetSelection.objects.exists() and not BasketItemSelection.objects.exists()
    refreshed = selectors.basket_for_owner(project=project, owner=member.user)
    assert refreshed is not None and list(refreshed.dataset_selections.all()) == []
    assert services.basket_snapshot(basket=refreshed) == []


def test_basket_for_owner_is_none_without_basket(project, member, other_project):
    with project_scope(project):
        assert selectors.basket_for_owner(project=project, owner=member.user) is None
