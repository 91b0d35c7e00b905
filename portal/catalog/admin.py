"""Admin console for the catalog, scoped by project (rows come from `load_catalog`, so the
console views and corrects them but does not add them)."""
from django.contrib import admin

from portal.tenancy.admin import ProjectScopedAdmin, ReadOnlyTenantInline

from .models import DataFile, DataObject, Dataset

# Related-field filters and choice widgets would query the scoped default managers (no
# project is active in the admin); the project filter lists only the projects visible here.
PROJECT_FILTER = ("project", admin.RelatedOnlyFieldListFilter)


class CatalogAdmin(ProjectScopedAdmin):
    def has_add_permission(self, request):
        return False

    def get_readonly_fields(self, request, obj=None):
        # Tenant foreign keys are shown, not edited: their choice widgets need a scope.
        return [*super().get_readonly_fields(request, obj), "project", *self.parent_fields]

    parent_fields: tuple = ()


@admin.register(Dataset)
class DatasetAdmin(CatalogAdmin):
    list_display = ["label", "ip_id", "project", "created_at"]
    list_filter = [PROJECT_FILTER, "created_at"]
    search_fields = ["label", "ip_id"]
    readonly_fields = ["created_at"]
    list_select_related = ["project"]


class DataFileInline(ReadOnlyTenantInline):
    model = DataFile
    fields = ["data_type", "filename", "mime_type", "size", "tier", "checksum", "sha256"]
    show_change_link = True


@admin.register(DataObject)
class DataObjectAdmin(CatalogAdmin):
    list_display = ["label", "ip_id", "dataset", "creation_date", "project"]
    list_filter = [PROJECT_FILTER, "creation_date"]
    search_fields = ["label", "ip_id", "dataset__label", "dataset__ip_id", "tags_index"]
    date_hierarchy = "creation_date"
    list_select_related = ["dataset", "project"]
    parent_fields = ("dataset",)
    inlines = [DataFileInline]


@admin.register(DataFile)
class DataFileAdmin(CatalogAdmin):
    list_display = ["filename", "data_type", "tier", "size", "mime_type", "data_object", "project"]
    list_filter = [PROJECT_FILTER, "tier", "data_type", "mime_type"]
    search_fields = ["filename", "checksum", "sha256", "data_object__ip_id", "data_object__label"]
    readonly_fields = ["size", "checksum", "sha256", "crc32", "location", "tier"]
    list_select_related = ["data_object", "project"]
    parent_fields = ("data_object",)
