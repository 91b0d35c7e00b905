"""Reading and validating catalog manifests (SPEC 6), JSON or CSV, before anything is loaded.

JSON: {"datasets": [{"ipId"?, "label", "properties"?, "objects": [{"ipId"?, "label",
       "creationDate"?, "tags"?, "properties"?, "files": [{"dataType", "path", "tier", "mimeType"?, "filename"?}]}]}]}
`filename` (an extension of SPEC 6) names the file for users when it is not the source's name.

CSV (one row per file; rows of the same object repeat its columns, an object without files has
empty file columns), with a header naming any of these columns:
    datasetIpId, datasetLabel, ipId, label, creationDate, tags, properties,
    dataType, path, tier, mimeType, and properties.<name> for single properties
`tags` is `;`-separated, `properties` a JSON object. Rows are grouped by dataset, then by
object `ipId` (or `label` when there is none).

Every problem raises `ManifestError` naming the entry, e.g.
`datasets[0].objects[12].files[1] (path "a.tif"): file not found`, or `line 14: ...` for CSV.
"""
from __future__ import annotations

import csv
import json
import mimetypes
from dataclasses import dataclass, field
from datetime import datetime, timezone as dt_timezone
from functools import lru_cache
from pathlib import Path

from django.utils.dateparse import parse_datetime

from .models import DataType, StorageTier
from .query import PROPERTY_NAME_RE, TAG_SEPARATOR

MAX_TEXT = 255
DATA_TYPES = frozenset(DataType.values)
TIERS = frozenset(StorageTier.values)


class ManifestError(ValueError):
    def __init__(self, where: str, message: str):
        self.where = where
        super().__init__(f"{where}: {message}")


@dataclass
class FileEntry:
    where: str
    data_type: str
    path: Path
    tier: str
    mime_type: str
    filename: str


@dataclass
class ObjectEntry:
    where: str
    ip_id: str | None
    label: str
    creation_date: datetime | None
    tags: list[str]
    properties: dict
    files: list[FileEntry] = field(default_factory=list)


@dataclass
class DatasetEntry:
    where: str
    ip_id: str | None
    label: str
    properties: dict
    objects: list[ObjectEntry] = field(default_factory=list)


def _text(value, where: str, name: str, required: bool) -> str | None:
    if value is None or value == "":
        if required:
            raise ManifestError(where, f"'{name}' is required")
        return None
    if not isinstance(value, str):
        raise ManifestError(where, f"'{name}' must be a string")
    value = value.strip()
    if required and not value:
        raise ManifestError(where, f"'{name}' is required")
    if len(value) > MAX_TEXT:
        raise ManifestError(where, f"'{name}' is longer than {MAX_TEXT} characters")
    return value or None


def _properties(value, where: str) -> dict:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise ManifestError(where, "'properties' must be an object")
    for key in value:
        if not isinstance(key, str) or not PROPERTY_NAME_RE.match(key):
            raise ManifestError(where, f"property name {key!r} is not searchable: use letters, digits, - and _")
    return value


def _tags(value, where: str) -> list[str]:
    if value in (None, ""):
        return []
    if not isinstance(value, list) or not all(isinstance(t, str) and t.strip() for t in value):
        raise ManifestError(where, "'tags' must be a list of non-empty strings")
    tags = [t.strip() for t in value]
    if any(TAG_SEPARATOR in t for t in tags):
        raise ManifestError(where, f"a tag may not contain '{TAG_SEPARATOR}'")
    return list(dict.fromkeys(tags))


def _date(value, where: str) -> datetime | None:
    if value in (None, ""):
        return None
    parsed = None
    if isinstance(value, str):
        try:
            parsed = parse_datetime(value.strip())
            if parsed is None and len(value.strip()) == 10:
                parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            parsed = None
    if parsed is None:
        raise ManifestError(where, f"'creationDate' {value!r} is not an ISO-8601 date")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt_timezone.utc)
    return parsed.astimezone(dt_timezone.utc)


@lru_cache(maxsize=65536)
def _resolve(base: str, rel: str) -> tuple[Path, bool, str]:
    # Manifests often reuse files: resolve and stat each path once.
    path = (Path(base) / rel).resolve()
    return path, path.is_file(), mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def _file(raw, where: str, base: Path) -> FileEntry:
    if not isinstance(raw, dict):
        raise ManifestError(where, "a file must be an object")
    data_type = _text(raw.get("dataType"), where, "dataType", True)
    if data_type not in DATA_TYPES:
        raise ManifestError(where, f"unknown dataType {data_type!r} (one of {', '.join(DataType.values)})")
    rel = _text(raw.get("path"), where, "path", True)
    tier = _text(raw.get("tier"), where, "tier", False) or StorageTier.ONLINE
    if tier not in TIERS:
        raise ManifestError(where, f"unknown tier {tier!r} (ONLINE or NEARLINE)")
    path, exists, guessed_mime = _resolve(str(base), rel)
    if not exists:
        raise ManifestError(f'{where} (path "{rel}")', "file not found")
    mime = _text(raw.get("mimeType"), where, "mimeType", False) or guessed_mime
    if len(mime) > 127:
        raise ManifestError(where, "'mimeType' is too long")
    # Optional extension: the name users see, when it differs from the source file's.
    filename = _text(raw.get("filename"), where, "filename", False) or path.name
    if "/" in filename or "\\" in filename or filename in (".", ".."):
        raise ManifestError(where, f"'filename' {filename!r} must be a plain file name")
    return FileEntry(where=where, data_type=data_type, path=path, tier=tier, mime_type=mime, filename=filename)


