"""Contract slips (issue 11, item 11)."""
from __future__ import annotations

import json

import pytest
from django.core import mail
from django.test import Client

from orders import services, tasks
from orders.models import Order, OrderStatus
from portal.tenancy.scope import project_scope
from tests.conftest import make_member
from tests.orders.conftest import fill_basket, make_objects, order_of, reload

pytestmark = pytest.mark.django_db
ORDERS = "/api/v1/rs-order/user/orders"


# --- labels: long ones are REGARDS' 422, whatever their size ----------------------------

@pytest.mark.parametrize("length", [51, 10_001, 2 * 1024 * 1024])
def test_a_label_over_50_characters_is_422_whatever_its_size(member, project, length):
    fill_basket(member, make_objects(project, count=1))
    response = member.client.post(ORDERS, {"label": "x" * length}, format="json")
    assert response.status_code == 422
    assert response.json() == {"messages": ["TOO_MANY_CHARACTERS_IN_LABEL"]}
    assert not Order.unscoped_objects.exists()


# --- strings are strings ------------------------------------------------------------------

NOT_STRINGS = [12, 12.5, True, False, [], ["a"], {}, {"a": "b"}]


@pytest.mark.parametrize("field", ["label", "onSuccessUrl"])
@pytest.mark.parametrize("value", NOT_STRINGS, ids=repr)
def test_order_creation_fields_accept_only_strings(member, project, field, value):
    fill_basket(member, make_objects(project, count=1))
    response = member.client.post(ORDERS, {field: value}, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["messages"][0]
    assert not Order.unscoped_objects.exists()


@pytest.mark.parametrize("method, path, body", [
    ("post", "/api/v1/delivery/prepareDelivery", {"catalogId": 12}),
    ("post", "/api/v1/tokens", {"name": 12}),
    ("post", "/api/v1/rs-order/order/basket/selection", {"selectAllOpenSearchRequest": 12}),
    ("post", "/api/v1/rs-order/orders/search", {"owner": 12}),
])
def test_other_string_fields_refuse_numbers_too(admin_member, method, path, body):
    response = getattr(admin_member.client, method)(path, body, format="json")
    assert 400 <= response.status_code < 500 and response.status_code != 404, response.content


def test_strings_still_pass(member, project):
    fill_basket(member, make_objects(project, count=1))
    response = member.client.post(ORDERS, {"label": "12", "onSuccessUrl": "https://x.org/done"}, format="json")
    assert response.status_code == 201 and response.json()["content"]["label"] == "12"


# --- the tokens list is what the schema says ------------------------------------------------

def test_the_token_list_body_matches_its_schema(member, client):
    body = member.client.get("/api/v1/tokens").json()
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    response_schema = schema["paths"]["/api/v1/tokens"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    ref = response_schema["$ref"].rsplit("/", 1)[1]
    component = schema["components"]["schemas"][ref]
    assert component["type"] == "object" and "content" in component["properties"]
    assert component["properties"]["content"]["type"] == "array"
    assert isinstance(body["content"], list) and body["content"][0]["prefix"]


# --- methods an endpoint does not offer are 405, logged in or not ------------------------------

@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND", "PATCH"])
@pytest.mark.parametrize("path, regards", [("/api/v1/me", False), (ORDERS, True),
                                           ("/api/v1/delivery/signing-key", False),
                                           ("/api/v1/rs-authentication/oauth/token", True)])
@pytest.mark.parametrize("authenticated", [False, True])
def test_unoffered_methods_are_405_before_authentication(member, method, path, regards, authenticated):
    client = member.client if authenticated else Client()
    response = client.generic(method, path)
    assert response.status_code == 405
    assert "GET" in response["Allow"] or "POST" in response["Allow"]
    body = json.loads(response.content)
    assert body.get("messages") if regards else body["status"] == 405


def test_head_of_a_get_endpoint_is_still_allowed(member):
    assert member.client.head("/api/v1/me").status_code == 200


# --- pages refuse with pages -------------------------------------------------------------------

def test_a_page_refused_to_a_non_owner_is_an_html_page(member, project):
    order = order_of(member, make_objects(project, count=1))
    stranger = make_member(project)
    client = Client()
    client.force_login(stranger.user)
    response = client.get(f"/projects/{project.slug}/orders/{order.pk}/")
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
    api = stranger.client.get(f"{ORDERS}/{order.pk}")
    assert api.status_code == 403 and api["Content-Type"].startswith("application/json")


def test_a_bad_request_page_is_html_and_an_api_one_json(rf):
    from portal.api.errors import handler400

    assert handler400(rf.get("/projects/x/"))["Content-Type"].startswith("text/html")
    assert handler400(rf.get("/api/v1/me"))["Content-Type"].startswith("application/problem+json")


# --- mails are about orders as they are ----------------------------------------------------------

@pytest.mark.parametrize("gone", ["delete", "expire"])
@pytest.mark.parametrize("kind", ["ready", "created"])
def test_no_mail_announces_an_order_deleted_or_expired_before_the_mail_task_ran(member, project, run_tasks,
                                                                                 gone, kind):
    order = order_of(member, make_objects(project, count=2), run=run_tasks)
    assert reload(order).status == OrderStatus.DONE
    with project_scope(project):
        getattr(services, f"order_{gone}")(project=project, order_id=order.pk)
    Order.unscoped_objects.filter(pk=order.pk).update(ready_mail_at=None, created_mail_at=None)
    mail.outbox.clear()

    tasks.order_mail_task(project.pk, order.pk, kind)

    assert mail.outbox == []


def test_the_ready_mail_is_still_sent_for_a_finished_order(member, project, run_tasks):
    mail.outbox.clear()
    order = order_of(member, make_objects(project, count=2), run=run_tasks)
    assert [m.subject for m in mail.outbox if "is ready" in m.subject]
    assert f"is {OrderStatus.DONE}" in [m for m in mail.outbox if "is ready" in m.subject][0].body
    assert reload(order).ready_mail_at is not None




# --- dates with any offset (found by the fuzzer) ----------------------------------------------

@pytest.mark.parametrize("params, expected", [
    ({"to": "0343-03-12T17:16:07.447486-18:43"}, 200),   # an offset the database cannot take
    ({"from": "2026-01-01T00:00:00+23:59"}, 200),
    ({"from": "0001-01-01T00:00:00+01:00"}, 400),        # before year 1 in UTC
    ({"to": "9999-12-31T23:59:59-01:00"}, 400),          # after year 9999 in UTC
])
def test_admin_list_dates_with_far_offsets_are_never_a_500(admin_member, params, expected):
    response = admin_member.client.get("/api/v1/rs-order/orders", params)
    assert response.status_code == expected, response.content


@pytest.mark.parametrize("date, expected", [("0343-03-12T17:16:07.447486-18:43", 200),
                                            ("0001-01-01T00:00:00+01:00", 400)])
def test_delivery_cache_dates_with_far_offsets_are_never_a_500(admin_member, date, expected):
    response = admin_member.client.delete(f"/api/v1/delivery/cache/delete?date={date.replace('+', '%2B')}")
    assert response.status_code == expected, response.content


# --- NUL characters (found by the fuzzer on PostgreSQL: text cannot hold them) ------------------

@pytest.mark.parametrize("url", [
    "/api/v1/rs-dam/datasets?scope=al%00pha",
    "/api/v1/rs-dam/datasets?label=a%00b",
    "/api/v1/rs-catalog/search/dataobjects?q=label:a%00b",
    "/api/v1/me?scope=%00",
    "/api/v1/rs-order/orders?user=a%00@b.org",
    "/api/v1/delivery/preparedDelivery/order-1%00",
    "/api/v1/rs-order/user/orders/metalink/download?orderToken=x%00&scope=alpha",
    "/projects/alpha/search/?q=a%00",
])
def test_nul_characters_in_paths_and_queries_are_400(admin_member, url):
    from django.test import Client

    client = admin_member.client if url.startswith("/api") else Client()
    if not url.startswith("/api"):
        client.force_login(admin_member.user)
    response = client.get(url)
    assert response.status_code == 400, (url, response.status_code)
    if url.startswith("/api/v1/rs-"):
        assert response.json()["messages"]
    elif url.startswith("/api"):
        assert response["Content-Type"].startswith("application/problem+json")
    else:
        assert response["Content-Type"].startswith("text/html")
