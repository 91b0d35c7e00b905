"""`GET /user/orders/{orderId}/events`: the Server-Sent Events view over `stream`."""
from __future__ import annotations

import json

from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.renderers import BaseRenderer, JSONRenderer

from portal.api.connection import client_gone_check
from portal.api.errors import ApiError
from portal.api.views import ProjectAPIView

from ..selectors import order_check_caller
from .stream import STREAM_SLOTS, order_event_stream, parse_since


# A client refused for lack of a free stream slot is told to come back after this long.
STREAMS_RETRY_AFTER_SECONDS = 5
# One Server-Sent Event as the schema describes each event of the stream.
SSE_EVENT_SCHEMA = {"type": "object", "properties": {
    "event": {"type": "string", "enum": ["progress", "files", "end"]}, "data": {"type": "string"},
    "id": {"type": "string"}, "retry": {"type": "integer"}}}


class EventStreamRenderer(BaseRenderer):
    """Lets `Accept: text/event-stream` through negotiation (the view streams the body itself)."""

    media_type = "text/event-stream"
    format = "sse"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return json.dumps(data).encode() if data is not None else b""


class UserOrderEventsApi(ProjectAPIView):
    """Server-Sent Events of one order's progress (owner or project ADMIN)."""

    renderer_classes = [JSONRenderer, EventStreamRenderer]

    def finalize_response(self, request, response, *args, **kwargs):
        # Errors are JSON whatever the client accepts.
        if not isinstance(response, StreamingHttpResponse) and response.status_code >= 400:
            request.accepted_renderer, request.accepted_media_type = JSONRenderer(), "application/json"
        return super().finalize_response(request, response, *args, **kwargs)

    @extend_schema(
        operation_id="user_orders_events",
        parameters=[OpenApiParameter("since", str, required=False,
                                     description="Epoch milliseconds: push files made available since then."),
                    OpenApiParameter("Last-Event-ID", str, OpenApiParameter.HEADER, required=False)],
        responses={(200, "text/event-stream"): OpenApiResponse(
            SSE_EVENT_SCHEMA, description="`progress`, `files` and `end` events (JSON data)."),
                   403: None, 404: None,
                   503: OpenApiResponse(description="Too many streams open (with `Retry-After`).")},
    )
    def get(self, request, orderId: int):
        project = request.access.project
        order_check_caller(project=project, user=request.user, order_id=orderId, is_admin=request.access.is_admin)
        since = parse_since(request.headers.get("Last-Event-ID")) or parse_since(request.query_params.get("since"))
        if not STREAM_SLOTS.acquire():
            refused = ApiError(503, "TOO_MANY_EVENT_STREAMS", "Too many live streams are open; try again later.")
            refused.wait = STREAMS_RETRY_AFTER_SECONDS  # sent as Retry-After
            raise refused
        stream = order_event_stream(project=project, order_id=orderId, is_admin=request.access.is_admin,
                                    base_url=request.build_absolute_uri("/").rstrip("/"), since=since,
                                    client_gone=client_gone_check(request))
        response = StreamingHttpResponse(stream, content_type="text/event-stream; charset=utf-8")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx: pass events through at once
        # Released when the server closes the response (finished, client gone, or never read).
        response._resource_closers.append(STREAM_SLOTS.release)
        return response
