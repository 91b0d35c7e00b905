"""REGARDS-compatible order endpoints (prefix /api/v1/rs-order): thin views over services."""
from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status as http
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from portal.api.errors import ApiError, require_admin
from portal.api.pagination import page_envelope, page_request
from portal.api.views import ProjectAPIView
from portal.dates import parse_when

from . import services
from .expiry import order_extend
from .csv import orders_csv_response
from .models import OrderStatus
from .selectors import (OrderFilters, order_check_caller, order_for_caller, order_list_for_admin,
                        order_list_for_owner, orders_page)
from .serializers import (OrderBodyOutputSerializer, OrderCreateInputSerializer, OrderExtendInputSerializer,
                          OrderPageOutputSerializer, OrderSearchInputSerializer, order_body)

PAGE_PARAMS = [OpenApiParameter("page", int, required=False), OpenApiParameter("size", int, required=False)]
ADMIN_FILTER_PARAMS = [
    OpenApiParameter("user", str, required=False, description="Owner email."),
    OpenApiParameter("status", str, required=False, description="Status(es), comma-separated."),
    OpenApiParameter("from", OpenApiTypes.DATETIME, required=False, description="Created at or after."),
    OpenApiParameter("to", OpenApiTypes.DATETIME, required=False, description="Created at or before."),
]
REFUSAL = OpenApiResponse(description='Refused by the order status: 401 {"messages": [CODE]}')


class CsvRenderer(BaseRenderer):
    """Lets `Accept: text/csv` through content negotiation; the view streams the CSV itself."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, (bytes, str)) else b""


class _CsvCapableView(ProjectAPIView):
    renderer_classes = [JSONRenderer, CsvRenderer]

    def finalize_response(self, request, response, *args, **kwargs):
        # Errors are JSON even when the client asked for CSV.
        if isinstance(response, Response) and response.status_code >= 400:
            request.accepted_renderer, request.accepted_media_type = JSONRenderer(), "application/json"
        return super().finalize_response(request, response, *args, **kwargs)


def _page_of_bodies(request, queryset) -> dict:
    page = page_request(request.query_params)
    orders, total = orders_page(queryset, offset=page.offset, size=page.size)
    is_admin = request.access.is_admin
    return page_envelope([order_body(o, is_admin=is_admin) for o in orders], total, page)


def _body_of(request, order_id: int) -> dict:
    order = order_for_caller(project=request.access.project, user=request.user, order_id=order_id,
                             is_admin=request.access.is_admin)
    return order_body(order, is_admin=request.access.is_admin)


def _check_caller(request, order_id: int) -> None:
    order_check_caller(project=request.access.project, user=request.user, order_id=order_id,
                       is_admin=request.access.is_admin)


def _parse_when(raw: str, name: str, end_of_day: bool = False):
    # A bare date covers its whole day (`to=2026-03-02` includes that day).
    try:
        return parse_when(raw, end_of_day=end_of_day)
    except ValueError:
        raise ApiError(http.HTTP_400_BAD_REQUEST, "INVALID_DATE", f"`{name}` is not an ISO-8601 date.") from None


def _filters_from_query(params) -> OrderFilters:
    statuses: list[str] = []
    for raw in params.getlist("status"):
        statuses.extend(s.strip().upper() for s in raw.split(",") if s.strip())
    unknown = [s for s in statuses if s not in OrderStatus.values]
    if unknown:
        raise ApiError(http.HTTP_400_BAD_REQUEST, "INVALID_STATUS", f"Unknown status {unknown[0][:40]!r}.")
    try:
        return OrderFilters(
            owner_email=(params.get("user") or "").strip() or None,
            statuses=tuple(statuses),
            created_after=_parse_when(params["from"], "from") if params.get("from") else None,
            created_before=_parse_when(params["to"], "to", end_of_day=True) if params.get("to") else None,
        )
    except (ValueError, OverflowError) as exc:
        raise ApiError(http.HTTP_400_BAD_REQUEST, "INVALID_DATE", "Dates must be ISO-8601.") from exc


def _filters_from_body(data) -> OrderFilters:
    form = OrderSearchInputSerializer(data=data if data is not None else {})
    form.is_valid(raise_exception=True)
    body = form.validated_data
    statuses = body.get("statuses") or {}
    dates = body.get("creationDate") or {}
    return OrderFilters(
        owner_email=(body.get("owner") or "").strip() or None,
        statuses=tuple(statuses.get("values") or ()),
        statuses_mode=statuses.get("mode") or "INCLUDE",
        created_after=dates.get("after"), created_before=dates.get("before"),
        waiting_for_user=body.get("waitingForUser"),
    )


def _validated_creation(request) -> dict:
    form = OrderCreateInputSerializer(data=request.data if request.data is not None else {})
    form.is_valid(raise_exception=True)
    return form.validated_data


class UserOrderListCreateApi(ProjectAPIView):
    @extend_schema(operation_id="user_orders_list", parameters=PAGE_PARAMS,
                   responses={200: OrderPageOutputSerializer})
    def get(self, request):
        """The caller's orders except DELETED ones, newest first."""
        qs = order_list_for_owner(project=request.access.project, owner=request.user)
        return Response(_page_of_bodies(request, qs))

    @extend_schema(operation_id="user_orders_create", request=OrderCreateInputSerializer,
                   parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
                   responses={201: OrderBodyOutputSerializer, 204: OpenApiResponse(description="No basket."),
                              422: OpenApiResponse(description="Bad label.")})
    def post(self, request):
        """Creates an order from the caller's basket (PENDING; completed in the background)."""
        data = _validated_creation(request)
        order = services.order_create(
            project=request.access.project, owner=request.user, label=data.get("label"),
            frontend_url=data.get("onSuccessUrl") or "",
            idempotency_key=(request.headers.get("Idempotency-Key") or "").strip()[:255],
        )
        if order is None:
            return Response(status=http.HTTP_204_NO_CONTENT)
        # The body as created (PENDING): the build runs in the background.
        return Response(order_body(order, is_admin=request.access.is_admin), status=http.HTTP_201_CREATED)


