"""The catalog query language: what each construct matches, and that hostile input only ever
gives a Q or a QuerySyntaxError (never a database error)."""
from datetime import datetime, timezone

import pytest
from django.db.models import Q
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from portal.catalog.models import DataObject, Dataset
from portal.catalog.query import (
    QuerySyntaxError, UnknownFieldError, parse_dataset_query, parse_query, query_error_body,
)

from .factories import DataObjectFactory, DatasetFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(project, scoped):
    optical = DatasetFactory(project=project, label="Optical scenes")
    radar = DatasetFactory(project=project, label="Radar scenes")

    def obj(label, dataset, day, tags=(), **properties):
        return DataObjectFactory(project=project, dataset=dataset, label=label, tags=list(tags),
                                 creation_date=datetime(2024, 1, day, 12, tzinfo=timezone.utc),
                                 properties=properties)

    return {
        "optical": optical,
        "radar": radar,
        "a": obj("Scene Alpha", optical, 1, ["cloudy", "night"], instrument="OLI", cloudCover=80),
        "b": obj("Scene Beta", optical, 2, ["clear"], instrument="OLI", cloudCover=5.5),
        "c": obj("Swath Gamma", radar, 3, ["night"], instrument="SAR", polarisation="VV"),
        "d": obj("Other (special) thing", radar, 10),
    }


def labels(q, project):
    return set(DataObject.objects.filter(parse_query(q, project=project)).values_list("label", flat=True))


ALL = {"Scene Alpha", "Scene Beta", "Swath Gamma", "Other (special) thing"}


@pytest.mark.parametrize("q, expected", [
    ("", ALL),
    ("   ", ALL),
    ("*", ALL),
    ("scene", {"Scene Alpha", "Scene Beta"}),                       # bare term: label substring
    ('"scene beta"', {"Scene Beta"}),
    ("label:scene", set()),                                          # field: whole value
    ('label:"scene alpha"', {"Scene Alpha"}),
    ("label:scene*", {"Scene Alpha", "Scene Beta"}),
    ("label:s*a", {"Scene Alpha", "Scene Beta", "Swath Gamma"}),
    ("label:Scene?Beta", {"Scene Beta"}),
    ("label:Other\\ \\(special\\)*", {"Other (special) thing"}),     # escaped metacharacters
    ("tags:night", {"Scene Alpha", "Swath Gamma"}),
    ("tags:NIGHT", {"Scene Alpha", "Swath Gamma"}),
    ("tags:nig", set()),                                             # a tag, not a substring
    ("tags:cl*", {"Scene Alpha", "Scene Beta"}),
    ("tags:*", {"Scene Alpha", "Scene Beta", "Swath Gamma"}),
    ("dataset:\"Radar scenes\"", {"Swath Gamma", "Other (special) thing"}),
    ("dataset:radar*", {"Swath Gamma", "Other (special) thing"}),
    ("instrument:oli", {"Scene Alpha", "Scene Beta"}),
    ("properties.instrument:SAR", {"Swath Gamma"}),
    ("cloudCover:[0 TO 10]", {"Scene Beta"}),
    ("cloudCover:{5.5 TO *]", {"Scene Alpha"}),
    ("cloudCover:>=5.5", {"Scene Alpha", "Scene Beta"}),
    ("cloudCover:80", {"Scene Alpha"}),
    ("polarisation:*", {"Swath Gamma"}),
    ("NOT instrument:OLI", {"Swath Gamma", "Other (special) thing"}),  # objects lacking the key too
    ("creationDate:2024-01-02", {"Scene Beta"}),
    ("creationDate:9999-12-31", set()),                              # the last day: no overflow
    ("creationDate:[2024-01-02 TO 2024-01-03]", {"Scene Beta", "Swath Gamma"}),
    ("creationDate:{2024-01-02 TO *]", {"Swath Gamma", "Other (special) thing"}),
    ("creationDate:[* TO 2024-01-03}", {"Scene Alpha", "Scene Beta"}),
    ("creationDate:[* TO 2024-01-02T12:00:00Z]", {"Scene Alpha", "Scene Beta"}),
    ("creationDate:[* TO 2024-01-02T12:00:00Z}", {"Scene Alpha"}),
    ('creationDate:["2024-01-02T13:00:00+02:00" TO *]', {"Scene Beta", "Swath Gamma", "Other (special) thing"}),
    ("creationDate:<2024-01-02", {"Scene Alpha"}),
    ("creationDate:2024-01-02T12:00:00.000Z", {"Scene Beta"}),
    ("tags:night AND instrument:OLI", {"Scene Alpha"}),
    ("tags:night OR tags:clear", {"Scene Alpha", "Scene Beta", "Swath Gamma"}),
    ("tags:night tags:clear", {"Scene Alpha", "Scene Beta", "Swath Gamma"}),  # implicit: OR (Lucene)
    ("+tags:night -instrument:SAR", {"Scene Alpha"}),
    ("tags:night NOT instrument:SAR", {"Scene Alpha"}),
    ("scene +tags:clear", {"Scene Beta"}),  # with a required clause, optional ones do not filter
    ("NOT scene", {"Swath Gamma", "Other (special) thing"}),
    ("(tags:night OR tags:clear) AND dataset:\"Optical scenes\"", {"Scene Alpha", "Scene Beta"}),
    ("tags:night OR tags:clear AND instrument:SAR", {"Scene Alpha", "Swath Gamma"}),  # AND binds tighter
    ("label:(alpha OR \"scene beta\")", {"Scene Beta"}),
    ("label:(scene* AND *beta)", {"Scene Beta"}),
    ("instrument:OLI^2", {"Scene Alpha", "Scene Beta"}),
])
def test_query_matches(catalog, project, q, expected):
    assert labels(q, project) == expected


