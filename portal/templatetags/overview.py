from django import template
from django.template.loader import render_to_string

from portal.overview import overview_panels

register = template.Library()


@register.simple_tag(takes_context=True)
def admin_overview(context):
    """The overview panels for the admin looking at the page (nothing when they see no project)."""
    request = context["request"]
    panels = overview_panels(request.user)
    if not panels:
        return ""
    return render_to_string("admin/overview.html", {"panels": panels}, request=request)
