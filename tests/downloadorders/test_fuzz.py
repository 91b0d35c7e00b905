"""Fuzz: any JSON body on POST /api/downloadorders is a 201 or a 4xx problem+json, never a 500,
and a refused request writes nothing."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from deliveries.downloadorders.models import DownloadOrder, DownloadOrderTarget

from .conftest import URL, make_object, raw

pytestmark = pytest.mark.django_db

scalars = st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=12)
step = st.fixed_dictionaries({"type": st.sampled_from(["fileExtension", "resize", "compression", "crop"]),
                              "value": json_values | st.sampled_from(["jpeg", "png", "gzip", "zip"])
                              | st.fixed_dictionaries({}, optional={"width": json_values, "height": st.integers()})})


@pytest.fixture
def urns(project):
    return [make_object(project, files=[raw(f"f{i}.bin", b"z" * 20)]).ip_id for i in range(2)]


def _bodies(urns):
    entry = st.fixed_dictionaries({}, optional={
        "renditions": st.lists(st.sampled_from(["RAWDATA", "QUICKLOOK", "original", "nope"]) | st.text(max_size=5),
                               max_size=3) | json_values,
        "conversions": st.lists(st.lists(step, max_size=3) | json_values, max_size=2) | json_values,
        "presets": st.lists(st.text(max_size=5), max_size=2) | json_values})
    keys = st.sampled_from(urns) | st.text(max_size=10)
    selection = st.fixed_dictionaries({"selectionPool": st.sampled_from(["entities", "basket", "x"]) | json_values},
                                      optional={"entities": st.lists(keys, max_size=3) | json_values,
                                                "definitionName": json_values})
    order = st.fixed_dictionaries({}, optional={"global": st.dictionaries(keys, entry, max_size=2) | json_values,
                                                "individual": st.dictionaries(keys, entry, max_size=2) | json_values,
                                                "zip_filename": json_values})
    return st.fixed_dictionaries({}, optional={"target_selection": selection, "order": order,
                                               "item_name_resolver_id": st.sampled_from(["filename", "label", "?"])
                                               | json_values, "name": json_values}) | json_values


def test_any_body_is_a_201_or_a_clear_4xx(member, urns):
    @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
    @given(_bodies(urns))
    def check(payload):
        before = DownloadOrder.unscoped_objects.count(), DownloadOrderTarget.unscoped_objects.count()
        response = member.client.post(URL, payload, format="json")
        assert response.status_code in (201, 400), (payload, response.status_code, response.content[:300])
        if response.status_code == 400:
            assert response["Content-Type"].startswith("application/problem+json")
            assert (DownloadOrder.unscoped_objects.count(), DownloadOrderTarget.unscoped_objects.count()) == before

    check()
