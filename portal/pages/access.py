"""The project of a page comes from its URL: `project_page` resolves it, checks membership
and activates its scope for the view."""
from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import Http404

from portal.errors import DomainError
from portal.tenancy.access import project_access_for
from portal.tenancy.scope import project_scope
from portal.tenancy.selectors import project_by_slug

from .errors import error_page_for


def project_page(view):
    """`view(request, project, ...)` for `/projects/<slug>/...` URLs.

    Anonymous: redirect to login. Unknown project, or a project the user is not a member of:
    404 (a page never tells outsiders which projects exist). `request.access` is the same
    `ProjectAccess` the API views get. Domain errors of selectors (unknown order, not
    yours) become Django's 404/403 pages (`portal.pages.errors`). Views render inside the scope (`render`, never a
    lazy TemplateResponse).
    """

    @login_required
    @wraps(view)
    def wrapper(request, slug: str, *args, **kwargs):
        project = project_by_slug(slug)
        if project is None:
            raise Http404("Unknown project")
        access = project_access_for(user=request.user, project=project)
        if access is None:
            raise Http404("Unknown project")
        request.access = access
        try:
            with project_scope(project):
                return view(request, project, *args, **kwargs)
        except DomainError as exc:
            error_page = error_page_for(exc)
            if error_page is None:
                raise
            raise error_page from None

    return wrapper
