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

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.authentication import SessionAuthentication
from rest_framework.response import Response

from portal.api.errors import ApiError, RegardsMessagesOutputSerializer
from portal.api.pagination import page_envelope, page_request, paginate_queryset
from portal.api.views import ProjectAPIView
from portal.tenancy.authentication import BearerTokenAuthentication, QueryTokenAuthentication

from .. import selectors
from ..apis import DataFileDownloadApi
from ..models import Dataset
from ..query import QuerySyntaxError, query_error_message
from .serializers import (
    RegardsDamDatasetPageOutputSerializer, RegardsEntityItemOutputSerializer, RegardsEntityPageOutputSerializer,
    dam_dataset_item, entity_item, facets_json, paging_links,
)

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
            raise ApiError(400, query_error_message(exc), extra={"position": exc.position})
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
