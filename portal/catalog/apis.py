"""Catalog API: search (REGARDS page envelope) and file download with Range support."""
from __future__ import annotations

import base64

from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from portal.api.errors import ApiError, RegardsMessagesOutputSerializer
from portal.api.pagination import page_envelope, page_output_serializer, page_request, paginate_queryset
from portal.api.views import ProjectAPIView
from portal.files.ranges import ByteRange
from portal.files.responses import ranged_file_response
from portal.tenancy.scope import project_scope

from . import codes, selectors, storage
from .models import StorageTier
from .query import QuerySyntaxError, query_error_message

# --- serializers ----------------------------------------------------------------------------


class CatalogDataFileOutputSerializer(serializers.Serializer):
    dataType = serializers.CharField(source="data_type")
    filename = serializers.CharField()
    mimeType = serializers.CharField(source="mime_type")
    size = serializers.IntegerField()
    checksum = serializers.CharField(help_text="MD5, hex")
    sha256 = serializers.CharField()
    crc32 = serializers.IntegerField()
    tier = serializers.CharField()
    uri = serializers.SerializerMethodField(help_text="Downloads the file (ONLINE files only).")

    def get_uri(self, obj) -> str:
        request = self.context["request"]
        path = reverse("catalog-file-download", kwargs={"productURN": obj.data_object.ip_id,
                                                         "checksum": obj.checksum})
        return request.build_absolute_uri(f"{path}?scope={request.access.project.slug}")


class CatalogDatasetRefOutputSerializer(serializers.Serializer):
    ipId = serializers.CharField(source="ip_id")
    label = serializers.CharField()


class CatalogDataObjectOutputSerializer(serializers.Serializer):
    ipId = serializers.CharField(source="ip_id")
    label = serializers.CharField()
    creationDate = serializers.DateTimeField(source="creation_date")
    dataset = CatalogDatasetRefOutputSerializer()
    tags = serializers.ListField(child=serializers.CharField())
    properties = serializers.DictField()
    files = CatalogDataFileOutputSerializer(many=True)


class CatalogDatasetOutputSerializer(serializers.Serializer):
    ipId = serializers.CharField(source="ip_id")
    label = serializers.CharField()
    creationDate = serializers.DateTimeField(source="created_at")
    properties = serializers.DictField()
    objectsCount = serializers.IntegerField(source="objects_count")


CatalogDataObjectPageOutputSerializer = page_output_serializer(
    "CatalogDataObjectPageOutputSerializer", CatalogDataObjectOutputSerializer)
CatalogDatasetPageOutputSerializer = page_output_serializer(
    "CatalogDatasetPageOutputSerializer", CatalogDatasetOutputSerializer)


SEARCH_PARAMS = [
    OpenApiParameter("q", str, description="OpenSearch/Lucene query, e.g. `tags:clear AND "
                     "creationDate:[2024-01-01 TO *]` (see docs/catalog.md). Empty: everything."),
    OpenApiParameter("page", int, description="Page number, from 0."),
    OpenApiParameter("size", int, description="Page size, at most 1000 (default 20)."),
    OpenApiParameter("scope", str, description="Project slug (or the `scope` header)."),
]


def _search_page(request, search, serializer_class) -> Response:
    page = page_request(request.query_params)
    try:
        queryset = search(project=request.access.project, q=request.query_params.get("q", ""))
    except QuerySyntaxError as exc:
        # The `{"messages": [...]}` body names the problem and its position.
        raise ApiError(400, query_error_message(exc), extra={"position": exc.position})
    items, total = paginate_queryset(queryset, page)
    data = serializer_class(items, many=True, context={"request": request}).data
    return Response(page_envelope(data, total, page))


class DataObjectSearchApi(ProjectAPIView):
    @extend_schema(parameters=SEARCH_PARAMS, responses={200: CatalogDataObjectPageOutputSerializer,
                                                        400: RegardsMessagesOutputSerializer})
    def get(self, request):
        return _search_page(request, selectors.data_objects_search, CatalogDataObjectOutputSerializer)


class DatasetSearchApi(ProjectAPIView):
    @extend_schema(parameters=SEARCH_PARAMS, responses={200: CatalogDatasetPageOutputSerializer,
                                                        400: RegardsMessagesOutputSerializer})
    def get(self, request):
        return _search_page(request, selectors.datasets_search, CatalogDatasetOutputSerializer)


# --- file download --------------------------------------------------------------------------

def _stream(project, data_file, byte_range: ByteRange | None):
    # Runs after the view returned: re-enter the project's scope (S3 reads may need it).
    start, length = (byte_range.start, byte_range.length) if byte_range else (0, data_file.size)
    with project_scope(project):
        chunks = storage.Locator().read_range(StorageTier.ONLINE, data_file.location, start, length)
    yield from chunks


class DataFileDownloadApi(ProjectAPIView):
    """The bytes of one catalog file, for any member of its project.

    ONLINE files stream directly (Range, If-Range, ETag = the SHA-256). NEARLINE files are never
    read directly: 409 `NEARLINE_FILE_MUST_BE_ORDERED` (order them; the order restores them).
    """

    @extend_schema(
        parameters=[OpenApiParameter("scope", str, description="Project slug (or the `scope` header)."),
                    OpenApiParameter("Range", str, OpenApiParameter.HEADER, description="bytes=start-end")],
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY,
                   (206, "application/octet-stream"): OpenApiTypes.BINARY,
                   304: OpenApiResponse(description="Not modified (If-None-Match)"),
                   404: RegardsMessagesOutputSerializer, 409: RegardsMessagesOutputSerializer,
                   416: RegardsMessagesOutputSerializer},
    )
    def get(self, request, productURN: str, checksum: str):
        project = request.access.project
        data_file = selectors.data_file_by_product_and_checksum(project=project, product_urn=productURN,
                                                                checksum=checksum)
        if data_file is None:
            raise ApiError(404, codes.FILE_NOT_FOUND)
        if data_file.tier != StorageTier.ONLINE:
            raise ApiError(409, codes.NEARLINE_FILE_MUST_BE_ORDERED,
                           detail="This file is on the NEARLINE tier: order it to have it restored.")
        etag = f'"{data_file.sha256}"'
        headers = {
            "ETag": etag,
            "Accept-Ranges": "bytes",
            "X-Checksum-MD5": data_file.checksum,
            "X-Checksum-SHA256": data_file.sha256,
            "Repr-Digest": f"sha-256=:{base64.b64encode(bytes.fromhex(data_file.sha256)).decode()}:",
            "Cache-Control": "private, max-age=3600",
        }
        if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
            response = HttpResponse(status=304)
            for name, value in headers.items():
                response[name] = value
            return response
        try:
            storage.Locator().size(StorageTier.ONLINE, data_file.location)  # fail now (clean 404), not mid-stream
        except storage.StorageUnavailable:
            raise  # 503: the store is down, the file is fine
        except (OSError, storage.StorageError):
            raise ApiError(404, codes.FILE_UNREADABLE)
        # The whole file goes as a FileResponse: the server may use sendfile.
        return ranged_file_response(request, size=data_file.size, etag=etag, content_type=data_file.mime_type,
                                    stream=lambda byte_range: _stream(project, data_file, byte_range),
                                    open_whole=lambda: storage.open_online(data_file),
                                    filename=data_file.filename, headers=headers)
