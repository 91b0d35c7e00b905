"""Base view of every tenant API endpoint: authenticates, resolves and activates the project."""
from rest_framework.views import APIView

from portal.tenancy import scope
from portal.tenancy.access import ProjectAccess, resolve_project_access


class ProjectAPIView(APIView):
    """After authentication, `request.access` holds the project and the caller's role, and
    the project is the active scope until the response is finalised.

    Streaming responses run after that: capture `request.access.project` and re-enter
    `project_scope` inside the generator.
    """

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        access: ProjectAccess = resolve_project_access(request)
        request.access = access
        self._scope_token = scope.activate(access.project)

    def finalize_response(self, request, response, *args, **kwargs):
        token = getattr(self, "_scope_token", None)
        if token is not None:
            scope.deactivate(token)
            self._scope_token = None
        return super().finalize_response(request, response, *args, **kwargs)
