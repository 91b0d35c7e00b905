"""The project settings page where a member manages their webhook endpoints."""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.db.models import Prefetch
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from portal.errors import DomainError, NotFound
from portal.pages.access import project_page

from . import events, selectors, services
from .models import WebhookMessage

RECENT_DELIVERIES = 10


class WebhookEndpointForm(forms.Form):
    url = forms.CharField(max_length=2000, label="URL", widget=forms.URLInput(attrs={"size": 60}))
    events = forms.MultipleChoiceField(choices=[(t, t) for t in events.SUBSCRIBABLE],
                                       widget=forms.CheckboxSelectMultiple, initial=list(events.SUBSCRIBABLE))
    description = forms.CharField(max_length=200, required=False)


def _settings_url(project) -> str:
    return reverse("page-webhooks", kwargs={"slug": project.slug})


@require_http_methods(["GET", "POST"])
@project_page
def webhook_settings(request, project):
    """Lists the member's endpoints with their recent deliveries; POST registers a new one and
    shows its secret on this answer only."""
    created, status = None, 200
    form = WebhookEndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            created = services.webhook_endpoint_create(
                project=project, owner=request.user, url=form.cleaned_data["url"],
                event_types=form.cleaned_data["events"], description=form.cleaned_data["description"])
            form, status = WebhookEndpointForm(), 201
        except DomainError as exc:
            form.add_error("url" if "URL" in exc.code else "events", exc.message)
    if request.method == "POST" and created is None:
        status = 400
    recent = WebhookMessage.objects.filter(project=project).order_by("-id")
    endpoints = selectors.endpoint_list_for_caller(project=project, user=request.user, is_admin=False)\
        .prefetch_related(Prefetch("messages", queryset=recent[:RECENT_DELIVERIES], to_attr="recent"))
    return render(request, "webhooks/settings.html", {
        "project": project, "form": form, "created": created, "endpoints": endpoints,
    }, status=status)


@require_POST
@project_page
def webhook_action(request, project, webhook_id: int, action: str):
    """`test` sends a ping; `delete` removes the endpoint. Only the member's own endpoints."""
    if action not in ("test", "delete"):
        raise Http404("Unknown action")
    try:
        endpoint = selectors.endpoint_for_caller(project=project, user=request.user, endpoint_id=webhook_id,
                                                 is_admin=False)
    except NotFound:
        raise Http404("Unknown webhook endpoint") from None
    if action == "test":
        services.webhook_endpoint_ping(project=project, endpoint=endpoint)
        messages.success(request, "Ping queued: its outcome appears under recent deliveries.")
    else:
        services.webhook_endpoint_delete(project=project, endpoint=endpoint)
        messages.success(request, "Webhook endpoint deleted.")
    return redirect(_settings_url(project))
