"""The REGARDS catalog API that existing REGARDS clients call (SPEC section 1).

    GET /api/v1/rs-catalog/engines/legacy/{dataobjects|datasets|entities}/search
    GET /api/v1/rs-access-project/{dataobjects/search|datasets/search|search}   (+ "services": [])
    GET /api/v1/rs-catalog/engines/legacy/{dataobjects|datasets}/{urn}
    GET /api/v1/rs-catalog/engines/legacy/datasets/{datasetUrn}/dataobjects/search
    GET /api/v1/rs-dam/datasets?label=&page=&size=
    GET /api/v1/rs-catalog/downloads/{urn}/files/{checksum}   (the `uri` of every file)

One query engine: searches go through the catalog selectors and query language like
`/rs-catalog/search/...`; these views only shape REGARDS' entity JSON. The project comes from
the bearer token (REGARDS clients send no `scope`), or from `scope` as everywhere.
"""
from __future__ import annotations

from urllib.parse import urlencode

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.response import Response

from portal.api.errors import RegardsMessagesOutputSerializer
from portal.api.pagination import PageMetadataOutputSerializer, page_envelope, page_request, paginate_queryset
from portal.api.views import ProjectAPIView
from portal.tenancy.authentication import BearerTokenAuthentication, QueryTokenAuthentication

from . import selectors
from .apis import DataFileDownloadApi
from .models import DataFile, DataObject, Dataset, StorageTier
from .query import QuerySyntaxError, query_api_error

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


SEARCH_PARAMS = [
    OpenApiParameter("q", str, description="OpenSearch/Lucene query (docs/catalog.md); a property is "
                     "`name` or `properties.name`. Empty: everything."),
    OpenApiParameter("page", int, description="Page number, from 0."),
    OpenApiParameter("size", int, description="Page size, at most 1000 (default 20)."),
    OpenApiParameter("sort", str, many=True, description="`name[,ASC|DESC]`, repeatable: label, "
                     "providerId, id, creationDate or a property."),
    OpenApiParameter("facets", str, many=True, description="Term facets on `tags`, `dataset` or a property "
                     "(data object searches only; other names give none)."),
    OpenApiParameter("scope", str, description="Project slug; default: the bearer token's project."),
]
# 401 no or bad token, 403 not a member or another project's token, 404 unknown project or entity.
ERROR_RESPONSES = {code: RegardsMessagesOutputSerializer for code in (400, 401, 403, 404)}
SEARCH_RESPONSES = {200: RegardsEntityPageOutputSerializer, **ERROR_RESPONSES}
ENTITY_RESPONSES = {200: RegardsEntityItemOutputSerializer, **ERROR_RESPONSES}


# --- views --------------------------------------------------------------------------------

def _list_param(request, name: str) -> list[str]:
    """A repeatable parameter; `a,b` counts as two values for facets."""
    return [v for raw in request.query_params.getlist(name) for v in raw.split(",") if v.strip()]


class _RegardsSearchApi(ProjectAPIView):
    """Shared by every REGARDS search endpoint: page, sort, facets; the subclass picks the kind."""

    kind = "dataobjects"  # or "datasets", "entities"
    with_services = False

    def search(self, request, *, q: str, sort: list[str], dataset: Dataset | None):
        project = request.access.project
        if self.kind == "datasets":
            return selectors.datasets_search(project=project, q=q, sort=sort)
        return selectors.data_objects_search(project=project, q=q, sort=sort, dataset=dataset)

    def respond(self, request, dataset: Dataset | None = None) -> Response:
        page = page_request(request.query_params)
        q = request.query_params.get("q", "")
        sort = request.query_params.getlist("sort")
        facets: list = []
        try:
            if self.kind == "entities":
                items, total = selectors.entities_page(project=request.access.project, q=q, sort=sort,
                                                       offset=page.offset, limit=page.size)
            else:
                queryset = self.search(request, q=q, sort=sort, dataset=dataset)
                items, total = paginate_queryset(queryset, page)
                if self.kind == "dataobjects":
                    facets = selectors.data_object_facets(objects=queryset, names=_list_param(request, "facets"))
        except QuerySyntaxError as exc:
            raise query_api_error(exc, 400)
        content = [entity_item(request, item, with_services=self.with_services) for item in items]
        body = page_envelope(content, total, page, links=paging_links(request, page, total))
        body["facets"] = facets_json(facets)
        return Response(body)

    @extend_schema(parameters=SEARCH_PARAMS, responses=SEARCH_RESPONSES)
    def get(self, request):
        return self.respond(request)


class LegacyDataObjectSearchApi(_RegardsSearchApi):
    kind = "dataobjects"


class LegacyDatasetSearchApi(_RegardsSearchApi):
    kind = "datasets"


class LegacyEntitySearchApi(_RegardsSearchApi):
    kind = "entities"


class AccessProjectDataObjectSearchApi(LegacyDataObjectSearchApi):
    with_services = True


class AccessProjectDatasetSearchApi(LegacyDatasetSearchApi):
    with_services = True


class AccessProjectEntitySearchApi(LegacyEntitySearchApi):
    with_services = True


class LegacyDatasetDataObjectSearchApi(_RegardsSearchApi):
    kind = "dataobjects"

    @extend_schema(parameters=SEARCH_PARAMS, responses=SEARCH_RESPONSES)
    def get(self, request, datasetUrn: str):
        return self.respond(request, dataset=selectors.dataset_by_urn(project=request.access.project,
                                                                      urn=datasetUrn))


class LegacyDataObjectApi(ProjectAPIView):
    @extend_schema(responses=ENTITY_RESPONSES)
    def get(self, request, urn: str):
        return Response(entity_item(request, selectors.data_object_by_urn(project=request.access.project, urn=urn)))


class LegacyDatasetApi(ProjectAPIView):
    @extend_schema(responses=ENTITY_RESPONSES)
    def get(self, request, datasetUrn: str):
        return Response(entity_item(request, selectors.dataset_by_urn(project=request.access.project,
                                                                      urn=datasetUrn)))


class DamDatasetListApi(ProjectAPIView):
    """The project's datasets as rs-dam lists them (any member may read it)."""

    @extend_schema(parameters=[
        OpenApiParameter("label", str, description="Only datasets whose label contains this."),
        OpenApiParameter("page", int), OpenApiParameter("size", int),
        OpenApiParameter("scope", str, description="Project slug; default: the bearer token's project."),
    ], responses={200: RegardsDamDatasetPageOutputSerializer, **ERROR_RESPONSES})
    def get(self, request):
        page = page_request(request.query_params)
        label = request.query_params.get("label", "")[:255]
        queryset = selectors.datasets_search(project=request.access.project, q=None, label=label)
        items, total = paginate_queryset(queryset, page)
        content = [dam_dataset_item(request, dataset) for dataset in items]
        return Response(page_envelope(content, total, page, links=paging_links(request, page, total)))


class RegardsFileDownloadApi(DataFileDownloadApi):
    """A file's `uri`: the catalog file endpoint itself (same bytes, Range, ETag and access
    rules), reached with the bearer token alone or with `?token=` as REGARDS' front end sends it."""

    authentication_classes = [BearerTokenAuthentication, QueryTokenAuthentication, SessionAuthentication]
