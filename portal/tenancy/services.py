from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import ApiToken, Membership, Project, Role, User

TOKEN_PREFIX = "ordly_"


@transaction.atomic
def project_create(*, slug: str, label: str | None = None, **project_settings) -> Project:
    return Project.objects.create(slug=slug, label=label or slug, **project_settings)


@transaction.atomic
def member_add(*, project: Project, email: str, role: str = Role.REGISTERED_USER,
               password: str | None = None) -> Membership:
    """Adds (or updates the role of) a member, creating the user if needed."""
    email = email.strip().lower()
    user = User.objects.filter(email=email).first()
    if user is None:
        user = User.objects.create_user(email=email, password=password)
    elif password:
        user.set_password(password)
        user.save(update_fields=["password"])
    membership, _ = Membership.objects.update_or_create(
        user=user, project=project, defaults={"role": role}
    )
    if role == Role.ADMIN and not user.is_staff:
        # Project admins use the admin console, which shows them only their projects' rows.
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    return membership


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    raw_key: str  # shown once, never stored


def token_issue(*, user: User, project: Project, name: str = "",
                lifetime: timedelta | None = None) -> IssuedToken:
    """Creates a bearer token; only its SHA-256 is kept."""
    raw_key = TOKEN_PREFIX + secrets.token_urlsafe(32)
    lifetime = lifetime or timedelta(seconds=settings.API_TOKEN_LIFETIME_SECONDS)
    token = ApiToken.objects.create(
        user=user,
        project=project,
        key_hash=ApiToken.hash_key(raw_key),
        prefix=raw_key[: len(TOKEN_PREFIX) + 4],
        name=name,
        expires_at=timezone.now() + lifetime,
    )
    return IssuedToken(token=token, raw_key=raw_key)


def token_revoke(*, token: ApiToken) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token
