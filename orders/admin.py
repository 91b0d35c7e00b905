"""Admin console for orders: scoped by project, searchable, actions that call the services."""
from django.contrib import admin, messages
from django.db import transaction

from portal.errors import DomainError
from portal.tenancy.admin import ProjectScopedAdmin, ReadOnlyTenantInline
from portal.tenancy.scope import project_scope

from . import services
from .models import DatasetTask, Order, OrderDataFile, OrderEvent, SubOrder


class DatasetTaskInline(ReadOnlyTenantInline):
    model = DatasetTask
    fields = ["dataset_label", "dataset_ip_id", "objects_count", "files_count", "files_size"]
    show_change_link = False


class OrderEventInline(ReadOnlyTenantInline):
    """The order's history: every status change and notable step, who or which task did it."""

    model = OrderEvent
    fields = ["at", "kind", "from_status", "to_status", "reason", "actor_label"]
    show_change_link = False


@admin.register(Order)
class OrderAdmin(ProjectScopedAdmin):
    list_display = ["id", "label", "owner", "project", "status", "percent_completed", "available_files_count",
                    "files_in_error_count", "waiting_for_user", "creation_date", "expiration_date"]
    list_filter = ["project", "status", "waiting_for_user", "creation_date"]
    search_fields = ["label", "owner__email", "=id"]
    list_select_related = ["owner", "project"]
    date_hierarchy = "creation_date"
    ordering = ["-creation_date"]
    inlines = [DatasetTaskInline, OrderEventInline]
    actions = ["pause_orders", "resume_orders", "expire_orders"]
    # Status and counters belong to the state machine and the workers: read-only here.
    readonly_fields = ["project", "owner", "status", "status_date", "creation_date", "percent_completed",
                       "files_in_error_count", "available_files_count", "waiting_for_user", "files_count",
                       "files_size", "built_at", "selection", "message", "idempotency_key", "created_mail_at",
                       "ready_mail_at", "reminded_at", "expiry_warned_at", "frontend_url"]

    def has_add_permission(self, request):
        return False  # orders come from baskets

    def _run(self, request, queryset, service, verb: str):
        done, refused = 0, 0
        for order in queryset.select_related("project"):
            with project_scope(order.project):
                try:
                    with transaction.atomic():
                        result = service(project=order.project, order_id=order.pk)
                    done += result is not None
                except DomainError as exc:
                    refused += 1
                    self.message_user(request, f"Order #{order.pk}: {exc.code}", messages.WARNING)
        self.message_user(request, f"{done} order(s) {verb}.", messages.SUCCESS if done else messages.INFO)

    @admin.action(description="Pause selected orders")
    def pause_orders(self, request, queryset):
        self._run(request, queryset, services.order_pause, "paused")

    @admin.action(description="Resume selected orders")
    def resume_orders(self, request, queryset):
        self._run(request, queryset, services.order_resume, "resumed")

    @admin.action(description="Expire selected orders now")
    def expire_orders(self, request, queryset):
        self._run(request, queryset, services.order_expire, "expired")


@admin.register(SubOrder)
class SubOrderAdmin(ProjectScopedAdmin):
    list_display = ["id", "order", "owner", "project", "state", "files_count", "files_size", "started_at",
                    "claimed_at", "ended_at"]
    list_filter = ["project", "state"]
    search_fields = ["=order__id", "owner__email"]
    list_select_related = ["order", "owner", "project"]
    readonly_fields = [f.name for f in SubOrder._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(OrderDataFile)
class OrderDataFileAdmin(ProjectScopedAdmin):
    list_display = ["id", "filename", "order", "project", "tier", "state", "size", "state_date"]
    list_filter = ["project", "state", "tier", "data_type"]
    search_fields = ["filename", "product_id", "checksum", "=order__id"]
    list_select_related = ["order", "project"]
    readonly_fields = [f.name for f in OrderDataFile._meta.fields]
    show_full_result_count = False  # millions of rows: no COUNT(*) on every page

    def has_add_permission(self, request):
        return False
