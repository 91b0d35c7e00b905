from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from .models import ApiToken, Membership, Project, User
from .scope import project_scope
from .selectors import projects_administered_by


class ProjectScopedAdmin(admin.ModelAdmin):
    """Admin for tenant-owned rows: a project ADMIN who is staff sees only their projects.

    Uses the explicit unscoped manager (the admin has no request project) and filters by
    the projects the user administers; superusers see every project.
    """

    project_field = "project"

    def get_queryset(self, request):
        qs = self.model.unscoped_objects.get_queryset() if hasattr(self.model, "unscoped_objects") \
            else super().get_queryset(request)
        ordering = self.get_ordering(request)
        if ordering:
            qs = qs.order_by(*ordering)
        if request.user.is_superuser:
            return qs
        return qs.filter(**{f"{self.project_field}__in": projects_administered_by(request.user)})

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # Model validation (unique constraints) and reverse relations query the scoped
        # default managers: edit a row inside its own project's scope.
        obj = self.get_object(request, object_id) if object_id else None
        if obj is None:
            return super().changeform_view(request, object_id, form_url, extra_context)
        with project_scope(getattr(obj, self.project_field)):
            return super().changeform_view(request, object_id, form_url, extra_context)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "project" and not request.user.is_superuser:
            kwargs["queryset"] = projects_administered_by(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def _is_project_admin(self, request) -> bool:
        return request.user.is_active and request.user.is_staff and (
            request.user.is_superuser or projects_administered_by(request.user).exists()
        )

    def has_module_permission(self, request):
        return self._is_project_admin(request)

    def has_view_permission(self, request, obj=None):
        return self._is_project_admin(request)

    def has_change_permission(self, request, obj=None):
        return self._is_project_admin(request)

    def has_add_permission(self, request):
        return self._is_project_admin(request)

    def has_delete_permission(self, request, obj=None):
        return self._is_project_admin(request)


class ReadOnlyTenantInline(admin.TabularInline):
    """A read-only list of a row's tenant-owned children (rows built by services, not here).

    Reads through `unscoped_objects`: the formset already limits it to the parent row, which
    the admin fetched within the user's projects."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def get_queryset(self, request):
        return self.model.unscoped_objects.all()

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "full_name", "is_staff", "is_superuser", "is_active"]
    search_fields = ["email", "full_name"]
    fieldsets = (
        (None, {"fields": ("email", "password", "full_name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["slug", "label", "order_lifetime_days", "user_max_suborders", "created_at"]
    search_fields = ["slug", "label"]

    def get_queryset(self, request):
        return projects_administered_by(request.user) if not request.user.is_superuser \
            else super().get_queryset(request)

    def has_module_permission(self, request):
        user = request.user
        return user.is_active and user.is_staff and (
            user.is_superuser or projects_administered_by(user).exists())

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_change_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(Membership)
class MembershipAdmin(ProjectScopedAdmin):
    list_display = ["user", "project", "role", "created_at"]
    list_filter = ["role", "project"]
    search_fields = ["user__email", "project__slug"]

    def get_queryset(self, request):
        qs = Membership.objects.select_related("user", "project")
        if request.user.is_superuser:
            return qs
        return qs.filter(project__in=projects_administered_by(request.user))


@admin.register(ApiToken)
class ApiTokenAdmin(ProjectScopedAdmin):
    list_display = ["prefix", "user", "project", "name", "created_at", "expires_at", "revoked_at"]
    list_filter = ["project"]
    search_fields = ["user__email", "prefix", "name"]
    readonly_fields = ["key_hash", "prefix", "created_at", "last_used_at"]
    actions = ["revoke"]

    def get_queryset(self, request):
        qs = ApiToken.objects.select_related("user", "project")
        if request.user.is_superuser:
            return qs
        return qs.filter(project__in=projects_administered_by(request.user))

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        from django.utils import timezone

        queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
