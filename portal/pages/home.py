from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from portal.tenancy.models import Project

from .access import project_page


@login_required
def home(request):
    """Lists the projects the user belongs to; each links to its pages."""
    projects = Project.objects.all() if request.user.is_superuser else \
        Project.objects.filter(memberships__user=request.user)
    return render(request, "home.html", {"projects": projects})


@require_GET
@project_page
def project_home(request, project):
    return render(request, "portal/project_home.html", {"project": project})
