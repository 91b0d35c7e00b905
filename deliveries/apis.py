"""Prepared-delivery endpoints (prefix /api/v1/delivery): thin views over services/selectors."""
from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Iterator

from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework import status as http
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.api.errors import ApiError, require_admin
from portal.api.renderers import DOWNLOAD_RENDERERS
from portal.api.views import ProjectAPIView
from portal.catalog import storage
from portal.dates import iso_utc, parse_when
from portal.files.responses import ranged_file_response
from portal.tenancy.scope import project_scope

from . import codes, selectors, services, signing
from .models import Delivery, DeliveryArtifact, DeliveryStatus

SOURCES = ("cache", "remote")


# --- serializers (wire names) ----------------------------------------------------------------

class DeliveryPrepareInputSerializer(serializers.Serializer):
    catalogId = serializers.CharField(max_length=255, trim_whitespace=False)
    itemType = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")

    def validate_itemType(self, value: str) -> str:
        value = value.strip()
        if value and value.upper() != "ALL" and value not in selectors.valid_item_types():
            raise serializers.ValidationError(
                f"unknown itemType {value!r}: one of {sorted(selectors.valid_item_types())} or ALL")
        return "" if value.upper() == "ALL" else value


class DeliveryHashOutputSerializer(serializers.Serializer):
    algorithm = serializers.ChoiceField(choices=["SHA256Hex", "SHA256Base64"])
    hash = serializers.CharField()


class DeliveryErrorOutputSerializer(serializers.Serializer):
    errorCode = serializers.CharField()
    message = serializers.CharField()


class DeliveryArtifactOutputSerializer(serializers.Serializer):
    catalogId = serializers.CharField()
    id = serializers.IntegerField()
    itemKey = serializers.CharField()
    artifactType = serializers.CharField()
    metaData = serializers.CharField(help_text="JSON text: filename, productId, dataType, mimeType, md5, tier.")
    url = serializers.CharField(help_text="Empty when the artifact cannot be downloaded from this source.")
    size = serializers.IntegerField()
    hash = DeliveryHashOutputSerializer()
    signature = serializers.CharField(help_text="Base64 Ed25519 signature of the raw SHA-256 digest.")
    isExecutable = serializers.BooleanField()
    arguments = serializers.CharField(allow_blank=True)
    error = DeliveryErrorOutputSerializer(required=False, help_text="Only when `url` is empty.")


class DeliveryStatusOutputSerializer(serializers.Serializer):
    catalogId = serializers.CharField()
    status = serializers.ChoiceField(choices=DeliveryStatus.values)
    progress = serializers.IntegerField()
    size = serializers.IntegerField()
    expiresAt = serializers.DateTimeField(allow_null=True)
    artifacts = DeliveryArtifactOutputSerializer(many=True)
    error = DeliveryErrorOutputSerializer(required=False, help_text="Only in status `error`.")


class DeliveryCacheConfigOutputSerializer(serializers.Serializer):
    maxCapacityInGB = serializers.FloatField(help_text="GB of 1024^3 bytes.")
    usedInGB = serializers.FloatField()
    freeInGB = serializers.FloatField()
    maxCapacityBytes = serializers.IntegerField()
    usedBytes = serializers.IntegerField()
    freeBytes = serializers.IntegerField()


class DeliveryCacheConfigInputSerializer(serializers.Serializer):
    maxCapacityInGB = serializers.FloatField(min_value=0, max_value=1024 * 1024)


class DeliveryCacheDeleteOutputSerializer(serializers.Serializer):
    deleted = serializers.ListField(child=serializers.CharField())
    freed = serializers.IntegerField(help_text="How many deliveries were freed.")


# --- bodies ----------------------------------------------------------------------------------

def error_object(code: str, message: str) -> dict:
    """The delivery protocol's `error` object (a failed preparation keeps its domain error's
    code and message on the row; an artifact with no URL says why)."""
    return {"errorCode": code, "message": message}


def _cache_url(project_slug: str, artifact: DeliveryArtifact) -> str:
    path = reverse("delivery-artifact-download", kwargs={"artifactId": artifact.pk})
    return f"{settings.PORTAL_BASE_URL}{path}?scope={project_slug}"


