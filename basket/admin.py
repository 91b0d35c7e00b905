"""Baskets in the admin console: browse, search and delete; they are built through the API only
(their counts are kept by the services), so rows are not added or re-parented here."""
from django.contrib import admin

from portal.tenancy.admin import ProjectScopedAdmin, ReadOnlyTenantInline

from .models import Basket, BasketDatasetSelection, BasketItemSelection

COUNT_FIELDS = ("objects_count", "files_count", "files_size", "quota")


class BasketRowAdmin(ProjectScopedAdmin):
    def has_add_permission(self, request):
        return False


class BasketItemSelectionInline(ReadOnlyTenantInline):
    model = BasketItemSelection
    fields = ("date", "open_search_request", "included_ip_ids", "excluded_ip_ids", *COUNT_FIELDS)
    show_change_link = True


@admin.register(Basket)
class BasketAdmin(BasketRowAdmin):
    list_display = ["id", "owner", "project", "created_at", "updated_at"]
    list_filter = ["project"]
    search_fields = ["owner__email"]
    list_select_related = ["owner", "project"]
    readonly_fields = ["project", "owner", "created_at", "updated_at"]


@admin.register(BasketDatasetSelection)
class BasketDatasetSelectionAdmin(BasketRowAdmin):
    list_display = ["id", "basket", "dataset", "project", *COUNT_FIELDS]
    list_filter = ["project"]
    search_fields = ["basket__owner__email", "dataset__label", "dataset__ip_id"]
    list_select_related = ["basket", "dataset", "project"]
    readonly_fields = ["project", "basket", "dataset", "file_types", "filename_pattern", *COUNT_FIELDS]
    inlines = [BasketItemSelectionInline]


@admin.register(BasketItemSelection)
class BasketItemSelectionAdmin(BasketRowAdmin):
    list_display = ["id", "dataset_selection", "date", "project", *COUNT_FIELDS]
    list_filter = ["project"]
    search_fields = ["open_search_request", "dataset_selection__basket__owner__email"]
    list_select_related = ["dataset_selection", "project"]
    date_hierarchy = "date"
    readonly_fields = ["project", "dataset_selection", "date", "open_search_request", "included_ip_ids",
                       "excluded_ip_ids", *COUNT_FIELDS]