def test_ip_id_and_dataset_urn(catalog, project):
    a = catalog["a"]
    escaped = a.ip_id.replace(":", "\\:")
    assert labels(f'ipId:"{a.ip_id}"', project) == {"Scene Alpha"}
    assert labels(f"ipId:{escaped}", project) == {"Scene Alpha"}
    assert labels(f'"{a.ip_id}"', project) == {"Scene Alpha"}  # a bare URN names the object
    assert labels(f'dataset:"{catalog["radar"].ip_id}"', project) == {"Swath Gamma", "Other (special) thing"}
    assert labels("ipId:URN*", project) == ALL


def test_other_projects_properties_are_unknown_fields(catalog, project, other_project):
    # Given a property only project A's objects have
    # When B's user queries it as a bare field, it is unknown (A's schema does not leak)
    with pytest.raises(UnknownFieldError):
        parse_query("polarisation:VV", project=other_project)
    assert parse_query("polarisation:VV", project=project) is not None


@pytest.mark.parametrize("q, position", [
    ("label:(scene", 12),
    ("tags:night AND", 14),
    ("label:[a TO", 11),
    ("a ) b", 2),
    ("nosuchfield:x", 0),
    ("tags:a AND nosuchfield:x", 11),
    ("creationDate:yesterday", 13),
    ("creationDate:[2024-13-01 TO *]", 14),
    ("creationDate:2024*", 13),
    ("label:(tags:x)", 7),
    ("label:/re.*/", 6),
    ("label:scene~2", 6),
    ("label:a\x00", 7),
    ("tags:[a TO b]", 5),
    ("properties.a__b:x", 0),
])
def test_bad_queries_name_the_position(catalog, project, q, position):
    with pytest.raises(QuerySyntaxError) as err:
        parse_query(q, project=project)
    assert err.value.position == position
    body = query_error_body(err.value)
    assert body["messages"][0].startswith(f"Invalid query at position {position}:")


def test_limits(project, scoped):
    with pytest.raises(QuerySyntaxError, match="longer"):
        parse_query("a " * 3000, project=project)
    with pytest.raises(QuerySyntaxError, match="nested"):
        parse_query("(" * 100 + "a" + ")" * 100, project=project)
    with pytest.raises(QuerySyntaxError, match="too many terms"):
        parse_query(" OR ".join(f"t{i}" for i in range(300)), project=project)


def test_dataset_query(catalog, project):
    found = Dataset.objects.filter(parse_dataset_query("label:radar*", project=project))
    assert list(found.values_list("label", flat=True)) == ["Radar scenes"]
    with pytest.raises(UnknownFieldError):
        parse_dataset_query("tags:x", project=project)


# --- hostile input ------------------------------------------------------------------------

QUERY_ALPHABET = st.sampled_from(
    list("abcXYZ019 :*?\"'()[]{}<>=+-!^~/\\\t\n.,é€\x00") +
    ["AND ", "OR ", "NOT ", " TO ", "label:", "tags:", "creationDate:", "ipId:", "dataset:",
     "instrument:", "cloudCover:", "properties.", "2024-01-01", "T10:00:00Z", "1e999", "-5",
     "99999999999999999999999", "9999-12-31", "0000-01-01", "*", "__gte"]
)
query_like = st.lists(QUERY_ALPHABET, max_size=25).map("".join)


def _run(q, project):
    try:
        result = parse_query(q, project=project)
    except QuerySyntaxError as exc:
        assert isinstance(exc.position, int) and 0 <= exc.position <= len(q)
        assert exc.message
        return
    assert isinstance(result, Q)
    # The Q must also run: a database error would be a 500 too.
    list(DataObject.objects.filter(result).values_list("pk", flat=True)[:5])


@hsettings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(q=query_like)
def test_hostile_query_like_strings(catalog, project, q):
    _run(q, project)


@hsettings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(q=st.text(max_size=60))
def test_hostile_random_text(catalog, project, q):
    _run(q, project)
