"""Page test helpers: a catalog with real files, logged-in Django clients."""
from __future__ import annotations

import pytest
from django.test import Client

from tests.conftest import make_member
from tests.orders.conftest import make_objects  # noqa: F401


def logged_in(member, *, enforce_csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=enforce_csrf)
    client.force_login(member.user)
    return client


@pytest.fixture
def web(member) -> Client:
    """A browser session of `member` (REGISTERED_USER of project alpha)."""
    return logged_in(member)


@pytest.fixture
def scenes(project):
    """Three ONLINE objects with one RAWDATA file each, in dataset "Scenes"."""
    return make_objects(project, count=3, files=(("RAWDATA", 120),), label="Scenes")


@pytest.fixture
def outsider(other_project):
    """A member of project beta only."""
    return make_member(other_project)
