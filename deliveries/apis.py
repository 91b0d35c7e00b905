"""Prepared-delivery endpoints (prefix /api/v1/delivery): thin views over services/selectors."""
from __future__ import annotations

import base64
import json
from datetime import datetime, time, timezone as dt_timezone
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework import status as http
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from orders.downloads.apis import DOWNLOAD_RENDERERS
from portal.api.ranges import RangeNotSatisfiable, read_range, requested_range
from portal.api.errors import ApiError
from portal.api.views import ProjectAPIView

from . import codes, selectors, services, signing
from .models import Delivery, DeliveryArtifact, DeliveryStatus

ADMIN_ROLE_REQUIRED = "ADMIN_ROLE_REQUIRED"
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

def _iso(moment) -> str | None:
    return moment.astimezone(dt_timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if moment else None


def _cache_url(project_slug: str, artifact: DeliveryArtifact) -> str:
    path = reverse("delivery-artifact-download", kwargs={"artifactId": artifact.pk})
    return f"{settings.PORTAL_BASE_URL}{path}?scope={project_slug}"


def _artifact_body(delivery: Delivery, artifact: DeliveryArtifact, *, project_slug: str, source: str) -> dict:
    body = {
        "catalogId": delivery.catalog_id, "id": artifact.pk, "itemKey": artifact.item_key,
        "artifactType": artifact.artifact_type, "metaData": json.dumps(artifact.meta_data, sort_keys=True),
        "url": _cache_url(project_slug, artifact), "size": artifact.size,
        "hash": {"algorithm": codes.HASH_ALGORITHM, "hash": artifact.sha256}, "signature": artifact.signature,
        "isExecutable": artifact.is_executable, "arguments": artifact.arguments,
    }
    # `remote`: files straight from catalog storage; the archive exists only in the cache.
    if source == "remote" and artifact.item_key != codes.ARCHIVE_ITEM_KEY:
        if artifact.tier == "NEARLINE":
            body["url"] = ""
            body["error"] = {"errorCode": codes.DOWNLOAD_NOT_AVAILABLE,
                             "message": "NEARLINE files have no direct storage URL: use source=cache."}
        else:
            path = reverse("catalog-file-download", kwargs={"productURN": artifact.product_id,
                                                            "checksum": artifact.md5})
            body["url"] = f"{settings.PORTAL_BASE_URL}{path}?scope={project_slug}"
    return body


def delivery_body(delivery: Delivery, *, project_slug: str, source: str = "cache") -> dict:
    body = {
        "catalogId": delivery.catalog_id, "status": delivery.status, "progress": delivery.progress,
        "size": delivery.size, "expiresAt": _iso(delivery.expires_at),
        "artifacts": [_artifact_body(delivery, a, project_slug=project_slug, source=source)
                      for a in delivery.artifacts.all()] if delivery.status == DeliveryStatus.DONE else [],
    }
    if delivery.status == DeliveryStatus.ERROR:
        body["error"] = {"errorCode": delivery.error_code or codes.UNKNOWN, "message": delivery.error_message}
    return body


def _require_admin(request) -> None:
    if not request.access.is_admin:
        raise ApiError(http.HTTP_403_FORBIDDEN, ADMIN_ROLE_REQUIRED)


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
                                                 is_admin=request.access.is_admin)
        return Response(delivery_body(delivery, project_slug=project.slug, source=source))

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

    def _respond(self, request, artifactId: int, head: bool):
        project = request.access.project
        artifact = selectors.artifact_for_caller(project=project, user=request.user, artifact_id=artifactId,
                                                 is_admin=request.access.is_admin)
        path = services.delivery_dir(project_slug=project.slug, delivery_id=artifact.delivery_id) / artifact.path
        try:
            handle = open(path, "rb")
        except OSError:
            raise ApiError(http.HTTP_404_NOT_FOUND, codes.NOT_EXIST, "The artifact is no longer in the cache.")
        etag = f'"{artifact.sha256}"'
        try:
            byte_range = requested_range(range_header=request.headers.get("Range"),
                                         if_range=request.headers.get("If-Range"), etag=etag, size=artifact.size)
        except RangeNotSatisfiable:
            handle.close()
            response = HttpResponse(json.dumps({"code": "RANGE_NOT_SATISFIABLE"}), status=416,
                                    content_type="application/problem+json")
            response["Content-Range"] = f"bytes */{artifact.size}"
            return response
        if head:
            handle.close()
            response = HttpResponse(status=206 if byte_range else 200, content_type=artifact.mime_type)
        elif byte_range is None:
            response = FileResponse(handle, content_type=artifact.mime_type)
        else:
            response = StreamingHttpResponse(read_range(handle, byte_range.start, byte_range.length), status=206,
                                             content_type=artifact.mime_type)
        response["Content-Length"] = str(byte_range.length if byte_range else artifact.size)
        if byte_range:
            response["Content-Range"] = byte_range.content_range(artifact.size)
        filename = artifact.meta_data.get("filename") or Path(artifact.path).name
        response["Content-Disposition"] = content_disposition_header(True, filename)
        response["ETag"] = etag
        response["Accept-Ranges"] = "bytes"
        response["X-Checksum-SHA256"] = artifact.sha256
        response["Repr-Digest"] = f"sha-256=:{base64.b64encode(bytes.fromhex(artifact.sha256)).decode()}:"
        response["X-Signature-Ed25519"] = artifact.signature
        return response

    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.BINARY), 206: OpenApiResponse(OpenApiTypes.BINARY),
                              404: None, 416: None})
    def get(self, request, artifactId: int):
        return self._respond(request, artifactId, head=False)

    @extend_schema(exclude=True)
    def head(self, request, artifactId: int):
        return self._respond(request, artifactId, head=True)


def _parse_when(text: str) -> datetime:
    moment = parse_datetime(text)
    if moment is None:
        day = parse_date(text)
        if day is None:
            raise ValueError(text)
        moment = datetime.combine(day, time.min)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt_timezone.utc)
    return moment


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
        _require_admin(request)
        params = {k: request.query_params.get(k) for k in ("catalogId", "date", "size")}
        given = [k for k, v in params.items() if v]
        if len(given) != 1:
            raise ApiError(http.HTTP_400_BAD_REQUEST, codes.INVALID, "Give exactly one of catalogId, date, size.")
        kwargs = {}
        try:
            if params["catalogId"]:
                kwargs["catalog_id"] = params["catalogId"]
            elif params["date"]:
                kwargs["before"] = _parse_when(params["date"])
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
        _require_admin(request)
        return Response(_config_body(request.access.project))

    @extend_schema(request=DeliveryCacheConfigInputSerializer,
                   responses={200: DeliveryCacheConfigOutputSerializer, 400: None, 403: None, 409: None})
    def put(self, request):
        """ADMIN: sets the limit; a limit below the bytes held now is refused (409 DELIVERY.invalid)."""
        _require_admin(request)
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
