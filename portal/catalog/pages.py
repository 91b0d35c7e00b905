"""Project home and catalog search (with add-to-basket)."""
from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from basket import codes as basket_codes
from basket import services as basket_services
from portal.catalog.query import QuerySyntaxError, query_error_message
from portal.catalog.selectors import data_objects_search

from portal.pages.access import project_page
from portal.pages.paging import paged

SEARCH_PAGE_SIZE = 20


@require_GET
@project_page
def project_home(request, project):
    return render(request, "portal/project_home.html", {"project": project})


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


def _back_to_search(request, project):
    params = {k: request.POST[k] for k in ("q", "page") if request.POST.get(k)}
    url = f"/projects/{project.slug}/search/"
    return redirect(f"{url}?{urlencode(params)}" if params else url)


@require_POST
@project_page
def basket_add(request, project):
    """The API's selection POST: one object (`ipIds`) or every result of `q`
    (`selectAllOpenSearchRequest`)."""
    ip_id = (request.POST.get("ip_id") or "").strip()
    q = request.POST.get("q", "")
    if ip_id:
        selection = basket_services.selection_request_from_ip_ids(query=None, ip_ids=[ip_id])
    else:
        # "Add all results": the query as typed (an empty query selects the whole catalog).
        selection = basket_services.SelectionRequest(query=q)
    try:
        basket_services.basket_add_selection(project=project, owner=request.user, selection=selection)
    except QuerySyntaxError as exc:
        messages.error(request, query_error_message(exc))
    except basket_services.SelectionInvalid as exc:
        messages.error(request, str(exc))
    except basket_services.NothingToOrder:
        messages.warning(request, basket_codes.NO_ORDERABLE_FILE)
    else:
        what = "1 object" if ip_id else "the results of your search"
        messages.success(request, f"Added {what} to your basket.")
    return _back_to_search(request, project)
