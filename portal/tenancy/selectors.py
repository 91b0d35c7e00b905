from __future__ import annotations

from .models import Membership, Project


def project_by_slug(slug: str) -> Project | None:
    return Project.objects.filter(slug=slug).first()


def membership_for(*, user, project: Project) -> Membership | None:
    if not user or not user.is_authenticated:
        return None
    return Membership.objects.filter(user=user, project=project).first()


def user_is_project_admin(*, user, project: Project) -> bool:
    if user.is_superuser:
        return True
    membership = membership_for(user=user, project=project)
    return membership is not None and membership.is_admin


def projects_administered_by(user):
    """Projects whose admin console rows this user may see (none for an anonymous visitor)."""
    if not user.is_authenticated or not user.is_active:
        return Project.objects.none()
    if user.is_superuser:
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user, memberships__role="ADMIN")
