"""Admin console for deliveries: scoped by project, with a "rebuild deliveries" action."""
from django.contrib import admin, messages
from django.db import transaction

from portal.errors import DomainError
from portal.tenancy.admin import ProjectScopedAdmin, ReadOnlyTenantInline
from portal.tenancy.scope import project_scope

from . import selectors, services, signing
from .models import Delivery, DeliveryArtifact, DeliveryEvent


class DeliveryArtifactInline(ReadOnlyTenantInline):
    model = DeliveryArtifact
    fields = ["item_key", "artifact_type", "size", "sha256", "tier"]


class DeliveryEventInline(ReadOnlyTenantInline):
    """The delivery's history: status changes, when, why, who or which task."""

    model = DeliveryEvent
    fields = ["at", "from_status", "to_status", "reason", "actor_label"]


@admin.register(Delivery)
class DeliveryAdmin(ProjectScopedAdmin):
    list_display = ["id", "catalog_id", "project", "status", "progress", "size", "created_by", "created_at",
                    "done_at", "expires_at", "error_code"]
    list_filter = ["project", "status", "target_kind", "error_code"]
    search_fields = ["catalog_id", "created_by__email", "=id"]
    list_select_related = ["project", "created_by"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    inlines = [DeliveryArtifactInline, DeliveryEventInline]
    actions = ["rebuild_deliveries"]
    # Status and counters belong to the workers and services: read-only here.
    readonly_fields = ["project", "catalog_id", "target_kind", "item_type", "status", "progress", "size",
                       "bytes_to_prepare", "bytes_prepared", "expires_at", "error_code", "error_message",
                       "created_by", "generation", "claim_token", "heartbeat_at", "done_at"]

    def has_add_permission(self, request):
        return False  # deliveries come from prepare requests

    @admin.action(description="Rebuild selected deliveries")
    def rebuild_deliveries(self, request, queryset):
        rebuilt = 0
        for delivery in queryset.select_related("project"):
            with project_scope(delivery.project):
                try:
                    with transaction.atomic():
                        target = selectors.Target(delivery.target_kind, delivery.catalog_id,
                                                  selectors.order_id_of(delivery.catalog_id))
                        services.delivery_prepare(project=delivery.project, user=request.user, target=target,
                                                  item_type=delivery.item_type, force=True)
                    rebuilt += 1
                except DomainError as exc:
                    self.message_user(request, f"{delivery.catalog_id}: {exc.code}", messages.WARNING)
        self.message_user(request, f"{rebuilt} deliver{'y' if rebuilt == 1 else 'ies'} queued for rebuilding.",
                          messages.SUCCESS if rebuilt else messages.INFO)


@admin.register(DeliveryArtifact)
class DeliveryArtifactAdmin(ProjectScopedAdmin):
    list_display = ["id", "delivery", "project", "item_key", "artifact_type", "size", "tier"]
    list_filter = ["project", "artifact_type", "tier"]
    search_fields = ["item_key", "delivery__catalog_id", "sha256", "product_id"]
    list_select_related = ["delivery", "project"]
    readonly_fields = ["project", "delivery", "item_key", "artifact_type", "path", "archive_offset", "size", "sha256",
                       "artifact_signature", "is_executable", "arguments", "artifact_meta_data", "product_id", "md5",
                       "tier", "mime_type"]

    @admin.display(description="signature")
    def artifact_signature(self, obj) -> str:
        return signing.artifact_signature(obj)  # made when read (preparation stores the SHA-256)

    @admin.display(description="meta data")
    def artifact_meta_data(self, obj) -> dict:
        return obj.shown_meta_data  # a file's is made of its columns when read

    def has_add_permission(self, request):
        return False


from .downloadorders import admin as _download_orders_admin  # noqa: E402,F401 - registers its models
