"""The catalog search page (its results are added to the basket by `basket.pages.basket_add`)."""
from __future__ import annotations

from urllib.parse import urlencode

from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from portal.pages.access import project_page
from portal.pages.paging import paged

from .previews import preview_of
from .query import QuerySyntaxError, query_error_message
from .search_form import BUILDER_FIELDS, SORTS, query_from_fields
from .selectors import data_objects_search, datasets_for_choice

SEARCH_PAGE_SIZE = 20
# The page's sort choices as the search API's Spring-style `sort` values.
SORT_SPECS = {"oldest": ["creationDate,ASC"], "newest": ["creationDate,DESC"]}


@require_GET
@project_page
def search(request, project):
    q = request.GET.get("q", "")
    sort = request.GET.get("sort") if request.GET.get("sort") in SORTS else "oldest"
    datasets = datasets_for_choice(project=project)
    context = {"project": project, "q": q, "sort": sort, "sorts": SORTS, "datasets": datasets,
               "objects": [], "paging": None, "error": None, "field_errors": [],
               "q_prefix": urlencode({"q": q, "sort": sort}) + "&"}
    if any(request.GET.get(name, "").strip() for name in BUILDER_FIELDS):
        # The fields become clauses of `q`: the page shows (and lets people edit) that query.
        built = query_from_fields(q=q, **{name: request.GET.get(name, "") for name in BUILDER_FIELDS})
        if not built.errors:
            url = reverse("page-search", kwargs={"slug": project.slug})
            return redirect(f"{url}?{urlencode({'q': built.q, 'sort': sort})}")
        context["field_errors"] = built.errors
        context["fields"] = {name: request.GET.get(name, "") for name in BUILDER_FIELDS}
        return render(request, "catalog/search.html", context)
    try:
        queryset = data_objects_search(project=project, q=q, sort=SORT_SPECS[sort])
        objects, context["paging"] = paged(queryset, request.GET, size=SEARCH_PAGE_SIZE)
        context["objects"] = [{"obj": obj, "preview": preview_of(project=project, ip_id=obj.ip_id, label=obj.label,
                                                                 files=obj.files.all())} for obj in objects]
    except QuerySyntaxError as exc:
        # The query shown split at the error, so people see where it went wrong.
        context.update(error=query_error_message(exc), error_before=q[:exc.position],
                       error_after=q[exc.position:])
    return render(request, "catalog/search.html", context)