def _artifact_body(delivery: Delivery, artifact: DeliveryArtifact, *, project_slug: str, source: str) -> dict:
    body = {
        "catalogId": delivery.catalog_id, "id": artifact.pk, "itemKey": artifact.item_key,
        "artifactType": artifact.artifact_type, "metaData": json.dumps(artifact.shown_meta_data, sort_keys=True),
        "url": _cache_url(project_slug, artifact), "size": artifact.size,
        "hash": {"algorithm": codes.HASH_ALGORITHM, "hash": artifact.sha256}, "signature": signing.artifact_signature(artifact),
        "isExecutable": artifact.is_executable, "arguments": artifact.arguments,
    }
    # `remote`: files straight from catalog storage; the archive exists only in the cache.
    if source == "remote" and artifact.item_key != codes.ARCHIVE_ITEM_KEY:
        if artifact.tier == "NEARLINE":
            body["url"] = ""
            body["error"] = error_object(codes.DOWNLOAD_NOT_AVAILABLE,
                                        "NEARLINE files have no direct storage URL: use source=cache.")
        else:
            path = reverse("catalog-file-download", kwargs={"productURN": artifact.product_id,
                                                            "checksum": artifact.md5})
            body["url"] = f"{settings.PORTAL_BASE_URL}{path}?scope={project_slug}"
    return body


def delivery_body(delivery: Delivery, *, project_slug: str, source: str = "cache", artifacts=None) -> dict:
    """The status body; `artifacts` (the delivery's, in order) when already read."""
    if delivery.status != DeliveryStatus.DONE:
        artifacts = []
    elif artifacts is None:
        artifacts = delivery.artifacts.all()
    body = {
        "catalogId": delivery.catalog_id, "status": delivery.status, "progress": delivery.progress,
        "size": delivery.size, "expiresAt": iso_utc(delivery.expires_at, timespec="microseconds"),
        "artifacts": [_artifact_body(delivery, a, project_slug=project_slug, source=source) for a in artifacts],
    }
    if delivery.status == DeliveryStatus.ERROR:
        body["error"] = error_object(delivery.error_code or codes.UNKNOWN, delivery.error_message)
    return body


# A status body of more artifacts than this is streamed (a million files: ~400 MB of JSON).
STREAM_ABOVE = 1000
ARTIFACTS_PER_QUERY = 2000
STREAM_CHUNK = 64 * 1024


