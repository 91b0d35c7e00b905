"""REGARDS basket endpoints (`/api/v1/rs-order/order/basket...`): thin views over services."""
from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.response import Response

from portal.api.errors import ApiError, RegardsMessagesOutputSerializer, flatten_errors
from portal.api.views import ProjectAPIView
from portal.catalog.query import QuerySyntaxError

from . import codes, services
from .dates import format_date, parse_selection_date
from .opensearch import dataset_request, item_request
from .selectors import basket_for_owner, dataset_selection_for_owner, item_criteria_of

# --- Output ---------------------------------------------------------------------------


class BasketFileSelectionDescriptionSerializer(serializers.Serializer):
    fileTypes = serializers.ListField(child=serializers.CharField())
    fileNamePattern = serializers.CharField(allow_null=True)


class BasketItemsSelectionOutputSerializer(serializers.Serializer):
    date = serializers.SerializerMethodField()
    openSearchRequest = serializers.SerializerMethodField()
    objectsCount = serializers.IntegerField(source="objects_count")
    filesCount = serializers.IntegerField(source="files_count")
    filesSize = serializers.IntegerField(source="files_size")
    quota = serializers.IntegerField()

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_date(self, item) -> str:
        return format_date(item.date)

    def get_openSearchRequest(self, item) -> str:
        return item_request(item_criteria_of(item))


class BasketDatasetSelectionOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    datasetIpid = serializers.CharField(source="dataset.ip_id")
    datasetLabel = serializers.CharField(source="dataset.label")
    openSearchRequest = serializers.SerializerMethodField()
    objectsCount = serializers.IntegerField(source="objects_count")
    filesCount = serializers.IntegerField(source="files_count")
    filesSize = serializers.IntegerField(source="files_size")
    quota = serializers.IntegerField()
    fileSelectionDescription = serializers.SerializerMethodField()
    itemsSelections = BasketItemsSelectionOutputSerializer(source="item_selections", many=True)

    def get_openSearchRequest(self, selection) -> str:
        return dataset_request(item_criteria_of(item) for item in selection.item_selections.all())

    @extend_schema_field(BasketFileSelectionDescriptionSerializer(allow_null=True))
    def get_fileSelectionDescription(self, selection):
        # null when no filter is set (RAWDATA files, any name), as the reference API does.
        if not selection.file_types and not selection.filename_pattern:
            return None
        return {
            "fileTypes": list(selection.file_types or ["RAWDATA"]),
            "fileNamePattern": selection.filename_pattern or None,
        }


class BasketContentOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    owner = serializers.EmailField(source="owner.email")
    quota = serializers.SerializerMethodField()
    datasetSelections = BasketDatasetSelectionOutputSerializer(source="dataset_selections", many=True)

    def get_quota(self, basket) -> int:
        return sum(selection.quota for selection in basket.dataset_selections.all())


class BasketOutputSerializer(serializers.Serializer):
    content = BasketContentOutputSerializer()
    links = serializers.ListField(child=serializers.DictField())


def basket_response(request, http_status: int = status.HTTP_200_OK) -> Response:
    """The caller's basket, freshly read (three queries), or 204 when they have none."""
    basket = basket_for_owner(project=request.access.project, owner=request.user)
    if basket is None:
        return Response(status=status.HTTP_204_NO_CONTENT)
    return Response({"content": BasketContentOutputSerializer(basket).data, "links": []}, status=http_status)


# --- Input ----------------------------------------------------------------------------

def _ip_id_field() -> serializers.CharField:
    return serializers.CharField(max_length=255)


class BasketLegacySelectionInputSerializer(serializers.Serializer):
    """Older shape: a query (all of it except `ipIds`) or just `ipIds`."""

    selectAllOpenSearchRequest = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=4000, trim_whitespace=False
    )
    ipIds = serializers.ListField(child=_ip_id_field(), required=False, allow_null=True, max_length=services.MAX_IP_IDS)


class BasketSearchParametersSerializer(serializers.Serializer):
    q = serializers.ListField(
        child=serializers.CharField(allow_blank=True, max_length=4000, trim_whitespace=False),
        required=False, allow_null=True, max_length=20,
    )

    def to_internal_value(self, data):
        # A MultiValueMap on the wire; accept a single string for `q` too.
        if isinstance(data, dict) and isinstance(data.get("q"), str):
            data = {**data, "q": [data["q"]]}
        return super().to_internal_value(data)


