"""Content Hub download orders (prefix /api/downloadorders, SPEC section 3): thin views.

snake_case bodies; links are `{"href", "filename_properties", "title", "templated"}`.
"""
from __future__ import annotations

from datetime import datetime, timezone as dt_timezone

from django.db.models import Prefetch
from django.urls import reverse
from django.utils.http import http_date, parse_http_date_safe
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status as http
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from portal.api.errors import ApiError
from portal.api.views import ProjectAPIView
from portal.dates import parse_when

from .. import codes as delivery_codes
from ..models import DeliveryArtifact
from . import codes, selectors, services
from .bodies import download_order_body, link, target_body, url as _url
from .models import DownloadOrder, DownloadOrderStatus

DEFAULT_TAKE, MAX_TAKE = 25, 100


def _paging(request, total: int) -> tuple[int, int]:
    values = []
    for name, default, maximum in (("skip", 0, 10**9), ("take", DEFAULT_TAKE, MAX_TAKE)):
        raw = request.query_params.get(name)
        if raw in (None, ""):
            values.append(default)
            continue
        if len(raw) > 10 or not raw.isdigit() or (name == "take" and int(raw) < 1):
            raise ApiError(http.HTTP_400_BAD_REQUEST, codes.INVALID_REQUEST,
                           f"{name} must be a whole number{' from 1' if name == 'take' else ''}")
        values.append(min(int(raw), maximum))
    return values[0], values[1]


def _page_body(request, *, path: str, items: list, total: int, skip: int, take: int, project_slug: str) -> dict:
    def page(offset: int) -> dict:
        return link(_url(path, project_slug, skip=offset, take=take))

    return {
        "items": items,
        "total_items": total,
        "returned_items": len(items),
        "offset": skip,
        "next": page(skip + take) if skip + take < total else None,
        "previous": page(max(skip - take, 0)) if skip > 0 else None,
        "self": page(skip),
    }


def _with_archive(queryset):
    archives = DeliveryArtifact.objects.filter(item_key=delivery_codes.ARCHIVE_ITEM_KEY)
    return queryset.prefetch_related(Prefetch("delivery__artifacts", queryset=archives))


def _if_modified_since(request) -> datetime | None:
    """The header as an HTTP date or (as Content Hub's examples write it) ISO-8601; None when
    absent or unparsable (then ignored, as HTTP says)."""
    raw = (request.headers.get("If-Modified-Since") or "").strip()
    if not raw:
        return None
    seconds = parse_http_date_safe(raw)
    if seconds is not None:
        return datetime.fromtimestamp(seconds, dt_timezone.utc)
    try:
        return parse_when(raw) if len(raw) > 10 else None
    except ValueError:
        return None


# --- OpenAPI shapes of the bodies ----------------------------------------------------------------

class LinkOutputSerializer(serializers.Serializer):
    href = serializers.CharField()
    filename_properties = serializers.ListField(child=serializers.CharField())
    title = serializers.CharField(allow_blank=True)
    templated = serializers.BooleanField()


class DownloadOrderOutputSerializer(serializers.Serializer):
    order_id = serializers.IntegerField()
    name = serializers.CharField(allow_null=True)
    target_count = serializers.IntegerField()
    has_conversions = serializers.BooleanField()
    created_by = LinkOutputSerializer()
    created_on = serializers.DateTimeField()
    modified_by = LinkOutputSerializer(allow_null=True)
    modified_on = serializers.DateTimeField()
    status = serializers.ChoiceField(choices=DownloadOrderStatus.values)
    download_location = LinkOutputSerializer(allow_null=True, help_text="The zip, once Completed.")
    additional_info = serializers.CharField(allow_null=True)
    external_job_reference = LinkOutputSerializer(allow_null=True, help_text="The delivery that builds the zip.")
    targets = LinkOutputSerializer()
    culture = serializers.CharField(allow_null=True)
    self = LinkOutputSerializer()


class DownloadOrderTargetOutputSerializer(serializers.Serializer):
    entity = LinkOutputSerializer()
    entity_id = serializers.IntegerField()
    entity_urn = serializers.CharField()
    renditions = serializers.ListField(child=serializers.CharField())
    conversions = serializers.ListField(child=serializers.ListField(child=serializers.DictField()))
    individual = serializers.BooleanField()
    self = LinkOutputSerializer()