def _json(value) -> str:
    """As the API's JSONRenderer writes it (compact, UTF-8, no NaN): the same bytes."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def delivery_body_chunks(delivery: Delivery, *, project, source: str = "cache") -> Iterator[bytes]:
    """The bytes of `delivery_body` as JSON, artifacts read with a server-side cursor: memory
    stays flat at any artifact count. Runs after the view returned: re-enters the scope."""
    body = delivery_body(delivery, project_slug=project.slug, source=source, artifacts=[])
    error = body.pop("error", None)
    del body["artifacts"]
    buffer = [_json(body)[:-1], ',"artifacts":[']
    size, first = 0, True
    with project_scope(project):
        rows = () if delivery.status != DeliveryStatus.DONE else \
            selectors.delivery_artifacts(project=project, delivery=delivery).iterator(chunk_size=ARTIFACTS_PER_QUERY)
        for artifact in rows:
            text = _json(_artifact_body(delivery, artifact, project_slug=project.slug, source=source))
            buffer.append(text if first else "," + text)
            first = False
            size += len(text) + 1
            if size >= STREAM_CHUNK:
                yield "".join(buffer).encode("utf-8")
                buffer.clear()
                size = 0
    buffer.append("]")
    if error is not None:
        buffer.append(',"error":' + _json(error))
    buffer.append("}")
    yield "".join(buffer).encode("utf-8")


def _reload(project, delivery: Delivery) -> Delivery:
    return Delivery.objects.filter(project=project, pk=delivery.pk).prefetch_related("artifacts").get()


# --- views ----------------------------------------------------------------------------------

class PrepareDeliveryApi(ProjectAPIView):
    @extend_schema(request=DeliveryPrepareInputSerializer,
                   parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
                   responses={200: DeliveryStatusOutputSerializer, 403: None, 404: None})
    def post(self, request):
        """Starts preparing a package, or returns its state when prepared or under way."""
        serializer = DeliveryPrepareInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        project = request.access.project
        target = selectors.target_for_caller(project=project, user=request.user, catalog_id=data["catalogId"],
                                             is_admin=request.access.is_admin)
        delivery = services.delivery_prepare(
            project=project, user=request.user, target=target,
            item_type="" if target.kind == selectors.ORDER else data["itemType"],
            idempotency_key=(request.headers.get("Idempotency-Key") or "").strip()[:255])
        return Response(delivery_body(_reload(project, delivery), project_slug=project.slug))


class PreparedDeliveryApi(ProjectAPIView):
    @extend_schema(parameters=[OpenApiParameter("source", str, enum=list(SOURCES), required=False)],
                   responses={200: DeliveryStatusOutputSerializer, 403: None, 404: None})
    def get(self, request, catalogId: str):
        """The state of a delivery (never starts work)."""
        source = request.query_params.get("source") or "cache"
        if source not in SOURCES:
            raise ApiError(http.HTTP_400_BAD_REQUEST, codes.INVALID, "source must be `cache` or `remote`.")
        project = request.access.project
        delivery = selectors.delivery_for_caller(project=project, user=request.user, catalog_id=catalogId,
                                                 is_admin=request.access.is_admin, with_artifacts=False)
        artifacts = []
        if delivery.status == DeliveryStatus.DONE:
            artifacts = list(selectors.delivery_artifacts(project=project, delivery=delivery)[:STREAM_ABOVE + 1])
            if len(artifacts) > STREAM_ABOVE:
                return StreamingHttpResponse(delivery_body_chunks(delivery, project=project, source=source),
                                             content_type="application/json")
        return Response(delivery_body(delivery, project_slug=project.slug, source=source, artifacts=artifacts))

    @extend_schema(responses={200: DeliveryStatusOutputSerializer, 403: None, 404: None})
    def delete(self, request, catalogId: str):
        """Frees the delivery: status `delete`, its files removed from the cache."""
        project = request.access.project
        delivery = selectors.delivery_for_caller(project=project, user=request.user, catalog_id=catalogId,
                                                 is_admin=request.access.is_admin)
        delivery = services.delivery_delete(project=project, delivery=delivery)
        return Response(delivery_body(_reload(project, delivery), project_slug=project.slug))


class DeliveryArtifactDownloadApi(ProjectAPIView):
    """The bytes of an artifact in the delivery cache (Range / If-Range, ETag = its SHA-256)."""

    renderer_classes = DOWNLOAD_RENDERERS

    def _respond(self, request, artifactId: int):
        project = request.access.project
        artifact = selectors.artifact_for_caller(project=project, user=request.user, artifact_id=artifactId,
                                                 is_admin=request.access.is_admin)
        locator, key = storage.Locator(), services.artifact_key(project_slug=project.slug, artifact=artifact)
        gone = ApiError(http.HTTP_404_NOT_FOUND, codes.NOT_EXIST, "The artifact is no longer in the cache.")
        if not locator.exists(storage.DELIVERY_CACHE, key):
            raise gone
        headers = {
            "X-Checksum-SHA256": artifact.sha256,
            "Repr-Digest": f"sha-256=:{base64.b64encode(bytes.fromhex(artifact.sha256)).decode()}:",
            "X-Signature-Ed25519": signing.artifact_signature(artifact),
        }
        # A file stored only inside the package is the range of the package that holds it.
        base = artifact.archive_offset or 0

        def stream(byte_range):
            start, length = (byte_range.start, byte_range.length) if byte_range else (0, artifact.size)
            return locator.read_range(storage.DELIVERY_CACHE, key, base + start, length)

        try:
            return ranged_file_response(
                request, size=artifact.size, etag=f'"{artifact.sha256}"', content_type=artifact.mime_type,
                stream=stream,
                open_whole=(lambda: locator.open(storage.DELIVERY_CACHE, key)) if artifact.archive_offset is None
                else None,
                filename=artifact.shown_meta_data.get("filename") or Path(artifact.path).name, headers=headers)
        except OSError:  # freed meanwhile
            raise gone from None

    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.BINARY), 206: OpenApiResponse(OpenApiTypes.BINARY),
                              404: None, 416: None})
    def get(self, request, artifactId: int):
        return self._respond(request, artifactId)

    @extend_schema(exclude=True)
    def head(self, request, artifactId: int):
        return self._respond(request, artifactId)


class DeliveryCacheDeleteApi(ProjectAPIView):
    @extend_schema(parameters=[
        OpenApiParameter("catalogId", str, required=False, description="Free this delivery."),
        OpenApiParameter("date", str, required=False, description="Free done deliveries prepared before this "
                                                                  "ISO date or date-time."),
        OpenApiParameter("size", int, required=False, description="Free the oldest done deliveries until this "
                                                                  "many bytes are freed.")],
        responses={200: DeliveryCacheDeleteOutputSerializer, 400: None, 403: None, 404: None})
    def delete(self, request):
        """ADMIN: evicts deliveries from the cache by id, by age, or by bytes to free."""
        require_admin(request)
        params = {k: request.query_params.get(k) for k in ("catalogId", "date", "size")}
        given = [k for k, v in params.items() if v]
        if len(given) != 1:
            raise ApiError(http.HTTP_400_BAD_REQUEST, codes.INVALID, "Give exactly one of catalogId, date, size.")
        kwargs = {}
        try:
            if params["catalogId"]:
                kwargs["catalog_id"] = params["catalogId"]
            elif params["date"]:
                kwargs["before"] = parse_when(params["date"])
            else:
                kwargs["size"] = int(params["size"])
                if kwargs["size"] <= 0 or kwargs["size"] > 2**62:
                    raise ValueError(params["size"])
        except ValueError:
            raise ApiError(http.HTTP_400_BAD_REQUEST, codes.INVALID,
                           "date must be an ISO date or date-time; size a positive number of bytes.")
        deleted = services.cache_evict(project=request.access.project, **kwargs)
        return Response({"deleted": deleted, "freed": len(deleted)})


def _config_body(project) -> dict:
    gib = services.GIB
    used = selectors.cache_used_bytes(project=project)
    capacity = project.delivery_cache_capacity_bytes
    free = max(capacity - used, 0)
    return {"maxCapacityInGB": round(capacity / gib, 6), "usedInGB": round(used / gib, 6),
            "freeInGB": round(free / gib, 6), "maxCapacityBytes": capacity, "usedBytes": used, "freeBytes": free}


class DeliveryCacheConfigApi(ProjectAPIView):
    @extend_schema(responses={200: DeliveryCacheConfigOutputSerializer, 403: None})
    def get(self, request):
        """ADMIN: the project's delivery cache limit and use."""
        require_admin(request)
        return Response(_config_body(request.access.project))

    @extend_schema(request=DeliveryCacheConfigInputSerializer,
                   responses={200: DeliveryCacheConfigOutputSerializer, 400: None, 403: None, 409: None})
    def put(self, request):
        """ADMIN: sets the limit; a limit below the bytes held now is refused (409 DELIVERY.invalid)."""
        require_admin(request)
        serializer = DeliveryCacheConfigInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        project = request.access.project
        services.cache_config_update(project=project,
                                     max_capacity_bytes=int(serializer.validated_data["maxCapacityInGB"] * services.GIB))
        return Response(_config_body(project))


class DeliverySigningKeyApi(APIView):
    """The public key that verifies artifact signatures (PEM; no login needed)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    renderer_classes = DOWNLOAD_RENDERERS

    @extend_schema(responses={(200, "application/x-pem-file"): OpenApiTypes.STR})
    def get(self, request):
        response = HttpResponse(signing.public_key_pem(), content_type="application/x-pem-file")
        response["Cache-Control"] = "public, max-age=3600"
        return response