class UserOrderDetailApi(ProjectAPIView):
    @extend_schema(operation_id="user_orders_retrieve", responses={200: OrderBodyOutputSerializer})
    def get(self, request, orderId: int):
        return Response(_body_of(request, orderId))

    @extend_schema(operation_id="user_orders_delete", request=None,
                   responses={200: OrderBodyOutputSerializer, 401: REFUSAL})
    def delete(self, request, orderId: int):
        """DELETED (the row stays), staged files freed; only when paused or finished."""
        _check_caller(request, orderId)
        services.order_delete(project=request.access.project, order_id=orderId)
        return Response(_body_of(request, orderId))


class UserOrderPauseApi(ProjectAPIView):
    @extend_schema(operation_id="user_orders_pause", request=None,
                   responses={200: OrderBodyOutputSerializer, 401: REFUSAL})
    def put(self, request, orderId: int):
        _check_caller(request, orderId)
        services.order_pause(project=request.access.project, order_id=orderId)
        return Response(_body_of(request, orderId))


class UserOrderResumeApi(ProjectAPIView):
    @extend_schema(operation_id="user_orders_resume", request=None,
                   responses={200: OrderBodyOutputSerializer, 401: REFUSAL})
    def put(self, request, orderId: int):
        _check_caller(request, orderId)
        services.order_resume(project=request.access.project, order_id=orderId)
        return Response(_body_of(request, orderId))


class UserOrderRemoveApi(ProjectAPIView):
    @extend_schema(operation_id="user_orders_remove", request=None,
                   responses={200: OpenApiResponse(description="Removed."), 401: REFUSAL})
    def delete(self, request, orderId: int):
        """Deletes the order, its files and its cache (refused while RUNNING)."""
        _check_caller(request, orderId)
        services.order_remove(project=request.access.project, order_id=orderId)
        return Response(status=http.HTTP_200_OK)


class UserOrderRetryApi(ProjectAPIView):
    @extend_schema(operation_id="user_orders_retry", request=None,
                   responses={200: OrderBodyOutputSerializer, 401: REFUSAL})
    def put(self, request, orderId: int):
        _check_caller(request, orderId)
        services.order_retry(project=request.access.project, order_id=orderId)
        return Response(_body_of(request, orderId))


class UserOrderRestartApi(ProjectAPIView):
    @extend_schema(operation_id="user_orders_restart", request=OrderCreateInputSerializer,
                   responses={201: OrderBodyOutputSerializer, 401: REFUSAL})
    def post(self, request, orderId: int):
        """A new order with the same selection."""
        _check_caller(request, orderId)
        data = _validated_creation(request)
        order = services.order_restart(project=request.access.project, order_id=orderId,
                                       label=data.get("label"), frontend_url=data.get("onSuccessUrl") or "")
        return Response(order_body(order, is_admin=request.access.is_admin), status=http.HTTP_201_CREATED)


class UserOrderExtendApi(ProjectAPIView):
    @extend_schema(operation_id="user_orders_extend", request=OrderExtendInputSerializer,
                   responses={200: OrderBodyOutputSerializer, 401: REFUSAL,
                              422: OpenApiResponse(description="EXTENSION_BEYOND_MAXIMUM_LIFETIME")})
    def put(self, request, orderId: int):
        """Moves the expiration date to now + `days` (default: the project's order lifetime)."""
        _check_caller(request, orderId)
        form = OrderExtendInputSerializer(data=request.data if request.data is not None else {})
        form.is_valid(raise_exception=True)
        order_extend(project=request.access.project, order_id=orderId, days=form.validated_data.get("days"))
        return Response(_body_of(request, orderId))


class AdminOrderListApi(_CsvCapableView):
    @extend_schema(operation_id="orders_list", parameters=[*ADMIN_FILTER_PARAMS, *PAGE_PARAMS],
                   responses={200: OrderPageOutputSerializer, (200, "text/csv"): OpenApiTypes.STR})
    def get(self, request):
        """ADMIN: the project's orders (JSON page, or the CSV export with `Accept: text/csv`)."""
        require_admin(request)
        filters = _filters_from_query(request.query_params)
        if request.accepted_renderer.format == "csv":
            return orders_csv_response(project=request.access.project, filters=filters)
        qs = order_list_for_admin(project=request.access.project, filters=filters)
        return Response(_page_of_bodies(request, qs))


class AdminOrderSearchApi(ProjectAPIView):
    @extend_schema(operation_id="orders_search", parameters=PAGE_PARAMS, request=OrderSearchInputSerializer,
                   responses={200: OrderPageOutputSerializer})
    def post(self, request):
        require_admin(request)
        qs = order_list_for_admin(project=request.access.project, filters=_filters_from_body(request.data))
        return Response(_page_of_bodies(request, qs))


class AdminOrderCsvApi(_CsvCapableView):
    @extend_schema(operation_id="orders_csv_get", parameters=ADMIN_FILTER_PARAMS,
                   responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request):
        require_admin(request)
        return orders_csv_response(project=request.access.project,
                                   filters=_filters_from_query(request.query_params))

    @extend_schema(operation_id="orders_csv_search", request=OrderSearchInputSerializer,
                   responses={(200, "text/csv"): OpenApiTypes.STR})
    def post(self, request):
        require_admin(request)
        return orders_csv_response(project=request.access.project, filters=_filters_from_body(request.data))
