"""load_catalog: JSON and CSV manifests, idempotent, atomic, in bulk, files stored with digests."""
import hashlib
import json
import re
import zlib

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.catalog import storage
from portal.catalog.models import DataFile, DataObject, Dataset
from portal.tenancy.scope import project_scope

pytestmark = pytest.mark.django_db


@pytest.fixture
def source(tmp_path):
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "a.tif").write_bytes(b"raw A" * 100)
    (tmp_path / "files" / "a_ql.png").write_bytes(b"\x89PNG quicklook")
    (tmp_path / "files" / "b.tif").write_bytes(b"raw B on tape")
    return tmp_path


def manifest(source, objects=None, name="manifest.json"):
    data = {"datasets": [{
        "label": "Optical scenes",
        "objects": objects if objects is not None else [
            {"ipId": "URN:AIP:DATA:alpha:11111111-1111-1111-1111-111111111111:V1", "label": "Scene A",
             "creationDate": "2024-03-01T10:00:00Z", "tags": ["cloudy"], "properties": {"instrument": "OLI"},
             "files": [{"dataType": "RAWDATA", "path": "files/a.tif", "tier": "ONLINE"},
                       {"dataType": "QUICKLOOK_SD", "path": "files/a_ql.png", "tier": "ONLINE"}]},
            {"label": "Scene B", "creationDate": "2024-03-02",
             "files": [{"dataType": "RAWDATA", "path": "files/b.tif", "tier": "NEARLINE",
                        "mimeType": "image/tiff"}]},
        ]}]}
    path = source / name
    path.write_text(json.dumps(data))
    return path


def counts(project):
    with project_scope(project):
        return Dataset.objects.count(), DataObject.objects.count(), DataFile.objects.count()


def test_json_manifest_loads_objects_and_files(project, source, settings, capsys):
    call_command("load_catalog", project.slug, str(manifest(source)))
    assert counts(project) == (1, 2, 3)
    with project_scope(project):
        a = DataObject.objects.get(label="Scene A")
        assert a.tags == ["cloudy"] and a.properties == {"instrument": "OLI"}
        assert a.creation_date.isoformat() == "2024-03-01T10:00:00+00:00"
        b = DataObject.objects.get(label="Scene B")
        assert re.fullmatch(r"URN:AIP:DATA:alpha:[0-9a-f-]{36}:V1", b.ip_id)
        assert re.fullmatch(r"URN:AIP:DATASET:alpha:[0-9a-f-]{36}:V1", a.dataset.ip_id)
        raw = a.files.get(data_type="RAWDATA")
        data = b"raw A" * 100
        assert (raw.size, raw.crc32, raw.checksum, raw.sha256) == (
            len(data), zlib.crc32(data), hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest())
        assert raw.mime_type == "image/tiff" and raw.filename == "a.tif"
        assert (settings.ONLINE_STORAGE_DIR / raw.location).read_bytes() == data
        tape = b.files.get()
        assert tape.tier == "NEARLINE"
        assert (settings.NEARLINE_STORAGE_DIR / tape.location).read_bytes() == b"raw B on tape"
        assert not (settings.ONLINE_STORAGE_DIR / tape.location).exists()
    out = capsys.readouterr().out
    assert "objects: 2 created" in out
    assert "\r" not in out  # no progress bar when stdout is not a terminal


def test_loading_twice_changes_nothing(project, source, capsys):
    path = manifest(source)
    call_command("load_catalog", project.slug, str(path))
    with project_scope(project):
        before = list(DataObject.objects.order_by("id").values()), list(DataFile.objects.order_by("id").values())
    capsys.readouterr()
    call_command("load_catalog", project.slug, str(path))
    assert "objects: 0 created, 0 updated; files: 0 created, 0 updated" in capsys.readouterr().out
    with project_scope(project):
        after = list(DataObject.objects.order_by("id").values()), list(DataFile.objects.order_by("id").values())
    assert before == after


def test_changed_entries_are_updated_not_duplicated(project, source):
    call_command("load_catalog", project.slug, str(manifest(source)))
    data = json.loads((source / "manifest.json").read_text())
    data["datasets"][0]["objects"][0]["tags"] = ["clear"]
    (source / "files" / "b.tif").write_bytes(b"new tape bytes")
    (source / "manifest.json").write_text(json.dumps(data))
    call_command("load_catalog", project.slug, str(source / "manifest.json"))
    assert counts(project) == (1, 2, 3)
    with project_scope(project):
        assert DataObject.objects.get(label="Scene A").tags_index == "|clear|"
        assert DataFile.objects.get(filename="b.tif").sha256 == hashlib.sha256(b"new tape bytes").hexdigest()


