"""The catalog search page (its results are added to the basket by `basket.pages.basket_add`)."""
from __future__ import annotations

from urllib.parse import urlencode

from django.shortcuts import render
from django.views.decorators.http import require_GET

from portal.pages.access import project_page
from portal.pages.paging import paged

from .query import QuerySyntaxError, query_error_message
from .selectors import data_objects_search

SEARCH_PAGE_SIZE = 20


@require_GET
@project_page
def search(request, project):
    q = request.GET.get("q", "")
    context = {"project": project, "q": q, "objects": [], "paging": None, "error": None,
               "q_prefix": urlencode({"q": q}) + "&"}
    try:
        queryset = data_objects_search(project=project, q=q)
        context["objects"], context["paging"] = paged(queryset, request.GET, size=SEARCH_PAGE_SIZE)
    except QuerySyntaxError as exc:
        # The query shown split at the error, so people see where it went wrong.
        context.update(error=query_error_message(exc), error_before=q[:exc.position],
                       error_after=q[exc.position:])
    return render(request, "catalog/search.html", context)
