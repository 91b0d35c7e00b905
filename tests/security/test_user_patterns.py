"""User regular expressions run in linear time (issue 11, item 1).

Basket file-name patterns RE2 cannot express are refused with 400, patterns are bounded in
length (also the ones catalog wildcards become), and SQLite's REGEXP (the embedded default)
is RE2 instead of Python's backtracking `re`."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.db import connection

from portal.catalog.models import DataType
from portal.regex import MAX_USER_PATTERN_LENGTH, PatternRefused, sqlite_regexp, user_pattern_check
from tests.basket.conftest import SELECTION_URL, dataset_url, selections_by_label
from tests.catalog.factories import DataFileFactory, DataObjectFactory, DatasetFactory

ROOT = Path(__file__).resolve().parents[2]

# Backreferences, lookarounds, possessive and atomic forms, Python-only escapes, repetition
# counts past RE2's bound, conditionals, recursion: all backtracking-only features.
NOT_LINEAR = [r"(a)\1", r"(?P<x>a)(?P=x)", r"a(?=b)", r"a(?!b)", r"(?<=a)b", r"(?<!a)b", r"a++",
              r"(?>a+)b", r"a\Z", r"a{1001}", r"(a{100}){100}", r"(?(1)a|b)", r"(a(?R)?b)"]
# Catastrophic for a backtracking engine on a long run of `a`s, linear in RE2.
CATASTROPHIC = [r"(a|aa)*c", r"(a+)+b", r"(a*)*b", r"(.*a){12}x", r"(a|a?)+c", r"(\w+\d*)+!"]


def _put_filters(member, selection_id, body):
    return member.client.put(f"{dataset_url(selection_id)}/updateFileFilters", body, format="json")


@pytest.fixture
def long_names(member, project):
    """A dataset whose one file has a long name of `a`s, selected in the member's basket."""
    dataset = DatasetFactory(project=project, label="Long names")
    obj = DataObjectFactory(dataset=dataset, tags=["long"])
    DataFileFactory(data_object=obj, data_type=DataType.RAWDATA, content=b"x" * 10, filename="a" * 250)
    body = member.client.post(SELECTION_URL, {"selectAllOpenSearchRequest": "tags:long"}, format="json").json()
    return selections_by_label(body)["Long names"]


@pytest.mark.django_db
@pytest.mark.parametrize("pattern", NOT_LINEAR)
def test_patterns_re2_cannot_run_are_400(member, long_names, pattern):
    response = _put_filters(member, long_names["id"], {"fileNamePattern": pattern})
    assert response.status_code == 400, response.content
    assert response.json()["messages"][0].startswith("fileNamePattern:")


@pytest.mark.django_db
def test_a_pattern_longer_than_the_bound_is_400(member, long_names):
    response = _put_filters(member, long_names["id"], {"fileNamePattern": "a" * (MAX_USER_PATTERN_LENGTH + 1)})
    assert response.status_code == 400
    assert _put_filters(member, long_names["id"], {"fileNamePattern": "a" * 250}).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("pattern", CATASTROPHIC)
def test_catastrophic_patterns_are_accepted_and_answer_at_once(member, long_names, pattern):
    response = _put_filters(member, long_names["id"], {"fileNamePattern": pattern})
    assert response.status_code == 200, response.content
    assert selections_by_label(response.json())["Long names"]["filesCount"] == 0
    matching = _put_filters(member, long_names["id"], {"fileNamePattern": "(a|aa)*"}).json()
    assert selections_by_label(matching)["Long names"]["filesCount"] == 1


@pytest.mark.django_db
def test_wildcard_terms_are_bounded_and_linear(member, project):
    DataObjectFactory(dataset=DatasetFactory(project=project), label="a" * 250)
    url = "/api/v1/rs-catalog/search/dataobjects"
    too_long = member.client.get(url, {"q": "label:" + "b" * MAX_USER_PATTERN_LENGTH + "*"})
    assert too_long.status_code == 400
    # Ten wildcards over a long label: polynomial of degree ten for a backtracking engine.
    many = member.client.get(url, {"q": "label:" + "a*" * 10 + "b"})
    assert many.status_code == 200 and many.json()["metadata"]["totalElements"] == 0
    hit = member.client.get(url, {"q": "label:" + "a*" * 10})
    assert hit.json()["metadata"]["totalElements"] == 1


def test_sqlite_regexp_is_linear_time_in_a_fresh_process(tmp_path):
    """The embedded default's REGEXP: with Python's `re` this search runs for ages (the
    subprocess times out); RE2 answers at once."""
    script = textwrap.dedent("""
        import django
        django.setup()
        from django.db import connection
        with connection.cursor() as cursor:
            cursor.execute("SELECT %s REGEXP %s", ["a" * 60, "^(a|aa)*c$"])
            print("result", cursor.fetchone()[0])
    """)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings.base",
           "ORDERLY_DATA_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "result 0" in result.stdout


@pytest.mark.parametrize("pattern", NOT_LINEAR)
def test_user_pattern_check_refuses_backtracking_features(pattern):
    with pytest.raises(PatternRefused):
        user_pattern_check(pattern)


def test_sqlite_regexp_keeps_djangos_semantics():
    assert sqlite_regexp(None, "x") is None and sqlite_regexp("x", None) is None
    assert sqlite_regexp("b", "abc") is True  # search, not a full match
    assert sqlite_regexp("(?i)ABC", "xabcx") is True
    assert sqlite_regexp("^b", "abc") is False
    assert sqlite_regexp("1", 12) is True


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "sqlite", reason="the embedded default's REGEXP")
def test_the_test_connection_uses_re2_too():
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s REGEXP %s", ["a" * 200, "^(a|aa)*c$"])
        assert cursor.fetchone()[0] == 0
