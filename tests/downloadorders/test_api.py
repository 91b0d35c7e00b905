"""The issue's second "Done when": every 400 names what is unknown, If-Modified-Since gives 304
only when unchanged, paging links, and who may read a download order (403/404); plus the
idempotent creation, basket targets and query counts."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.http import http_date
from rest_framework.test import APIClient

from deliveries.downloadorders.models import ConversionPreset, DownloadOrder, DownloadOrderTarget
from deliveries.downloadorders.transitions import Action, download_order_transition
from portal.tenancy.models import Role
from portal.tenancy.scope import project_scope
from tests.catalog.factories import DatasetFactory
from tests.conftest import make_member

from .conftest import URL, body, create, make_object, raw, row

JPEG = {"type": "fileExtension", "value": "jpeg"}


@pytest.fixture
def catalog(project):
    dataset = DatasetFactory(project=project)
    objects = [make_object(project, dataset=dataset, files=[raw(f"f{i}.bin", b"x" * (10 + i))]) for i in range(3)]
    return dataset, objects


def _problem(response, status=400) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    return response.json()


def test_unknown_renditions_conversions_presets_targets_and_datasets_are_400s_naming_them(member, catalog):
    dataset, objects = catalog
    ids = [o.ip_id for o in objects]
    ConversionPreset.unscoped_objects.create(project=member.project, name="web",
                                             steps=[JPEG, {"type": "resize", "value": {"width": 1024}}])
    cases = [
        (body(ids, global_={dataset.ip_id: {"renditions": ["HOLOGRAM"]}}), "UNKNOWN_RENDITION", "HOLOGRAM"),
        (body(ids, individual={ids[0]: {"conversions": [[{"type": "sepia", "value": 1}]]}}),
         "UNKNOWN_CONVERSION", "sepia"),
        (body(ids, global_={dataset.ip_id: {"conversions": [[{"type": "fileExtension", "value": "bmp"}]]}}),
         "UNKNOWN_CONVERSION", "bmp"),
        (body(ids, global_={dataset.ip_id: {"conversions": [[{"type": "compression", "value": "zstd"}]]}}),
         "UNKNOWN_CONVERSION", "zstd"),
        (body(ids, global_={dataset.ip_id: {"presets": ["print"]}}), "UNKNOWN_PRESET", "print"),
        (body([*ids, "URN:AIP:DATA:alpha:nowhere:V1"]), "UNKNOWN_TARGET", "URN:AIP:DATA:alpha:nowhere:V1"),
        (body(ids[:1], individual={ids[1]: {"renditions": ["RAWDATA"]}}), "UNKNOWN_TARGET", ids[1]),
        (body(ids, global_={"URN:AIP:DATASET:alpha:nowhere:V1": {}}), "UNKNOWN_DATASET",
         "URN:AIP:DATASET:alpha:nowhere:V1"),
        ({**body(ids), "target_selection": {"selectionPool": "entities", "entities": ids,
                                            "definitionName": "URN:AIP:DATASET:alpha:gone:V1"}},
         "UNKNOWN_DATASET", "URN:AIP:DATASET:alpha:gone:V1"),
        ({**body(ids), "target_selection": {"selectionPool": "collection"}}, "UNKNOWN_SELECTION_POOL",
         "collection"),
        (body(ids, item_name_resolver_id="title"), "UNKNOWN_NAME_RESOLVER", "title"),
    ]
    for payload, code, named in cases:
        problem = _problem(create(member, payload))
        assert problem["code"] == code and named in problem["detail"], (code, problem)
    assert _problem(create(member, {"order": {}}))["status"] == 400  # no target_selection
    assert not DownloadOrderTarget.unscoped_objects.exists()  # nothing half-written
    # The preset exists: the same order with it is accepted, its steps expanded.
    created = create(member, body(ids, global_={dataset.ip_id: {"presets": ["web"]}}))
    assert created.status_code == 201 and created.json()["has_conversions"] is True
    assert DownloadOrderTarget.unscoped_objects.filter(download_order_id=created.json()["order_id"]).first()\
        .conversions == [[JPEG, {"type": "resize", "value": {"width": 1024}}]]


def test_if_modified_since_gives_304_only_when_unchanged_since(member, catalog, project):
    _, objects = catalog
    order_id = create(member, body([o.ip_id for o in objects])).json()["order_id"]
    # Created a minute ago, so a change now falls in a later second than its Last-Modified.
    DownloadOrder.unscoped_objects.filter(pk=order_id).update(modified_at=timezone.now() - timedelta(minutes=1))
    url = f"{URL}/{order_id}"
    first = member.client.get(url)
    last_modified = first["Last-Modified"]
    assert first.status_code == 200 and last_modified

    assert member.client.get(url, HTTP_IF_MODIFIED_SINCE=last_modified).status_code == 304
    later = http_date((row(order_id).modified_at + timedelta(hours=1)).timestamp())
    assert member.client.get(url, HTTP_IF_MODIFIED_SINCE=later).status_code == 304
    earlier = http_date((row(order_id).modified_at - timedelta(hours=1)).timestamp())
    assert member.client.get(url, HTTP_IF_MODIFIED_SINCE=earlier).status_code == 200
    # The reference's copy-pasted example (ISO-8601, long ago): changed since, so 200.
    assert member.client.get(url, HTTP_IF_MODIFIED_SINCE="2019-08-24T14:15:22Z").status_code == 200
    assert member.client.get(url, HTTP_IF_MODIFIED_SINCE="not a date").status_code == 200

    with project_scope(project):
        assert download_order_transition(project=project, download_order_id=order_id, action=Action.PROCESS)
    changed = member.client.get(url, HTTP_IF_MODIFIED_SINCE=last_modified)
    assert changed.status_code == 200 and changed.json()["status"] == "Processing"
    assert changed["Last-Modified"] != last_modified
    assert member.client.get(url, HTTP_IF_MODIFIED_SINCE=changed["Last-Modified"]).status_code == 304


def test_list_and_targets_are_paged_with_links(member, catalog, django_assert_num_queries):
    _, objects = catalog
    ids = [create(member, body([o.ip_id for o in objects], name=f"order {i}")).json()["order_id"]
               for i in range(3)]
    with django_assert_num_queries(6):  # token, project, membership, count, the page, its archives
        page = member.client.get(URL, {"take": 2}).json()
    assert page["total_items"] == 3 and page["returned_items"] == 2 and page["offset"] == 0
    assert [item["order_id"] for item in page["items"]] == ids[::-1][:2]
    assert page["previous"] is None and "skip=2" in page["next"]["href"] and "take=2" in page["next"]["href"]
    second = member.client.get(page["next"]["href"].split("testserver")[-1].split("8000")[-1]).json()
    assert second["returned_items"] == 1 and second["next"] is None and "skip=0" in second["previous"]["href"]
    assert member.client.get(URL, {"take": 1000}).status_code == 200  # capped at 100
    assert _problem(member.client.get(URL, {"skip": "-1"}))["status"] == 400
    assert _problem(member.client.get(URL, {"take": "0"}))["status"] == 400

    targets = member.client.get(f"{URL}/{ids[0]}/targets", {"take": 2}).json()
    assert targets["total_items"] == 3 and targets["returned_items"] == 2 and targets["next"] is not None
    assert targets["order"]["href"].split("?")[0].endswith(f"/api/downloadorders/{ids[0]}")
    item = targets["items"][0]
    assert item["entity"]["title"] == objects[0].label and item["renditions"] == ["RAWDATA"]
    entity = member.client.get(item["entity"]["href"][item["entity"]["href"].index("/api/"):])
    assert entity.status_code == 200 and objects[0].ip_id in entity.content.decode()
    one = member.client.get(f"{URL}/{ids[0]}/targets/{objects[1].ip_id}")
    assert one.status_code == 200 and one.json()["entity_urn"] == objects[1].ip_id
    assert member.client.get(f"{URL}/{ids[0]}/targets/{objects[1].pk}").json()["entity_urn"] == objects[1].ip_id
    assert member.client.get(f"{URL}/{ids[0]}/targets/999999").status_code == 404


def test_only_the_owner_and_admins_read_a_download_order(member, catalog, project):
    _, objects = catalog
    order_id = create(member, body([o.ip_id for o in objects])).json()["order_id"]
    stranger, admin = make_member(project), make_member(project, Role.ADMIN)
    for path in (f"{URL}/{order_id}", f"{URL}/{order_id}/targets", f"{URL}/{order_id}/targets/{objects[0].pk}",
                 f"/api/v1/delivery/preparedDelivery/downloadorder-{order_id}"):
        assert stranger.client.get(path).status_code in (403, 404), path
        assert admin.client.get(path).status_code == 200, path
    assert stranger.client.get(f"{URL}/{order_id}").status_code == 403
    assert member.client.get(f"{URL}/{order_id + 1000}").status_code == 404
    assert stranger.client.get(URL).json()["total_items"] == 0
    assert admin.client.get(URL).json()["total_items"] == 1


def test_the_reference_examples_content_type_is_accepted(member, catalog):
    """The reference's curl sends `Content-Type: application/json-patch+json`."""
    _, objects = catalog
    response = member.client.post(URL, json.dumps(body([o.ip_id for o in objects])),
                                  content_type="application/json-patch+json")
    assert response.status_code == 201 and response.json()["target_count"] == 3
    # Its GET sends the bearer token alone (no scope): the token's project answers.
    bare = APIClient()
    bare.credentials(HTTP_AUTHORIZATION=f"Bearer {member.token}")
    fetched = bare.get(f"{URL}/{response.json()['order_id']}", HTTP_IF_MODIFIED_SINCE="2019-08-24T14:15:22Z")
    assert fetched.status_code == 200 and fetched.json()["order_id"] == response.json()["order_id"]