class BasketSelectionInputSerializer(serializers.Serializer):
    """Newer shape (BasketSelectionRequest)."""

    engineType = serializers.ChoiceField(choices=["legacy"])
    datasetUrn = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=255)
    searchParameters = BasketSearchParametersSerializer(required=False, allow_null=True)
    entityIdsToInclude = serializers.ListField(
        child=_ip_id_field(), required=False, allow_null=True, max_length=services.MAX_IP_IDS
    )
    entityIdsToExclude = serializers.ListField(
        child=_ip_id_field(), required=False, allow_null=True, max_length=services.MAX_IP_IDS
    )


NEWER_SHAPE_KEYS = {"engineType", "datasetUrn", "searchParameters", "entityIdsToInclude", "entityIdsToExclude"}


class BasketFileFiltersInputSerializer(serializers.Serializer):
    fileTypes = serializers.ListField(child=serializers.CharField(max_length=40), required=False,
                                      allow_null=True, max_length=20)
    fileNamePattern = serializers.CharField(required=False, allow_null=True, allow_blank=True,
                                            max_length=services.MAX_PATTERN_LENGTH, trim_whitespace=False)


class UnprocessableEntity(ApiError):
    def __init__(self, message: str):
        super().__init__(status.HTTP_422_UNPROCESSABLE_ENTITY, message)


def _query_problem(field: str, exc: QuerySyntaxError) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return f"{field}: invalid query at position {exc.position}: {message}"


def _body_dict(request) -> dict:
    data = request.data
    if data is None or data == "":
        return {}
    if not isinstance(data, dict):
        raise ApiError(status.HTTP_400_BAD_REQUEST, "The body must be a JSON object")
    return data


def _newer_shape_request(data: dict) -> services.SelectionRequest:
    form = BasketSelectionInputSerializer(data=data)
    if not form.is_valid():
        raise UnprocessableEntity("; ".join(flatten_errors(form.errors)))
    values = form.validated_data
    queries = [q for q in ((values.get("searchParameters") or {}).get("q") or []) if q.strip()]
    query = queries[0] if len(queries) == 1 else " AND ".join(f"({q})" for q in queries)
    return services.SelectionRequest(
        query=query,
        dataset_ip_id=values.get("datasetUrn") or None,
        included_ip_ids=tuple(dict.fromkeys(values.get("entityIdsToInclude") or ())),
        excluded_ip_ids=tuple(dict.fromkeys(values.get("entityIdsToExclude") or ())),
    )


def _older_shape_request(data: dict) -> services.SelectionRequest:
    form = BasketLegacySelectionInputSerializer(data=data)
    form.is_valid(raise_exception=True)
    query = form.validated_data.get("selectAllOpenSearchRequest") or ""
    ip_ids = form.validated_data.get("ipIds") or []
    if not query.strip() and not ip_ids:
        raise ApiError(status.HTTP_417_EXPECTATION_FAILED, codes.EMPTY_SELECTION_REQUEST)
    return services.selection_request_from_ip_ids(query=query, ip_ids=ip_ids)


# --- Views ----------------------------------------------------------------------------

MESSAGES_RESPONSE = RegardsMessagesOutputSerializer
SELECTION_ID = OpenApiParameter("datasetSelectionId", OpenApiTypes.INT, OpenApiParameter.PATH)


class BasketSelectionAddApi(ProjectAPIView):
    """POST /order/basket/selection: adds a dated selection (either body shape)."""

    @extend_schema(
        operation_id="basket_selection_add",
        request=PolymorphicProxySerializer(
            component_name="BasketSelectionRequest",
            serializers=[BasketSelectionInputSerializer, BasketLegacySelectionInputSerializer],
            resource_type_field_name=None,
        ),
        responses={
            200: BasketOutputSerializer,
            # HTTP sends no body with a 204, whatever the view puts in it.
            204: OpenApiResponse(description=codes.NO_ORDERABLE_FILE),
            400: MESSAGES_RESPONSE,
            417: OpenApiResponse(MESSAGES_RESPONSE, description="Older shape with neither query nor ipIds"),
            422: OpenApiResponse(MESSAGES_RESPONSE, description="Invalid newer shape, or a query that does not parse"),
        },
    )
    def post(self, request):
        data = _body_dict(request)
        newer = bool(NEWER_SHAPE_KEYS & data.keys())
        selection = _newer_shape_request(data) if newer else _older_shape_request(data)
        try:
            services.basket_add_selection(project=request.access.project, owner=request.user, selection=selection)
        except QuerySyntaxError as exc:
            field = "searchParameters.q" if newer else "selectAllOpenSearchRequest"
            raise UnprocessableEntity(_query_problem(field, exc)) from None
        except services.SelectionInvalid as exc:
            raise UnprocessableEntity(str(exc)) from None
        except services.NothingToOrder:
            return Response({"messages": [codes.NO_ORDERABLE_FILE]}, status=status.HTTP_204_NO_CONTENT)
        return basket_response(request)


