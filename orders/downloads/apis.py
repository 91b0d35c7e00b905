"""Download endpoints of orders (prefix /api/v1/rs-order): thin views over services/selectors."""
from __future__ import annotations

import base64

from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework import status as http
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from portal.api.errors import ApiError
from portal.api.pagination import page_envelope, page_output_serializer, page_request
from portal.api.renderers import DOWNLOAD_RENDERERS
from portal.files.responses import ranged_file_response
from portal.api.views import ProjectAPIView, ScopedAPIView
from portal.tenancy.access import requested_project
from portal.tenancy.models import Project

from portal.files.metalink import METALINK3_CONTENT_TYPE, METALINK4_CONTENT_TYPE

from ..models import FINISHED_STATUSES
from ..selectors import order_for_caller
from ..tokens import OrderTokenExpired, OrderTokenInvalid, order_from_token, order_token_for
from . import archive, codes, selectors, services

PAGE_PARAMS = [OpenApiParameter("page", int, required=False), OpenApiParameter("size", int, required=False)]
TOKEN_PARAMS = [OpenApiParameter("orderToken", str, required=True),
                OpenApiParameter("scope", str, required=True, description="Project slug.")]
BINARY = OpenApiResponse(OpenApiTypes.BINARY, description="The bytes (206 for a Range).")




class OrderFileItemOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    productId = serializers.CharField(source="product_id")
    checksum = serializers.CharField()
    fileSize = serializers.IntegerField(source="size")
    filename = serializers.CharField()
    mimeType = serializers.CharField(source="mime_type")
    uri = serializers.SerializerMethodField()

    def get_uri(self, order_file) -> str:
        path = reverse("orders-file", kwargs={"dataFileId": order_file.pk})
        return f"{settings.PORTAL_BASE_URL}{path}?scope={self.context['project_slug']}"


class OrderFileStateItemOutputSerializer(OrderFileItemOutputSerializer):
    state = serializers.CharField()


OrderFilePageOutputSerializer = page_output_serializer("OrderFilePageOutputSerializer",
                                                       OrderFileItemOutputSerializer)
OrderFileStatePageOutputSerializer = page_output_serializer("OrderFileStatePageOutputSerializer",
                                                            OrderFileStateItemOutputSerializer)


def _file_page(request, file_list: selectors.FileList, serializer_class) -> dict:
    page = page_request(request.query_params, default_size=50)
    items, total = file_list.page(offset=page.offset, size=page.size)
    context = {"project_slug": request.access.project.slug}
    return page_envelope(serializer_class(items, many=True, context=context).data, total, page)


class OrderFilesAvailableApi(ProjectAPIView):
    """200 finished order; 206 not finished with files to fetch; 204 not finished, none yet."""

    @extend_schema(parameters=PAGE_PARAMS, responses={
        200: OrderFilePageOutputSerializer, 206: OrderFilePageOutputSerializer, 204: None})
    def get(self, request, orderId: int):
        project = request.access.project
        order = order_for_caller(project=project, user=request.user, order_id=orderId,
                                 is_admin=request.access.is_admin)
        body = _file_page(request, selectors.files_available(project=project, order=order),
                          OrderFileItemOutputSerializer)
        if order.status in FINISHED_STATUSES:
            return Response(body, status=http.HTTP_200_OK)
        if body["metadata"]["totalElements"] == 0:
            return Response(status=http.HTTP_204_NO_CONTENT)
        return Response(body, status=http.HTTP_206_PARTIAL_CONTENT)


class OrderDatasetTaskFilesApi(ProjectAPIView):
    @extend_schema(parameters=PAGE_PARAMS, responses={200: OrderFileStatePageOutputSerializer})
    def get(self, request, orderId: int, datasetTaskId: int):
        project = request.access.project
        order = order_for_caller(project=project, user=request.user, order_id=orderId,
                                 is_admin=request.access.is_admin)
        files = selectors.dataset_task_files(project=project, order=order, dataset_task_id=datasetTaskId)
        return Response(_file_page(request, files, OrderFileStateItemOutputSerializer))


# --- single files -----------------------------------------------------------------------------

def _checksum_headers(order_file) -> dict[str, str]:
    headers = {"X-Checksum-MD5": order_file.checksum}
    if order_file.sha256:
        b64 = base64.b64encode(bytes.fromhex(order_file.sha256)).decode()
        headers.update({"X-Checksum-SHA256": order_file.sha256, "Digest": f"sha-256={b64}",
                        "Repr-Digest": f"sha-256=:{b64}:"})
    return headers


def file_download_response(request, *, project, order_file) -> HttpResponse:
    source = services.order_file_check_servable(order_file)
    return ranged_file_response(
        request, size=order_file.size, etag=services.order_file_etag(order_file), content_type=order_file.mime_type,
        stream=lambda byte_range: services.order_file_stream(project=project, order_file=order_file, source=source,
                                                             byte_range=byte_range),
        filename=order_file.filename, headers=_checksum_headers(order_file))


class OrderFileDownloadApi(ProjectAPIView):
    """The bytes of one order file, for its owner or a project ADMIN."""

    renderer_classes = DOWNLOAD_RENDERERS

    def _respond(self, request, dataFileId: int):
        project = request.access.project
        order_file = selectors.order_file_with_order(project=project, file_id=dataFileId)
        order_for_caller(project=project, user=request.user, order_id=order_file.order_id,
                         is_admin=request.access.is_admin)
        return file_download_response(request, project=project, order_file=order_file)

    @extend_schema(responses={200: BINARY, 206: BINARY, 202: None, 410: None, 422: None})
    def get(self, request, dataFileId: int):
        return self._respond(request, dataFileId)

    @extend_schema(exclude=True)
    def head(self, request, dataFileId: int):
        return self._respond(request, dataFileId)


