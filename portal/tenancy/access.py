"""Resolving the project of an API request: the `scope` query parameter or header, else the
project the bearer token is bound to (REGARDS clients send no scope once they hold a token)."""
from __future__ import annotations

from dataclasses import dataclass

from portal.errors import Invalid, NotAllowed, NotFound

from .models import ApiToken, Membership, Project, Role
from .selectors import membership_for, project_by_slug

# Wire code of a request that names no project (400 on every protocol, REGARDS included).
PROJECT_REQUIRED = "PROJECT_REQUIRED"


@dataclass(frozen=True)
class ProjectAccess:
    project: Project
    membership: Membership | None  # None for a superuser who is not a member

    @property
    def is_admin(self) -> bool:
        return self.membership is None or self.membership.role == Role.ADMIN


def project_access_for(*, user, project: Project) -> ProjectAccess | None:
    """What `user` may do in `project`: a member's role, a superuser's full access, or None."""
    membership = membership_for(user=user, project=project)
    if membership is None and not user.is_superuser:
        return None
    return ProjectAccess(project=project, membership=membership)


def requested_scope(request) -> str | None:
    return request.query_params.get("scope") or request.headers.get("scope") or None


def requested_project(request) -> Project:
    """The project the request names: none 400, unknown 404 (no access check)."""
    slug = requested_scope(request)
    if not slug:
        raise Invalid(PROJECT_REQUIRED, "Name the project with the `scope` query parameter or header.")
    project = project_by_slug(slug)
    if project is None:
        raise NotFound("PROJECT_NOT_FOUND", f"Unknown project '{slug}'.")
    return project


def resolve_project_access(request) -> ProjectAccess:
    """No project: 400; unknown project: 404; not a member: 403; another project's token: 403.

    Without `scope`, a bearer token names its own project; a browser session still must name one.
    """
    token = request.auth if isinstance(request.auth, ApiToken) else None
    if token is not None and not requested_scope(request):
        project = token.project
    else:
        project = requested_project(request)
        if token is not None and token.project_id != project.pk:
            raise NotAllowed("TOKEN_NOT_VALID_FOR_PROJECT",
                             "This token was issued for another project.")
    access = project_access_for(user=request.user, project=project)
    if access is None:
        raise NotAllowed("NOT_A_PROJECT_MEMBER",
                         f"You are not a member of project '{project.slug}'.")
    return access
