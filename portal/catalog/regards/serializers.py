"""REGARDS' JSON for catalog entities: the shapes REGARDS clients read (built from the catalog's
rows) and their OpenAPI description. The views in `apis.py` only pick what to shape."""
from __future__ import annotations

from urllib.parse import urlencode

from django.urls import reverse
from rest_framework import serializers

from portal.api.pagination import PageMetadataOutputSerializer

from .. import selectors
from ..models import DataFile, DataObject, Dataset, StorageTier

# REGARDS entities belong to a model; the portal has one per entity kind.
DATA_OBJECT_MODEL = "orderly_dataobject"
DATASET_MODEL = "orderly_dataset"
_DATE = serializers.DateTimeField()


# --- entity JSON ----------------------------------------------------------------------------

def _version(urn: str) -> int:
    tail = urn.rsplit(":", 1)[-1]
    return int(tail[1:]) if tail[:1] == "V" and tail[1:].isdigit() else 1


def _virtual_id(urn: str) -> str:
    head, _, tail = urn.rpartition(":")
    return f"{head}:LAST" if head and tail[:1] == "V" else urn


def file_download_uri(request, data_file: DataFile, urn: str) -> str:
    path = reverse("regards-file-download", kwargs={"productURN": urn, "checksum": data_file.checksum})
    return request.build_absolute_uri(path)


def _file_json(request, data_file: DataFile, urn: str) -> dict:
    return {
        "dataType": data_file.data_type,
        "reference": False,
        "uri": file_download_uri(request, data_file, urn),
        "mimeType": data_file.mime_type,
        "online": data_file.tier == StorageTier.ONLINE,
        "checksum": data_file.checksum,
        "digestAlgorithm": "MD5",
        "filesize": data_file.size,
        "filename": data_file.filename,
        "types": [],
    }


def data_object_entity(request, obj: DataObject) -> dict:
    files: dict[str, list] = {}
    for data_file in obj.files.all():  # prefetched by the selector
        files.setdefault(data_file.data_type, []).append(_file_json(request, data_file, obj.ip_id))
    return {
        "id": obj.ip_id,
        "virtualId": _virtual_id(obj.ip_id),
        "providerId": obj.label,
        "entityType": "DATA",
        "label": obj.label,
        "model": DATA_OBJECT_MODEL,
        "tags": [obj.dataset.ip_id, *obj.tags],
        "geometry": None,
        "normalizedGeometry": None,
        "properties": obj.properties,
        "files": files,
        "last": True,
        "version": _version(obj.ip_id),
        "type": "Feature",
    }


def dataset_entity(dataset: Dataset) -> dict:
    return {
        "id": dataset.ip_id,
        "virtualId": _virtual_id(dataset.ip_id),
        "providerId": dataset.label,
        "entityType": "DATASET",
        "label": dataset.label,
        "model": DATASET_MODEL,
        "tags": [],
        "geometry": None,
        "normalizedGeometry": None,
        "properties": dataset.properties,
        "files": {},
        "last": True,
        "version": _version(dataset.ip_id),
        "type": "Feature",
    }


def _self_link(request, entity) -> list[dict]:
    if isinstance(entity, Dataset):
        path = reverse("regards-legacy-dataset", kwargs={"datasetUrn": entity.ip_id})
    else:
        path = reverse("regards-legacy-dataobject", kwargs={"urn": entity.ip_id})
    return [{"rel": "self", "href": request.build_absolute_uri(path)}]


def entity_item(request, entity, *, with_services: bool = False) -> dict:
    content = dataset_entity(entity) if isinstance(entity, Dataset) else data_object_entity(request, entity)
    if with_services:
        content["services"] = []  # rs-access-project lists the plugin services applicable here: none
    return {"content": content, "links": _self_link(request, entity)}


def dam_dataset_item(request, dataset: Dataset) -> dict:
    """A dataset as rs-dam shows it: the entity with its model, its feature beside."""
    return {
        "content": {
            "type": "DATASET",
            "id": dataset.pk,
            "ipId": dataset.ip_id,
            "creationDate": _DATE.to_representation(dataset.created_at),
            "model": {"id": 1, "name": DATASET_MODEL, "description": "Orderly dataset", "type": "DATASET"},
            "tags": [],
            "feature": {
                "id": dataset.ip_id,
                "entityType": "DATASET",
                "label": dataset.label,
                "providerId": dataset.label,
                "model": DATASET_MODEL,
                "files": {},
                "tags": [],
                "properties": dataset.properties,
                "type": "Feature",
            },
        },
        "links": _self_link(request, dataset),
    }


