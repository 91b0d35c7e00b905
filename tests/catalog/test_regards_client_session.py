"""Contract test: a recorded REGARDS client session replayed over real HTTP against the portal.

The session (regards_client_session.json) is what a REGARDS client sends and every field it
reads: token (Basic client header, form fields) -> dataset list -> search with `properties.x:`
clauses and a date range -> download by `uri` (bearer token, Range, `?token=`). The client never
sends `scope`: the token carries the project.
"""
from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests

from portal.tenancy.models import Role
from tests.conftest import make_member

from .factories import DataFileFactory, DataObjectFactory, DatasetFactory

SESSION = json.loads((Path(__file__).with_name("regards_client_session.json")).read_text())
PASSWORD = "pass-word-123"
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_STEP = re.compile(r"([^.\[\]]+)|\[(\*|\d+)\]")
TYPES = {"str": str, "int": int, "bool": bool, "list": list, "dict": dict}


def select(document, path: str) -> list:
    """Values at `a.b[*].c[0]` (a list: `[*]` fans out)."""
    values = [document]
    for name, index in _STEP.findall(path):
        if name:
            values = [v[name] for v in values]  # a missing field fails the test with its name
        elif index == "*":
            values = [item for v in values for item in v]
        else:
            values = [v[int(index)] for v in values]
    return values


def fill(value, variables: dict):
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole:
            return variables[whole.group(1)]
        return _PLACEHOLDER.sub(lambda m: str(variables[m.group(1)]), value)
    if isinstance(value, dict):
        return {k: fill(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, variables) for v in value]
    return value


def check(actual, expected, where: str) -> None:
    if isinstance(expected, str) and expected in TYPES:
        assert isinstance(actual, TYPES[expected]) and not (expected == "int" and isinstance(actual, bool)), \
            f"{where}: {actual!r} is not {expected}"
    elif expected == "null":
        assert actual is None, f"{where}: {actual!r} is not null"
    elif isinstance(expected, list) and isinstance(actual, list) and expected and not all(
            isinstance(e, (list, dict)) for e in expected):
        assert len(actual) == len(expected), f"{where}: {actual!r} != {expected!r}"
        for i, (a, e) in enumerate(zip(actual, expected)):
            check(a, e, f"{where}[{i}]")
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


@pytest.fixture
def solar_archive(project):
    """What the session expects to find: two datasets, five AIA objects a day apart, two EIT."""
    sdo = DatasetFactory(project=project, label="GAIA-DEM", properties={
        "dataset_name": "GAIA-DEM data", "instrument": "AIA", "observatory": "SDO"})
    soho = DatasetFactory(project=project, label="SOHO", properties={
        "dataset_name": "SOHO data", "instrument": "EIT", "observatory": "SOHO"})
    for i in range(5):
        obj = DataObjectFactory(project=project, dataset=sdo, label=f"aia_{i}",
                                creation_date=datetime(2024, 1, 1 + i, tzinfo=timezone.utc),
                                properties={"observatory": "SDO", "instrument": "AIA",
                                            "dataset_name": "GAIA-DEM data", "wavemin": 171 + i,
                                            "date_obs": f"2023-03-{15 + i}T12:00:00.000Z",
                                            "date_end": f"2023-03-{15 + i}T12:10:00.000Z"})
        DataFileFactory(data_object=obj, filename=f"aia_{i}.fits", mime_type="application/fits",
                        content=(f"SIMPLE  = T / aia {i}\n".encode() * 400))
        DataFileFactory(data_object=obj, data_type="THUMBNAIL", filename=f"aia_{i}.png", mime_type="image/png")
    for i in range(2):
        obj = DataObjectFactory(project=project, dataset=soho, label=f"eit_{i}",
                                properties={"observatory": "SOHO", "instrument": "EIT", "dataset_name": "SOHO data",
                                            "date_obs": f"2023-03-{16 + i}T00:00:00.000Z"})
        DataFileFactory(data_object=obj, filename=f"eit_{i}.fits")
    return project


def test_a_recorded_regards_client_session_works_unchanged(transactional_db, live_server, solar_archive):
    member = make_member(solar_archive, Role.REGISTERED_USER, email="solar.user@example.org")
    member.user.set_password(PASSWORD)
    member.user.save()
    variables = {"username": member.user.email, "password": PASSWORD, "tenant": solar_archive.slug}
    http = requests.Session()

    for step in SESSION["steps"]:
        url = fill(step["url"], variables) if "url" in step else live_server.url + step["path"]
        response = http.request(step["method"], url, headers=fill(step.get("headers", {}), variables),
                                params=fill(step.get("params"), variables),
                                data=fill(step.get("form"), variables), timeout=30)
        where = step["name"]
        assert response.status_code == step["status"], f"{where}: {response.status_code} {response.text[:300]}"
        if "reads" in step:
            body = response.json()
            for path, expected in step["reads"].items():
                values = select(body, path)
                check(values if "[*]" in path else values[0], fill(expected, variables), f"{where}: {path}")
            if "content" in body:
                # Clients find the URN as the first `id` under each item: nothing above it may shadow it.
                assert all(list(item) == ["content", "links"] for item in body["content"]), where
        for name, path in step.get("capture", {}).items():
            variables[name] = select(response.json(), path)[0]
        if "body" in step:
            expected = fill(step["body"], variables)
            if "md5" in expected:
                assert hashlib.md5(response.content).hexdigest() == expected["md5"], where
                assert len(response.content) == expected["length"], where
            else:
                assert len(response.content) == expected["of"] - expected["length_from"], where
                assert response.headers["Content-Range"] == \
                    f"bytes {expected['length_from']}-{expected['of'] - 1}/{expected['of']}"
        if step["name"] == "search with properties and a date range":
            # The client downloads directly only what lives under the base URL it was given.
            assert variables["uri"].startswith(live_server.url + "/api/v1/rs-catalog/downloads/")
            assert variables["urn"] in variables["uri"]
