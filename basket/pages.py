"""The basket page (selections with counts, removals) and adding search results to the basket."""
from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from portal.catalog.query import QuerySyntaxError, query_error_message
from portal.pages.access import project_page

from . import codes as basket_codes
from . import services as basket_services
from .dates import format_date, parse_selection_date
from .opensearch import item_request
from .selectors import basket_for_owner, dataset_selection_for_owner, item_criteria_of


def _basket_url(project) -> str:
    return reverse("page-basket", kwargs={"slug": project.slug})


def _selection_rows(basket) -> list[dict]:
    rows = []
    for selection in basket.dataset_selections.all():  # prefetched by basket_for_owner
        items = [{"date": format_date(item.date), "request": item_request(item_criteria_of(item)), "item": item}
                 for item in selection.item_selections.all()]
        rows.append({"selection": selection, "items": items})
    return rows


@require_GET
@project_page
def basket_page(request, project):
    basket = basket_for_owner(project=project, owner=request.user)
    rows = _selection_rows(basket) if basket is not None else []
    totals = {key: sum(getattr(row["selection"], key) for row in rows)
              for key in ("objects_count", "files_count", "files_size")}
    return render(request, "basket/basket.html", {"project": project, "rows": rows, "totals": totals})


def _own_selection(request, project):
    raw = request.POST.get("selection_id") or ""
    selection = dataset_selection_for_owner(project=project, owner=request.user,
                                            dataset_selection_id=int(raw)) if raw.isdigit() and len(raw) < 19 else None
    if selection is None:
        raise Http404("No such selection in your basket")
    return selection


@require_POST
@project_page
def basket_remove_items(request, project):
    """One dated item selection (the dataset selection goes with its last item)."""
    selection = _own_selection(request, project)
    try:
        date = parse_selection_date(request.POST.get("date") or "")
        basket_services.dataset_selection_remove_items(project=project, dataset_selection=selection, date=date)
    except (ValueError, basket_services.ItemsSelectionNotFound):
        messages.error(request, "That selection is no longer in your basket.")
    else:
        messages.success(request, "Selection removed.")
    return redirect(_basket_url(project))


@require_POST
@project_page
def basket_remove_dataset(request, project):
    selection = _own_selection(request, project)
    basket_services.dataset_selection_remove(project=project, dataset_selection=selection)
    messages.success(request, "Dataset removed from your basket.")
    return redirect(_basket_url(project))


@require_POST
@project_page
def basket_clear(request, project):
    basket = basket_for_owner(project=project, owner=request.user)
    if basket is not None:
        basket_services.basket_empty(basket=basket)
    messages.success(request, "Your basket is empty.")
    return redirect(_basket_url(project))


def _back_to_search(request, project):
    params = {k: request.POST[k] for k in ("q", "page") if request.POST.get(k)}
    url = reverse("page-search", kwargs={"slug": project.slug})
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
