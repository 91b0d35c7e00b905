import hashlib

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.utils import timezone

from .scope import require_active_project

GIB = 1024**3
MIB = 1024**2


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra):
        if not email:
            raise ValueError("An email is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person, identified by email. What they may see comes from their memberships."""

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"

    def __str__(self) -> str:
        return self.email


class Project(models.Model):
    """A tenant. Every tenant-owned row points to exactly one project."""

    slug = models.SlugField(max_length=50, unique=True)
    label = models.CharField(max_length=200)
    order_lifetime_days = models.PositiveIntegerField(default=3)
    order_max_lifetime_days = models.PositiveIntegerField(
        default=30, help_text="Maximum lifetime of an order: `extend` never moves its expiry past creation + this."
    )
    suborder_max_files = models.PositiveIntegerField(default=5000)
    suborder_max_bytes = models.PositiveBigIntegerField(default=100 * MIB)
    user_max_suborders = models.PositiveIntegerField(
        default=2, help_text="Sub-orders a user may have staged or waiting for download at once."
    )
    delivery_cache_capacity_bytes = models.PositiveBigIntegerField(default=10 * GIB)
    delivery_lifetime_days = models.PositiveIntegerField(default=7)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Role(models.TextChoices):
    REGISTERED_USER = "REGISTERED_USER"
    ADMIN = "ADMIN"


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.REGISTERED_USER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} ({self.role})"

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


class ApiToken(models.Model):
    """A bearer token for one user in one project. Only its SHA-256 is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="api_tokens")
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12, help_text="First characters, to recognise a token.")
    name = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user} in {self.project})"

    @staticmethod
    def hash_key(raw_key: str) -> str:
        # The key carries 256 random bits, so a fast hash cannot be brute-forced.
        return hashlib.sha256(raw_key.encode()).hexdigest()

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()


class ProjectScopedManager(models.Manager):
    """Default manager of tenant-owned models: the active project's rows, or an error.

    Outside a scope it raises ScopeError instead of returning every tenant's rows.
    """

    def get_queryset(self):
        project = require_active_project()
        return super().get_queryset().filter(project_id=project.pk)


class TenantModel(models.Model):
    """Base of every tenant-owned model.

    `objects` is scoped to the active project and fails closed. `unscoped_objects` is the
    explicit, greppable escape hatch for the admin console, sweeps and maintenance code.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")

    objects = ProjectScopedManager()
    unscoped_objects = models.Manager()

    class Meta:
        abstract = True
        # Related-object access (`file.order`) and deletion cascades use this manager:
        # they follow a row we already hold, so they need no scope.
        base_manager_name = "unscoped_objects"
