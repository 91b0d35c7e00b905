"""Admin console: webhook endpoints and their delivery log, scoped by project; a resend action."""
from django.contrib import admin, messages

from portal.tenancy.admin import ProjectScopedAdmin, ReadOnlyTenantInline
from portal.tenancy.scope import project_scope

from . import services
from .models import WebhookAttempt, WebhookEndpoint, WebhookMessage


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ProjectScopedAdmin):
    list_display = ["id", "url", "owner", "project", "created_at", "disabled_at"]
    list_filter = ["project", ("disabled_at", admin.EmptyFieldListFilter)]
    search_fields = ["url", "owner__email", "description"]
    list_select_related = ["owner", "project"]
    # The secret is shown once, to its owner, at registration: never here.
    fields = ["project", "owner", "url", "description", "events", "created_at", "disabled_at", "disabled_reason"]
    readonly_fields = ["project", "owner", "url", "events", "created_at", "disabled_at", "disabled_reason"]

    def has_add_permission(self, request):
        return False  # endpoints are registered by their owners (API or settings page)


class WebhookAttemptInline(ReadOnlyTenantInline):
    model = WebhookAttempt
    fields = ["number", "at", "status_code", "error", "duration_ms"]


@admin.register(WebhookMessage)
class WebhookMessageAdmin(ProjectScopedAdmin):
    list_display = ["id", "event_type", "endpoint", "project", "status", "attempts", "last_status_code",
                    "next_attempt_at", "created_at"]
    list_filter = ["project", "status", "event_type"]
    search_fields = ["msg_id", "endpoint__url", "=endpoint__id"]
    list_select_related = ["endpoint", "project"]
    readonly_fields = [f.name for f in WebhookMessage._meta.fields]
    inlines = [WebhookAttemptInline]
    actions = ["resend"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Resend selected messages (same webhook-id)")
    def resend(self, request, queryset):
        sent = 0
        for message in queryset.select_related("project"):
            with project_scope(message.project):
                sent += services.webhook_message_resend(project=message.project, message_id=message.pk)
        self.message_user(request, f"{sent} message(s) queued again.", messages.SUCCESS if sent else messages.INFO)
