"""Reads of webhooks for a caller: their own endpoints, or all of the project for an ADMIN."""
from __future__ import annotations

from django.db.models import QuerySet

from portal.errors import NotFound
from portal.tenancy.models import Project

from .models import WebhookEndpoint, WebhookMessage

WEBHOOK_NOT_FOUND = "WEBHOOK_NOT_FOUND"


def endpoint_list_for_caller(*, project: Project, user, is_admin: bool) -> QuerySet[WebhookEndpoint]:
    endpoints = WebhookEndpoint.objects.filter(project=project).select_related("owner").order_by("id")
    return endpoints if is_admin else endpoints.filter(owner=user)


def endpoint_for_caller(*, project: Project, user, endpoint_id: int, is_admin: bool) -> WebhookEndpoint:
    """The caller's endpoint (any of the project for an ADMIN); others look unknown (404)."""
    endpoint = endpoint_list_for_caller(project=project, user=user, is_admin=is_admin)\
        .filter(pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound(WEBHOOK_NOT_FOUND, f"No webhook endpoint {endpoint_id}.")
    return endpoint


def message_log(*, project: Project, endpoint: WebhookEndpoint) -> QuerySet[WebhookMessage]:
    """The endpoint's messages, newest first (the delivery log)."""
    return WebhookMessage.objects.filter(project=project, endpoint=endpoint).order_by("-id")
