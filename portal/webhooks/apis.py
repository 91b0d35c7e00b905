"""`/api/v1/webhooks`: a member's callbacks in a project (errors are RFC 9457 problems)."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status as http
from rest_framework.response import Response

from portal.api.pagination import page_envelope, page_output_serializer, page_request, paginate_queryset
from portal.api.views import ProjectAPIView
from portal.dates import iso_utc

from . import events, selectors, services
from .models import WebhookEndpoint, WebhookMessage


class WebhookCreateInputSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=2000)
    events = serializers.ListField(child=serializers.CharField(max_length=40), min_length=1, max_length=20)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class WebhookEndpointOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField()
    description = serializers.CharField()
    events = serializers.ListField(child=serializers.ChoiceField(choices=events.SUBSCRIBABLE))
    owner = serializers.EmailField()
    createdAt = serializers.CharField()
    enabled = serializers.BooleanField()
    disabledAt = serializers.CharField(allow_null=True)
    disabledReason = serializers.CharField(allow_null=True)


class WebhookEndpointCreatedOutputSerializer(WebhookEndpointOutputSerializer):
    secret = serializers.CharField(help_text="The signing secret: shown only in this answer.")


class WebhookDeliveryOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    msgId = serializers.CharField(help_text="The webhook-id header of every attempt.")
    eventType = serializers.CharField()
    status = serializers.CharField()
    statusCode = serializers.IntegerField(allow_null=True, help_text="HTTP status of the last attempt.")
    attempts = serializers.IntegerField()
    nextAttempt = serializers.CharField(allow_null=True)
    lastError = serializers.CharField(allow_null=True)
    createdAt = serializers.CharField()
    deliveredAt = serializers.CharField(allow_null=True)


WebhookEndpointPageOutputSerializer = page_output_serializer("WebhookEndpointPageOutputSerializer",
                                                             WebhookEndpointOutputSerializer)
WebhookDeliveryPageOutputSerializer = page_output_serializer("WebhookDeliveryPageOutputSerializer",
                                                             WebhookDeliveryOutputSerializer)
PAGE_PARAMS = [OpenApiParameter("page", int, required=False), OpenApiParameter("size", int, required=False)]


def endpoint_body(endpoint: WebhookEndpoint) -> dict:
    return {"id": endpoint.pk, "url": endpoint.url, "description": endpoint.description,
            "events": list(endpoint.events or []), "owner": endpoint.owner.email,
            "createdAt": iso_utc(endpoint.created_at), "enabled": endpoint.is_active,
            "disabledAt": iso_utc(endpoint.disabled_at), "disabledReason": endpoint.disabled_reason or None}


def delivery_body(message: WebhookMessage) -> dict:
    return {"id": message.pk, "msgId": message.msg_id, "eventType": message.event_type, "status": message.status,
            "statusCode": message.last_status_code, "attempts": message.attempts,
            "nextAttempt": iso_utc(message.next_attempt_at) if message.status == "pending" else None,
            "lastError": message.last_error or None, "createdAt": iso_utc(message.created_at),
            "deliveredAt": iso_utc(message.delivered_at)}


def _endpoint(request, webhook_id: int) -> WebhookEndpoint:
    return selectors.endpoint_for_caller(project=request.access.project, user=request.user,
                                         endpoint_id=webhook_id, is_admin=request.access.is_admin)


class WebhookListCreateApi(ProjectAPIView):
    @extend_schema(operation_id="webhooks_list", parameters=PAGE_PARAMS,
                   responses={200: WebhookEndpointPageOutputSerializer})
    def get(self, request):
        """The caller's endpoints in the project (every endpoint of the project for an ADMIN)."""
        queryset = selectors.endpoint_list_for_caller(project=request.access.project, user=request.user,
                                                      is_admin=request.access.is_admin)
        page = page_request(request.query_params)
        endpoints, total = paginate_queryset(queryset, page)
        return Response(page_envelope([endpoint_body(e) for e in endpoints], total, page))

    @extend_schema(operation_id="webhooks_create", request=WebhookCreateInputSerializer,
                   responses={201: WebhookEndpointCreatedOutputSerializer,
                              400: OpenApiResponse(description="Bad URL (WEBHOOK_URL_REFUSED) or event type.")})
    def post(self, request):
        """Registers a callback; the answer shows its signing secret, once."""
        form = WebhookCreateInputSerializer(data=request.data if request.data is not None else {})
        form.is_valid(raise_exception=True)
        data = form.validated_data
        endpoint = services.webhook_endpoint_create(project=request.access.project, owner=request.user,
                                                    url=data["url"], event_types=data["events"],
                                                    description=data.get("description", ""))
        return Response({**endpoint_body(endpoint), "secret": endpoint.secret}, status=http.HTTP_201_CREATED)


class WebhookDetailApi(ProjectAPIView):
    @extend_schema(operation_id="webhooks_retrieve", responses={200: WebhookEndpointOutputSerializer})
    def get(self, request, webhookId: int):
        return Response(endpoint_body(_endpoint(request, webhookId)))

    @extend_schema(operation_id="webhooks_delete", request=None, responses={204: None})
    def delete(self, request, webhookId: int):
        services.webhook_endpoint_delete(project=request.access.project, endpoint=_endpoint(request, webhookId))
        return Response(status=http.HTTP_204_NO_CONTENT)


class WebhookTestApi(ProjectAPIView):
    @extend_schema(operation_id="webhooks_test", request=None, responses={202: WebhookDeliveryOutputSerializer})
    def post(self, request, webhookId: int):
        """Sends a `ping` event to the endpoint (see its delivery log for the outcome)."""
        message = services.webhook_endpoint_ping(project=request.access.project,
                                                 endpoint=_endpoint(request, webhookId))
        return Response(delivery_body(message), status=http.HTTP_202_ACCEPTED)


class WebhookDeliveriesApi(ProjectAPIView):
    @extend_schema(operation_id="webhooks_deliveries", parameters=PAGE_PARAMS,
                   responses={200: WebhookDeliveryPageOutputSerializer})
    def get(self, request, webhookId: int):
        """The endpoint's delivery log, newest first: status code, attempts, next attempt, last error."""
        endpoint = _endpoint(request, webhookId)
        page = page_request(request.query_params)
        messages, total = paginate_queryset(
            selectors.message_log(project=request.access.project, endpoint=endpoint), page)
        return Response(page_envelope([delivery_body(m) for m in messages], total, page))
