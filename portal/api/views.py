"""Base views of tenant API endpoints: they resolve and activate the request's project."""
from rest_framework.views import APIView

from portal.tenancy import scope
from portal.tenancy.access import ProjectAccess, resolve_project_access
from portal.tenancy.models import Project


class ScopedAPIView(APIView):
    """Activates the project `resolve_project` returns until the response is finalised.

    Streaming responses run after that: capture the project and re-enter `project_scope`
    inside the generator.
    """

    def resolve_project(self, request) -> Project:
        raise NotImplementedError

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self._scope_token = scope.activate(self.resolve_project(request))

    def finalize_response(self, request, response, *args, **kwargs):
        token = getattr(self, "_scope_token", None)
        if token is not None:
            scope.deactivate(token)
            self._scope_token = None
        return super().finalize_response(request, response, *args, **kwargs)


class ProjectAPIView(ScopedAPIView):
    """For members: after authentication, `request.access` holds the project and the
    caller's role (no project 400, unknown 404, not a member 403)."""

    def resolve_project(self, request) -> Project:
        access: ProjectAccess = resolve_project_access(request)
        request.access = access
        return access.project