def _object(raw, where: str, base: Path) -> ObjectEntry:
    if not isinstance(raw, dict):
        raise ManifestError(where, "an object must be a JSON object")
    files = raw.get("files") or []
    if not isinstance(files, list):
        raise ManifestError(where, "'files' must be a list")
    return ObjectEntry(
        where=where,
        ip_id=_text(raw.get("ipId"), where, "ipId", False),
        label=_text(raw.get("label"), where, "label", True),
        creation_date=_date(raw.get("creationDate"), where),
        tags=_tags(raw.get("tags"), where),
        properties=_properties(raw.get("properties"), where),
        files=[_file(f, f"{where}.files[{i}]", base) for i, f in enumerate(files)],
    )


def read_json(path: Path) -> list[DatasetEntry]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(path.name, f"not valid JSON ({exc})")
    if not isinstance(data, dict) or not isinstance(data.get("datasets"), list):
        raise ManifestError(path.name, "expected {\"datasets\": [...]}")
    base = path.parent
    datasets = []
    for i, raw in enumerate(data["datasets"]):
        where = f"datasets[{i}]"
        if not isinstance(raw, dict):
            raise ManifestError(where, "a dataset must be an object")
        objects = raw.get("objects") or []
        if not isinstance(objects, list):
            raise ManifestError(where, "'objects' must be a list")
        datasets.append(DatasetEntry(
            where=where,
            ip_id=_text(raw.get("ipId"), where, "ipId", False),
            label=_text(raw.get("label"), where, "label", True),
            properties=_properties(raw.get("properties"), where),
            objects=[_object(o, f"{where}.objects[{j}]", base) for j, o in enumerate(objects)],
        ))
    return datasets


CSV_COLUMNS = {"datasetIpId", "datasetLabel", "ipId", "label", "creationDate", "tags", "properties",
               "dataType", "path", "tier", "mimeType", "filename"}


def read_csv(path: Path) -> list[DatasetEntry]:
    base = path.parent
    datasets: dict[tuple, DatasetEntry] = {}
    objects: dict[tuple, ObjectEntry] = {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            unknown = [c for c in header if c not in CSV_COLUMNS and not c.startswith("properties.")]
            if unknown:
                raise ManifestError("line 1", f"unknown column(s): {', '.join(unknown)}")
            for row in reader:
                where = f"line {reader.line_num}"
                if None in row:
                    raise ManifestError(where, "more fields than the header names")
                row = {k: (v or "").strip() for k, v in row.items()}
                ds_key = (row.get("datasetIpId") or "", row.get("datasetLabel") or "")
                if ds_key not in datasets:
                    datasets[ds_key] = DatasetEntry(
                        where=where, ip_id=_text(row.get("datasetIpId"), where, "datasetIpId", False),
                        label=_text(row.get("datasetLabel"), where, "datasetLabel", True), properties={})
                props = {}
                if row.get("properties"):
                    try:
                        props = json.loads(row["properties"])
                    except json.JSONDecodeError:
                        raise ManifestError(where, "'properties' is not a JSON object")
                for column, value in row.items():
                    if column.startswith("properties.") and value != "":
                        props[column[len("properties."):]] = value
                obj_key = ds_key + (row.get("ipId") or "", "" if row.get("ipId") else row.get("label") or "")
                if obj_key not in objects:
                    tags = [t for t in (row.get("tags") or "").split(";") if t.strip()]
                    objects[obj_key] = _object({"ipId": row.get("ipId"), "label": row.get("label"),
                                                "creationDate": row.get("creationDate"), "tags": tags,
                                                "properties": props, "files": []}, where, base)
                    datasets[ds_key].objects.append(objects[obj_key])
                if row.get("dataType") or row.get("path"):
                    objects[obj_key].files.append(_file(
                        {"dataType": row.get("dataType"), "path": row.get("path"),
                         "tier": row.get("tier"), "mimeType": row.get("mimeType"),
                         "filename": row.get("filename")}, where, base))
    except UnicodeDecodeError:
        raise ManifestError(path.name, "not UTF-8 text")
    except csv.Error as exc:
        raise ManifestError(path.name, f"not valid CSV ({exc})")
    return list(datasets.values())


def read_manifest(path: Path) -> list[DatasetEntry]:
    """Parses and validates a whole manifest (JSON, or CSV by its `.csv` suffix)."""
    path = Path(path)
    _resolve.cache_clear()  # files may have changed since the last manifest
    if not path.is_file():
        raise ManifestError(str(path), "manifest not found")
    return read_csv(path) if path.suffix.lower() == ".csv" else read_json(path)