def test_idempotency_key_returns_the_first_order(member, catalog):
    _, objects = catalog
    payload = body([o.ip_id for o in objects])
    first = create(member, payload, HTTP_IDEMPOTENCY_KEY="k-1")
    again = create(member, payload, HTTP_IDEMPOTENCY_KEY="k-1")
    other = create(member, payload, HTTP_IDEMPOTENCY_KEY="k-2")
    assert first.status_code == again.status_code == 201
    assert again.json()["order_id"] == first.json()["order_id"] != other.json()["order_id"]


def test_basket_targets_restricted_by_definition_name(member, catalog, project):
    dataset, objects = catalog
    elsewhere = make_object(project, files=[raw("other.bin", b"o" * 10)])
    for ip_ids in ([o.ip_id for o in objects], [elsewhere.ip_id]):
        assert member.client.post("/api/v1/rs-order/order/basket/selection", {"ipIds": ip_ids},
                                  format="json").status_code == 200
    basket_body = {"target_selection": {"selectionPool": "basket"}, "order": {}}
    assert create(member, basket_body).json()["target_count"] == 4
    restricted = {"target_selection": {"selectionPool": "basket", "definitionName": dataset.ip_id}, "order": {}}
    assert create(member, restricted).json()["target_count"] == 3
    nobody = make_member(project)
    assert _problem(create(nobody, basket_body))["code"] == "NO_TARGETS"