def _page_output(name: str, item) -> type:
    return type(name, (serializers.Serializer,), {
        "items": item(many=True), "total_items": serializers.IntegerField(),
        "returned_items": serializers.IntegerField(), "offset": serializers.IntegerField(),
        "next": LinkOutputSerializer(allow_null=True), "previous": LinkOutputSerializer(allow_null=True),
        "self": LinkOutputSerializer()})


DownloadOrderPageOutputSerializer = _page_output("DownloadOrderPageOutputSerializer", DownloadOrderOutputSerializer)
DownloadOrderTargetPageOutputSerializer = _page_output("DownloadOrderTargetPageOutputSerializer",
                                                       DownloadOrderTargetOutputSerializer)


# --- input -------------------------------------------------------------------------------------

class TargetSelectionInputSerializer(serializers.Serializer):
    selectionPool = serializers.CharField(max_length=40)
    subPoolId = serializers.JSONField(required=False, allow_null=True)
    definitionName = serializers.CharField(max_length=255, required=False, allow_blank=True, allow_null=True)
    entities = serializers.ListField(child=serializers.CharField(max_length=255), required=False,
                                     max_length=codes.MAX_TARGETS)


class OrderRequestInputSerializer(serializers.Serializer):
    zip_filename = serializers.CharField(max_length=255, required=False, allow_blank=True, allow_null=True)
    # {URN: {"renditions": [...], "conversions": [[{"type", "value"}]], "presets": [...]}}
    global_ = serializers.DictField(child=serializers.JSONField(), required=False, allow_null=True)
    individual = serializers.DictField(child=serializers.JSONField(), required=False, allow_null=True)

    def to_internal_value(self, data):
        if isinstance(data, dict) and "global" in data:
            data = {**data, "global_": data["global"]}
        return super().to_internal_value(data)


class DownloadOrderInputSerializer(serializers.Serializer):
    order = OrderRequestInputSerializer()
    target_selection = TargetSelectionInputSerializer()
    item_name_resolver_id = serializers.CharField(max_length=40, required=False, allow_blank=True,
                                                  allow_null=True)
    culture = serializers.CharField(max_length=20, required=False, allow_blank=True, allow_null=True)
    name = serializers.CharField(max_length=255, required=False, allow_blank=True, allow_null=True)
    download_order_type = serializers.CharField(max_length=20, required=False, allow_blank=True,
                                                allow_null=True)

    def to_request(self) -> services.DownloadOrderRequest:
        data = self.validated_data
        selection, order = data["target_selection"], data["order"]
        return services.DownloadOrderRequest(
            selection_pool=selection["selectionPool"].strip().lower(),
            entities=tuple(selection.get("entities") or ()),
            definition_name=(selection.get("definitionName") or "").strip(),
            global_config=order.get("global_") or {}, individual_config=order.get("individual") or {},
            zip_filename=(order.get("zip_filename") or "").strip(),
            item_name_resolver=(data.get("item_name_resolver_id") or "filename").strip(),
            name=(data.get("name") or "").strip(), culture=(data.get("culture") or "").strip(),
            download_order_type=(data.get("download_order_type") or "Standard").strip())


# --- views -------------------------------------------------------------------------------------

class JsonPatchMediaParser(JSONParser):
    """The reference's curl example sends its JSON body as `application/json-patch+json`."""

    media_type = "application/json-patch+json"