def paging_links(request, page, total: int) -> list[dict]:
    """Spring HATEOAS page links: first, prev, self, next, last (prev/next only when they exist)."""
    last = max(0, (total - 1) // page.size) if total else 0

    def href(number: int) -> str:
        params = request.query_params.copy()
        params["page"], params["size"] = str(number), str(page.size)
        return request.build_absolute_uri(f"{request.path}?{urlencode(list(params.lists()), doseq=True)}")

    links = [{"rel": "first", "href": href(0)}]
    if page.page > 0:
        links.append({"rel": "prev", "href": href(min(page.page - 1, last))})
    links.append({"rel": "self", "href": href(page.page)})
    if page.page < last:
        links.append({"rel": "next", "href": href(page.page + 1)})
    links.append({"rel": "last", "href": href(last)})
    return links


def facets_json(facets: list[selectors.Facet]) -> list[dict]:
    return [{
        "type": "STRING",
        "attributeName": facet.name,
        "values": [{"word": v.word, "count": v.count,
                    "openSearchQuery": f'{facet.name}:"{_quoted(v.word)}"'} for v in facet.values],
        "others": facet.others,
    } for facet in facets]


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


# --- OpenAPI shapes -----------------------------------------------------------------------

class RegardsLinkOutputSerializer(serializers.Serializer):
    rel = serializers.CharField()
    href = serializers.CharField()


class RegardsFileOutputSerializer(serializers.Serializer):
    dataType = serializers.CharField()
    reference = serializers.BooleanField()
    uri = serializers.CharField(help_text="Downloads the file with the bearer token alone (Range supported).")
    mimeType = serializers.CharField()
    online = serializers.BooleanField(help_text="false: NEARLINE, order it to have it restored.")
    checksum = serializers.CharField()
    digestAlgorithm = serializers.CharField()
    filesize = serializers.IntegerField()
    filename = serializers.CharField()
    imageWidth = serializers.FloatField(required=False)
    imageHeight = serializers.FloatField(required=False)
    types = serializers.ListField(child=serializers.CharField())


class RegardsEntityOutputSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="URN")
    virtualId = serializers.CharField()
    providerId = serializers.CharField()
    entityType = serializers.ChoiceField(choices=["DATA", "DATASET"])
    label = serializers.CharField()
    model = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField(), help_text="Data objects: their dataset URN first.")
    geometry = serializers.JSONField(allow_null=True)
    normalizedGeometry = serializers.JSONField(allow_null=True)
    properties = serializers.DictField()
    files = serializers.DictField(child=RegardsFileOutputSerializer(many=True))
    last = serializers.BooleanField()
    version = serializers.IntegerField()
    type = serializers.CharField()
    services = serializers.ListField(child=serializers.DictField(), required=False,
                                     help_text="Only under /rs-access-project.")


class RegardsEntityItemOutputSerializer(serializers.Serializer):
    content = RegardsEntityOutputSerializer()
    links = RegardsLinkOutputSerializer(many=True)


class RegardsFacetValueOutputSerializer(serializers.Serializer):
    word = serializers.CharField()
    count = serializers.IntegerField()
    openSearchQuery = serializers.CharField()


class RegardsFacetOutputSerializer(serializers.Serializer):
    type = serializers.CharField()
    attributeName = serializers.CharField()
    values = RegardsFacetValueOutputSerializer(many=True)
    others = serializers.IntegerField()


class RegardsEntityPageOutputSerializer(serializers.Serializer):
    metadata = PageMetadataOutputSerializer()
    content = RegardsEntityItemOutputSerializer(many=True)
    links = RegardsLinkOutputSerializer(many=True)
    facets = RegardsFacetOutputSerializer(many=True)


class RegardsDamModelOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    type = serializers.CharField()


class RegardsDamFeatureOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    entityType = serializers.CharField()
    label = serializers.CharField()
    providerId = serializers.CharField()
    model = serializers.CharField()
    files = serializers.DictField()
    tags = serializers.ListField(child=serializers.CharField())
    properties = serializers.DictField()
    type = serializers.CharField()


class RegardsDamDatasetOutputSerializer(serializers.Serializer):
    type = serializers.CharField()
    id = serializers.IntegerField()
    ipId = serializers.CharField()
    creationDate = serializers.DateTimeField()
    model = RegardsDamModelOutputSerializer()
    tags = serializers.ListField(child=serializers.CharField())
    feature = RegardsDamFeatureOutputSerializer()


class RegardsDamDatasetItemOutputSerializer(serializers.Serializer):
    content = RegardsDamDatasetOutputSerializer()
    links = RegardsLinkOutputSerializer(many=True)


class RegardsDamDatasetPageOutputSerializer(serializers.Serializer):
    metadata = PageMetadataOutputSerializer()
    content = RegardsDamDatasetItemOutputSerializer(many=True)
    links = RegardsLinkOutputSerializer(many=True)
