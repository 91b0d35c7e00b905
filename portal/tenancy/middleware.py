from .scope import _active_project


class ProjectScopeResetMiddleware:
    """Guarantees that no project scope outlives its request (threads are reused)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _active_project.set(None)
        try:
            return self.get_response(request)
        finally:
            _active_project.reset(token)
