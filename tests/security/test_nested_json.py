"""Deeply nested JSON bodies are a 400, never a RecursionError 500 (issue 11, item 6)."""
import json

import pytest

from portal.api.parsers import json_depth_exceeds

P = "/api/v1/rs-order"
ENDPOINTS = [
    ("POST", f"{P}/user/orders"),
    ("POST", f"{P}/order/basket/selection"),
    ("POST", "/api/v1/delivery/prepareDelivery"),
    ("POST", f"{P}/orders/search"),
    ("POST", f"{P}/orders/csv"),
    ("PUT", "/api/v1/delivery/cache/config"),
    ("POST", "/api/v1/tokens"),
    ("POST", "/api/v1/rs-authentication/oauth/token"),
]


def _arrays(depth):
    return "[" * depth + "]" * depth


def _objects(depth):
    return '{"a":' * depth + "1" + "}" * depth


def _mixed(depth):
    return '{"label":' + '[{"x":' * (depth // 2) + "0" + "}]" * (depth // 2) + "}"


BODIES = {
    "arrays-1000": _arrays(1000),
    "objects-1000": _objects(1000),
    "mixed-1000": _mixed(1000),
    "arrays-100000": _arrays(100_000),
    "unclosed-50000": "[" * 50_000,
    "just-over-the-limit": _objects(33),
}


@pytest.mark.parametrize("method, path", ENDPOINTS)
@pytest.mark.parametrize("shape", sorted(BODIES))
def test_deeply_nested_json_is_a_400(admin_member, method, path, shape):
    response = admin_member.client.generic(method, path, BODIES[shape], content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    body = json.loads(response.content)
    assert body.get("messages") or body.get("detail") or body.get("error")


def test_bodies_of_ordinary_depth_are_parsed(admin_member):
    response = admin_member.client.post(f"{P}/orders/search", {
        "statuses": {"values": ["RUNNING"], "mode": "INCLUDE"}}, format="json")
    assert response.status_code == 200


@pytest.mark.parametrize("value, limit, expected", [
    ({}, 1, False), ([[]], 1, True), ([[]], 2, False), ({"a": [1, {"b": 2}]}, 2, True),
    ({"a": [1, {"b": 2}]}, 3, False), ("x", 0, False)])
def test_json_depth_exceeds(value, limit, expected):
    assert json_depth_exceeds(value, limit) is expected
