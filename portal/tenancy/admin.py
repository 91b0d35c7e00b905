from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db import models

from .models import ApiToken, Membership, Project, TenantModel, User
from .scope import project_scope
from .selectors import projects_administered_by
from .services import member_add


def users_administered_by(user):
    """Users the console may show this user: members of the projects they administer."""
    if user.is_superuser:
        return User.objects.all()
    return User.objects.filter(memberships__project__in=projects_administered_by(user)).distinct()


def choices_for(request, related_model):
    """The rows of `related_model` a project admin may pick or filter by (None: no limit)."""
    if request.user.is_superuser:
        return None
    if related_model is Project:
        return projects_administered_by(request.user)
    if related_model is User:
        return users_administered_by(request.user)
    if issubclass(related_model, TenantModel) or any(
            f.name == "project" and f.is_relation for f in related_model._meta.get_fields()):
        manager = getattr(related_model, "unscoped_objects", related_model._default_manager)
        return manager.filter(project__in=projects_administered_by(request.user))
    return related_model._default_manager.none()


class ProjectScopedModelForm(forms.ModelForm):
    """The admin's form of a tenant-owned row: model validation (unique constraints read the
    scoped default manager) runs in the scope of the project chosen in the form, so adding a
    row checks its uniqueness inside that project, not outside any scope."""

    def _post_clean(self):
        project = self.cleaned_data.get("project") or getattr(self.instance, "project", None)
        if project is None:
            # No project the admin may use was chosen: the form is invalid already, and without
            # a project there is no scope to check the unique name in.
            return None
        with project_scope(project):
            return super()._post_clean()


class ProjectScopedAdmin(admin.ModelAdmin):
    """Admin for tenant-owned rows: a project ADMIN who is staff sees only their projects.

    Uses the explicit unscoped manager (the admin has no request project) and filters by
    the projects the user administers; superusers see every project.
    """

    project_field = "project"
    form = ProjectScopedModelForm

    def get_queryset(self, request):
        qs = self.model.unscoped_objects.get_queryset() if hasattr(self.model, "unscoped_objects") \
            else super().get_queryset(request)
        ordering = self.get_ordering(request)
        # Autocomplete pages through this queryset too: always in a stable order.
        qs = qs.order_by(*ordering) if ordering else qs.order_by("-pk")
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
            response = super().changeform_view(request, object_id, form_url, extra_context)
            # Inline formsets query while the template renders: render inside the scope.
            if hasattr(response, "render") and not response.is_rendered:
                response.render()
            return response

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # Every choice (project, user, parent row) comes from the admin's own projects.
        allowed = choices_for(request, db_field.related_model)
        if allowed is not None:
            kwargs["queryset"] = allowed
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        allowed = choices_for(request, db_field.related_model)
        if allowed is not None:
            kwargs["queryset"] = allowed
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_list_filter(self, request):
        # A related-field filter lists every row of the related table (other projects
        # included); list only the values present in the rows this admin sees.
        scoped = []
        for entry in super().get_list_filter(request):
            if isinstance(entry, str) and "__" not in entry and isinstance(
                    self.model._meta.get_field(entry), (models.ForeignKey, models.ManyToManyField)):
                entry = (entry, admin.RelatedOnlyFieldListFilter)
            scoped.append(entry)
        return scoped

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

    def has_view_permission(self, request, obj=None):
        # Shown on a parent row the project-scoped admin already let this user open.
        return request.user.is_active and request.user.is_staff

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Superusers and staff with user permissions; a project admin sees their members only."""

    ordering = ["email"]
    list_display = ["email", "full_name", "is_staff", "is_superuser", "is_active"]
    search_fields = ["email", "full_name"]
    fieldsets = (
        (None, {"fields": ("email", "password", "full_name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)

    def get_queryset(self, request):
        return users_administered_by(request.user).order_by(*self.ordering)


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["slug", "label", "order_lifetime_days", "order_max_lifetime_days", "user_max_suborders",
                    "created_at"]
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


class MembershipInviteForm(forms.ModelForm):
    """Adding a member goes by e-mail (their account is made if they have none), never by
    picking from a list of every user of the installation."""

    email = forms.EmailField(help_text="Their account is created if they have none.")

    class Meta:
        model = Membership
        fields = ["project", "role"]


@admin.register(Membership)
class MembershipAdmin(ProjectScopedAdmin):
    list_display = ["user", "project", "role", "created_at"]
    list_filter = ["role", "project"]
    search_fields = ["user__email", "project__slug"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = MembershipInviteForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return ["email", "project", "role"] if obj is None else ["user", "project", "role", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        # A membership is re-roled here; moving it to another user or project is a new one.
        return [] if obj is None else ["user", "project", "created_at"]

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        membership = member_add(project=form.cleaned_data["project"], email=form.cleaned_data["email"],
                                role=form.cleaned_data["role"])
        obj.pk, obj.user, obj.project, obj.created_at = (membership.pk, membership.user, membership.project,
                                                         membership.created_at)

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
    readonly_fields = ["user", "project", "key_hash", "prefix", "created_at", "last_used_at"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        # Tokens are issued where their key can be shown once: the token endpoint,
        # POST /api/v1/tokens or `manage.py issue_token`.
        return False

    def get_queryset(self, request):
        qs = ApiToken.objects.select_related("user", "project")
        if request.user.is_superuser:
            return qs
        return qs.filter(project__in=projects_administered_by(request.user))

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        from django.utils import timezone

        queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
