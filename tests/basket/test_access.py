"""Project resolution on the basket endpoints, and a regex PostgreSQL would not run."""
from __future__ import annotations

import pytest
from django.db import connection
from rest_framework.test import APIClient

from tests.basket.conftest import BASKET_URL, SELECTION_URL, dataset_url, selections_by_label
from tests.conftest import make_member

pytestmark = pytest.mark.django_db


def test_no_token_is_401(project, catalog):
    client = APIClient()

    assert client.get(BASKET_URL, HTTP_SCOPE=project.slug).status_code == 401


def test_project_is_required_known_and_mine(member, other_project, catalog):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {member.token}")

    assert client.get(BASKET_URL).status_code == 204  # no scope: the token's project (no basket yet)
    session = APIClient()
    session.force_login(member.user)
    assert session.get(BASKET_URL).status_code == 400  # a session must name the project
    assert client.get(f"{BASKET_URL}?scope=nosuchproject").status_code == 404
    outsider = make_member(other_project)
    outsider.client.credentials(HTTP_AUTHORIZATION=f"Bearer {outsider.token}", HTTP_SCOPE=member.project.slug)
    response = outsider.client.post(SELECTION_URL, {"selectAllOpenSearchRequest": "tags:red"}, format="json")
    assert response.status_code == 403
    assert "messages" in response.json()


def test_a_basket_is_per_project(member, other_project, catalog):
    member.client.post(SELECTION_URL, {"selectAllOpenSearchRequest": "tags:red"}, format="json")
    elsewhere = make_member(other_project, email=member.user.email)  # same person, other project

    assert elsewhere.client.get(BASKET_URL).status_code == 204


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's regex dialect")
def test_a_pattern_only_python_understands_is_400_on_postgresql(member, catalog):
    optical = selections_by_label(member.client.post(
        SELECTION_URL, {"selectAllOpenSearchRequest": "tags:red"}, format="json").json())["Optical scenes"]

    response = member.client.put(f"{dataset_url(optical['id'])}/updateFileFilters",
                                 {"fileNamePattern": r"(?P<name>x)"}, format="json")

    assert response.status_code == 400
    assert "fileNamePattern" in response.json()["messages"][0]