class PublicOrderTokenAPIView(ScopedAPIView):
    """Base of the `orderToken` endpoints: no login; the project comes from `scope` (400/404),
    the order from the token (401 bad, `expired_status` for an expired order)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    renderer_classes = DOWNLOAD_RENDERERS
    expired_status = http.HTTP_410_GONE

    def resolve_project(self, request) -> Project:
        project = requested_project(request)
        token = request.query_params.get("orderToken")
        if not token:
            raise ApiError(http.HTTP_401_UNAUTHORIZED, codes.ORDER_TOKEN_REQUIRED)
        try:
            order = order_from_token(project=project, token=token)
        except OrderTokenExpired:
            raise ApiError(self.expired_status, codes.ORDER_EXPIRED, "This order has expired.")
        except OrderTokenInvalid:
            raise ApiError(http.HTTP_401_UNAUTHORIZED, codes.ORDER_TOKEN_INVALID)
        request.token_project, request.token_order, request.order_token = project, order, token
        return project


class PublicOrderFileDownloadApi(PublicOrderTokenAPIView):
    """The bytes of one file of the token's order (401 for a file of another order)."""

    def _respond(self, request, dataFileId: int):
        project, order = request.token_project, request.token_order
        order_file = selectors.order_file_with_order(project=project, file_id=dataFileId)
        if order_file.order_id != order.pk:
            raise ApiError(http.HTTP_401_UNAUTHORIZED, codes.ORDER_TOKEN_INVALID,
                           "This token is not valid for this file.")
        return file_download_response(request, project=project, order_file=order_file)

    @extend_schema(operation_id="v1_rs_order_orders_public_files_download",
                   parameters=TOKEN_PARAMS, responses={200: BINARY, 206: BINARY, 202: None, 401: None,
                                                       410: None, 422: None})
    def get(self, request, dataFileId: int):
        return self._respond(request, dataFileId)

    @extend_schema(exclude=True)
    def head(self, request, dataFileId: int):
        return self._respond(request, dataFileId)


# --- order zip ------------------------------------------------------------------------------

class UserOrderZipDownloadApi(ProjectAPIView):
    """A deterministic zip of the files AVAILABLE now, resumable with Range / If-Range."""

    renderer_classes = DOWNLOAD_RENDERERS

    def _respond(self, request, orderId: int):
        project = request.access.project
        order = order_for_caller(project=project, user=request.user, order_id=orderId,
                                 is_admin=request.access.is_admin)
        services.order_check_files_servable(order)
        range_header, if_range = request.headers.get("Range"), request.headers.get("If-Range")
        plan = None
        if range_header:
            plan = archive.order_zip_resume(project=project, order=order, etag=if_range)
        if plan is None:
            plan = archive.order_zip_prepare(project=project, order=order)
        if plan is None:
            return HttpResponse(status=http.HTTP_204_NO_CONTENT)
        return ranged_file_response(
            request, size=len(plan.layout), etag=plan.layout.etag, content_type="application/zip",
            stream=lambda byte_range: archive.order_zip_stream(project=project, order=order, plan=plan,
                                                               byte_range=byte_range),
            disposition=f"attachment;filename={plan.filename(order)}")

    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.BINARY, description="application/zip"),
                              206: BINARY, 204: None, 410: None})
    def get(self, request, orderId: int):
        return self._respond(request, orderId)

    @extend_schema(exclude=True)
    def head(self, request, orderId: int):
        return self._respond(request, orderId)


# --- metalink -------------------------------------------------------------------------------

def metalink_response(request, *, project, order, token: str):
    if order.status in services.METALINK_FORBIDDEN_STATUSES or services.order_is_expired(order):
        raise ApiError(http.HTTP_404_NOT_FOUND, codes.ORDER_NOT_DOWNLOADABLE,
                       f"Order {order.pk} has no files to download ({order.status}).")
    version = 4 if METALINK4_CONTENT_TYPE in request.headers.get("Accept", "") else 3
    content_type = METALINK4_CONTENT_TYPE if version == 4 else METALINK3_CONTENT_TYPE
    response = StreamingHttpResponse(
        services.order_metalink_chunks(project=project, order=order, token=token, version=version),
        content_type=content_type)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    extension = "meta4" if version == 4 else "metalink"
    response["Content-Disposition"] = f"attachment;filename=order_{order.pk}_{stamp}.{extension}"
    return response


METALINK_RESPONSES = {200: OpenApiResponse(OpenApiTypes.STR, description="Metalink 3 (default) or 4 XML"),
                      404: None}


class UserOrderMetalinkApi(ProjectAPIView):
    renderer_classes = DOWNLOAD_RENDERERS

    @extend_schema(responses=METALINK_RESPONSES)
    def get(self, request, orderId: int):
        project = request.access.project
        order = order_for_caller(project=project, user=request.user, order_id=orderId,
                                 is_admin=request.access.is_admin)
        return metalink_response(request, project=project, order=order, token=order_token_for(order))


class PublicOrderMetalinkApi(PublicOrderTokenAPIView):
    expired_status = http.HTTP_404_NOT_FOUND  # as for every order with nothing to download

    @extend_schema(operation_id="v1_rs_order_user_orders_metalink_download_public",
                   parameters=TOKEN_PARAMS, responses={**METALINK_RESPONSES, 401: None})
    def get(self, request):
        return metalink_response(request, project=request.token_project, order=request.token_order,
                                 token=request.order_token)