@pytest.mark.parametrize("bad, where", [
    ({"label": "X", "files": [{"dataType": "RAWDATA", "path": "files/nope.tif", "tier": "ONLINE"}]},
     'datasets[0].objects[2].files[0] (path "files/nope.tif"): file not found'),
    ({"label": "X", "files": [{"dataType": "MOVIE", "path": "files/a.tif"}]},
     "datasets[0].objects[2].files[0]: unknown dataType 'MOVIE'"),
    ({"label": "X", "creationDate": "yesterday"}, "datasets[0].objects[2]: 'creationDate'"),
    ({"label": ""}, "datasets[0].objects[2]: 'label' is required"),
    ({"label": "X", "tags": "notalist"}, "datasets[0].objects[2]: 'tags'"),
    ({"label": "X", "files": [{"dataType": "RAWDATA", "path": "files/a.tif", "tier": "TAPE"}]},
     "datasets[0].objects[2].files[0]: unknown tier 'TAPE'"),
    ({"label": "Scene B"}, "datasets[0].objects[2]: ipId"),  # same generated ipId as objects[1]
])
def test_a_bad_entry_loads_nothing_and_is_named(project, source, bad, where):
    good = json.loads(manifest(source).read_text())["datasets"][0]["objects"]
    path = manifest(source, good + [bad], name="bad.json")
    with pytest.raises(CommandError) as err:
        call_command("load_catalog", project.slug, str(path))
    assert err.value.returncode == 2
    assert where in str(err.value)
    assert counts(project) == (0, 0, 0)


def test_bad_arguments_exit_2(project, source):
    with pytest.raises(CommandError) as err:
        call_command("load_catalog", "nosuchproject", str(manifest(source)))
    assert err.value.returncode == 2
    with pytest.raises(CommandError) as err:
        call_command("load_catalog", project.slug, str(source / "missing.json"))
    assert err.value.returncode == 2
    (source / "broken.json").write_text("{not json")
    with pytest.raises(CommandError, match="not valid JSON"):
        call_command("load_catalog", project.slug, str(source / "broken.json"))


def test_csv_manifest(project, source):
    (source / "m.csv").write_text(
        "datasetLabel,ipId,label,creationDate,tags,properties.instrument,dataType,path,tier\n"
        "Radar,,Swath 1,2024-05-01T00:00:00Z,night;wet,SAR,RAWDATA,files/a.tif,ONLINE\n"
        "Radar,,Swath 1,2024-05-01T00:00:00Z,night;wet,SAR,QUICKLOOK_SD,files/a_ql.png,ONLINE\n"
        "Radar,,Swath 2,,,,RAWDATA,files/b.tif,NEARLINE\n"
    )
    call_command("load_catalog", project.slug, str(source / "m.csv"))
    assert counts(project) == (1, 2, 3)
    call_command("load_catalog", project.slug, str(source / "m.csv"))
    assert counts(project) == (1, 2, 3)
    with project_scope(project):
        swath = DataObject.objects.get(label="Swath 1")
        assert swath.tags == ["night", "wet"] and swath.properties == {"instrument": "SAR"}
    (source / "bad.csv").write_text("datasetLabel,label,dataType,path\nRadar,S,RAWDATA,files/a.tif\nRadar,T,BAD,files/a.tif\n")
    with pytest.raises(CommandError, match="line 3"):
        call_command("load_catalog", project.slug, str(source / "bad.csv"))


def test_bulk_inserts_not_one_per_row(project, source):
    objects = [{"label": f"Scene {i}", "files": [{"dataType": "RAWDATA", "path": "files/a.tif"}]}
               for i in range(3000)]
    path = manifest(source, objects, name="big.json")
    with CaptureQueriesContext(connection) as ctx:
        call_command("load_catalog", project.slug, str(path))
    inserts = [q for q in ctx.captured_queries if q["sql"].lstrip().upper().startswith("INSERT")]
    assert counts(project) == (1, 3000, 3000)
    # Batched: ~2000 rows per INSERT (SQLite's parameter limit makes batches of ~100), not 6000.
    assert len(inserts) <= 6000 // 50
    # One source file used 3000 times is stored once (content-addressed).
    with project_scope(project):
        assert DataFile.objects.values("location").distinct().count() == 1


def test_loaded_catalog_is_searchable(project, source):
    from portal.catalog.query import parse_query

    call_command("load_catalog", project.slug, str(manifest(source)))
    with project_scope(project):
        q = parse_query("tags:cloudy AND instrument:OLI", project=project)
        assert list(DataObject.objects.filter(q).values_list("label", flat=True)) == ["Scene A"]
