"""Admin console for download orders (status, targets, conversions, delivery, rebuild) and the
project's conversion presets (steps checked as the API checks them)."""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from portal.errors import DomainError
from portal.tenancy.admin import ProjectScopedAdmin, ProjectScopedModelForm, ReadOnlyTenantInline
from portal.tenancy.scope import project_scope

from .. import conversions
from . import services
from .models import ConversionPreset, DownloadOrder, DownloadOrderEvent, DownloadOrderTarget


class _Shown(ReadOnlyTenantInline):
    """Shown to whoever may view the order (the order admin checks the project)."""

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff


class DownloadOrderTargetInline(_Shown):
    model = DownloadOrderTarget
    fields = ["data_object", "renditions", "conversions", "individual"]


class DownloadOrderEventInline(_Shown):
    model = DownloadOrderEvent
    fields = ["at", "from_status", "to_status", "reason"]


@admin.register(DownloadOrder)
class DownloadOrderAdmin(ProjectScopedAdmin):
    list_display = ["id", "name", "project", "owner", "status", "target_count", "has_conversions", "delivery_link",
                    "created_at", "modified_at"]
    list_filter = ["project", "status", "has_conversions", "selection_pool"]
    search_fields = ["name", "owner__email", "=id", "additional_info"]
    list_select_related = ["project", "owner", "delivery"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    inlines = [DownloadOrderTargetInline, DownloadOrderEventInline]
    actions = ["rebuild_download_orders"]
    # Everything is the API's and the workers': read-only here (rebuild is the action).
    readonly_fields = ["project", "owner", "name", "culture", "download_order_type", "item_name_resolver",
                       "zip_filename", "selection_pool", "definition_name", "configuration", "has_conversions",
                       "target_count", "status", "additional_info", "delivery_link", "idempotency_key",
                       "created_at", "modified_at", "modified_by"]
    exclude = ["delivery"]

    def has_add_permission(self, request):
        return False  # download orders come from the API and the basket page

    @admin.display(description="delivery")
    def delivery_link(self, obj):
        if obj.delivery_id is None:
            return "-"
        url = reverse("admin:deliveries_delivery_change", args=[obj.delivery_id])
        return format_html('<a href="{}">{} ({})</a>', url, obj.catalog_id, obj.delivery.status)

    @admin.action(description="Rebuild the zip of the selected download orders")
    def rebuild_download_orders(self, request, queryset):
        rebuilt = 0
        for order in queryset.select_related("project"):
            with project_scope(order.project):
                try:
                    services.download_order_rebuild(project=order.project, download_order=order, user=request.user)
                    rebuilt += 1
                except DomainError as exc:
                    self.message_user(request, f"{order.pk}: {exc.code}", messages.WARNING)
        self.message_user(request, f"{rebuilt} download order(s) queued for rebuilding.",
                          messages.SUCCESS if rebuilt else messages.INFO)


class ConversionPresetForm(ProjectScopedModelForm):
    class Meta:
        model = ConversionPreset
        fields = ["project", "name", "description", "steps"]

    def clean_steps(self):
        try:
            return conversions.conversion_validate(self.cleaned_data["steps"])
        except conversions.ConversionInvalid as exc:
            raise forms.ValidationError(exc.message) from None


@admin.register(ConversionPreset)
class ConversionPresetAdmin(ProjectScopedAdmin):
    form = ConversionPresetForm
    list_display = ["name", "project", "description", "steps"]
    list_filter = ["project"]
    search_fields = ["name", "description"]
    list_select_related = ["project"]
    ordering = ["project", "name"]
