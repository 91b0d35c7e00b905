import json

import pytest

from portal.api.pagination import page_request
from rest_framework.exceptions import ValidationError


def test_healthz_checks_database_and_broker_and_readyz_the_storage_too(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "database": "ok", "broker": "ok", "storage": "ok"}


def test_openapi_schema_and_swagger_ui(client, db):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    body = schema.json()
    assert body["openapi"].startswith("3.")
    assert "/api/v1/rs-authentication/oauth/token" in body["paths"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content


@pytest.mark.parametrize(
    "payload, content_type, expected",
    [
        (b'{"name": "x", ', "application/json", 400),               # truncated JSON
        (b"\xff\xfe\xfa not utf-8", "application/json", 400),      # non-UTF-8 bytes
        (b'{"lifetimeDays": 1' + b"0" * 400 + b"}", "application/json", 400),  # huge number
        (b'{"lifetimeDays": "NaN"}', "application/json", 400),
        (b"[1, 2, 3]", "application/json", 400),                     # wrong JSON type
        (b"name=x", "text/plain", 415),                              # wrong content type
        (b"<xml/>", "application/xml", 415),
    ],
)
def test_malformed_requests_get_a_problem_json_4xx_never_a_500(member, payload, content_type, expected):
    response = member.client.generic("POST", "/api/v1/tokens", payload, content_type=content_type)
    assert response.status_code == expected
    assert response["Content-Type"].startswith("application/problem+json")
    body = json.loads(response.content)
    assert body["status"] == expected and body["detail"]


def test_unknown_api_path_is_json_404(client, db):
    response = client.get("/api/v1/no/such/thing")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/problem+json")
    regards = client.get("/api/v1/rs-order/no/such/thing")
    assert regards.status_code == 404
    assert regards.json() == {"messages": ["Not found"]}


@pytest.mark.parametrize("params", [{"page": "x"}, {"page": "-1"}, {"size": "0"}, {"size": "9" * 40}])
def test_page_parameters_reject_garbage(params):
    with pytest.raises(ValidationError):
        page_request(params)


def test_page_size_is_capped_at_1000():
    assert page_request({"size": "5000", "page": "2"}).size == 1000