def _dataset_selection_or_404(request, dataset_selection_id: int):
    selection = dataset_selection_for_owner(
        project=request.access.project, owner=request.user, dataset_selection_id=dataset_selection_id
    )
    if selection is None:
        raise ApiError(status.HTTP_404_NOT_FOUND, codes.DATASET_SELECTION_NOT_FOUND)
    return selection


class BasketFileFiltersUpdateApi(ProjectAPIView):
    """PUT /order/basket/dataset/{id}/updateFileFilters: file types and a filename regex."""

    @extend_schema(
        operation_id="basket_dataset_file_filters_update",
        parameters=[SELECTION_ID],
        request=BasketFileFiltersInputSerializer,
        responses={200: BasketOutputSerializer, 400: MESSAGES_RESPONSE, 404: MESSAGES_RESPONSE},
    )
    def put(self, request, datasetSelectionId: int):
        form = BasketFileFiltersInputSerializer(data=_body_dict(request))
        form.is_valid(raise_exception=True)
        selection = _dataset_selection_or_404(request, datasetSelectionId)
        try:
            services.dataset_selection_update_file_filters(
                project=request.access.project,
                dataset_selection=selection,
                file_types=form.validated_data.get("fileTypes"),
                filename_pattern=form.validated_data.get("fileNamePattern"),
            )
        except services.FileFilterInvalid as exc:
            raise ApiError(status.HTTP_400_BAD_REQUEST, str(exc)) from None
        return basket_response(request)


class BasketItemsSelectionRemoveApi(ProjectAPIView):
    """DELETE /order/basket/dataset/{id}/{itemsSelectionDate}: one dated selection."""

    @extend_schema(
        operation_id="basket_items_selection_remove",
        parameters=[
            SELECTION_ID,
            OpenApiParameter("itemsSelectionDate", OpenApiTypes.STR, OpenApiParameter.PATH,
                             description="The item selection's `date`, URL-encoded ISO-8601."),
        ],
        responses={200: BasketOutputSerializer, 400: MESSAGES_RESPONSE, 404: MESSAGES_RESPONSE},
    )
    def delete(self, request, datasetSelectionId: int, itemsSelectionDate: str):
        try:
            date = parse_selection_date(itemsSelectionDate)
        except ValueError:
            raise ApiError(status.HTTP_400_BAD_REQUEST, codes.INVALID_ITEMS_SELECTION_DATE) from None
        selection = _dataset_selection_or_404(request, datasetSelectionId)
        try:
            services.dataset_selection_remove_items(project=request.access.project, dataset_selection=selection,
                                                    date=date)
        except services.ItemsSelectionNotFound:
            raise ApiError(status.HTTP_404_NOT_FOUND, codes.ITEMS_SELECTION_NOT_FOUND) from None
        return basket_response(request)


class BasketDatasetSelectionRemoveApi(ProjectAPIView):
    """DELETE /order/basket/dataset/{id}: a whole dataset selection."""

    @extend_schema(
        operation_id="basket_dataset_selection_remove",
        parameters=[SELECTION_ID],
        responses={200: BasketOutputSerializer, 404: MESSAGES_RESPONSE},
    )
    def delete(self, request, datasetSelectionId: int):
        selection = _dataset_selection_or_404(request, datasetSelectionId)
        services.dataset_selection_remove(project=request.access.project, dataset_selection=selection)
        return basket_response(request)


class BasketApi(ProjectAPIView):
    """GET /order/basket (204 when the caller has none) and DELETE /order/basket."""

    @extend_schema(operation_id="basket_get",
                   responses={200: BasketOutputSerializer, 204: OpenApiResponse(description="No basket")})
    def get(self, request):
        return basket_response(request)

    @extend_schema(operation_id="basket_delete", responses={200: OpenApiResponse(description="Basket emptied")})
    def delete(self, request):
        services.basket_delete(project=request.access.project, owner=request.user)
        return Response(status=status.HTTP_200_OK)