class DownloadOrdersApi(ProjectAPIView):
    parser_classes = [JSONParser, JsonPatchMediaParser]

    @extend_schema(operation_id="downloadorders_list",
                   parameters=[OpenApiParameter("skip", int, required=False),
                               OpenApiParameter("take", int, required=False, description="At most 100.")],
                   responses={200: DownloadOrderPageOutputSerializer, 400: None})
    def get(self, request):
        """The download orders the caller may read (own, or all for an ADMIN), newest first."""
        project = request.access.project
        queryset = selectors.download_orders_for_caller(project=project, user=request.user,
                                                        is_admin=request.access.is_admin)
        total = queryset.count()
        skip, take = _paging(request, total)
        orders = list(_with_archive(queryset)[skip:skip + take]) if skip < total else []
        items = [download_order_body(o, project_slug=project.slug) for o in orders]
        return Response(_page_body(request, path=reverse("downloadorder-list"), items=items, total=total,
                                   skip=skip, take=take, project_slug=project.slug))

    @extend_schema(operation_id="downloadorders_create", request=DownloadOrderInputSerializer,
                   parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
                   responses={201: DownloadOrderOutputSerializer, 400: None})
    def post(self, request):
        """Creates a download order: 201 with it (Pending); its zip is prepared by a worker."""
        serializer = DownloadOrderInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        project = request.access.project
        order = services.download_order_create(
            project=project, owner=request.user, request=serializer.to_request(),
            idempotency_key=(request.headers.get("Idempotency-Key") or "").strip()[:255])
        order = _with_archive(selectors.download_orders_for_caller(
            project=project, user=request.user, is_admin=True)).get(pk=order.pk)
        body = download_order_body(order, project_slug=project.slug)
        return Response(body, status=http.HTTP_201_CREATED, headers={"Location": body["self"]["href"]})


class DownloadOrderApi(ProjectAPIView):
    @extend_schema(operation_id="downloadorders_get",
                   parameters=[OpenApiParameter("If-Modified-Since", str, OpenApiParameter.HEADER,
                                                required=False)],
                   responses={200: DownloadOrderOutputSerializer, 304: None, 403: None, 404: None})
    def get(self, request, downloadOrderId: int):
        """One download order; 304 when it has not changed since `If-Modified-Since`."""
        project = request.access.project
        order = selectors.download_order_for_caller(project=project, user=request.user,
                                                    download_order_id=downloadOrderId,
                                                    is_admin=request.access.is_admin)
        last_modified = order.modified_at.replace(microsecond=0)
        headers = {"Last-Modified": http_date(last_modified.timestamp())}
        since = _if_modified_since(request)
        if since is not None and last_modified <= since:
            return Response(status=http.HTTP_304_NOT_MODIFIED, headers=headers)
        order = _with_archive(DownloadOrder.objects.filter(project=project, pk=order.pk)
                              .select_related("owner", "modified_by", "delivery")).get()
        return Response(download_order_body(order, project_slug=project.slug), headers=headers)


class DownloadOrderTargetsApi(ProjectAPIView):
    @extend_schema(operation_id="downloadorders_targets_list",
                   parameters=[OpenApiParameter("skip", int, required=False),
                               OpenApiParameter("take", int, required=False)],
                   responses={200: DownloadOrderTargetPageOutputSerializer, 403: None, 404: None})
    def get(self, request, downloadOrderId: int):
        """The order's target entities (paged)."""
        project = request.access.project
        order = selectors.download_order_for_caller(project=project, user=request.user,
                                                    download_order_id=downloadOrderId,
                                                    is_admin=request.access.is_admin)
        queryset = selectors.targets_of(project=project, download_order=order)
        total = queryset.count()
        skip, take = _paging(request, total)
        items = [target_body(t, order=order, project_slug=project.slug)
                 for t in (queryset[skip:skip + take] if skip < total else [])]
        path = reverse("downloadorder-targets", kwargs={"downloadOrderId": order.pk})
        body = _page_body(request, path=path, items=items, total=total, skip=skip, take=take,
                          project_slug=project.slug)
        return Response({"order": link(_url(reverse("downloadorder-detail", kwargs={"downloadOrderId": order.pk}),
                                            project.slug), order.name), **body})


class DownloadOrderTargetApi(ProjectAPIView):
    @extend_schema(operation_id="downloadorders_target_get",
                   responses={200: DownloadOrderTargetOutputSerializer, 403: None, 404: None})
    def get(self, request, downloadOrderId: int, entityId: str):
        """One target: its entity link, and the renditions and conversions that apply to it."""
        project = request.access.project
        order = selectors.download_order_for_caller(project=project, user=request.user,
                                                    download_order_id=downloadOrderId,
                                                    is_admin=request.access.is_admin)
        target = selectors.target_of(project=project, download_order=order, entity_id=entityId)
        return Response(target_body(target, order=order, project_slug=project.slug))
