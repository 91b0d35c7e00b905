"""The basket page: selections with counts, removals, and order creation."""
from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from basket import services as basket_services
from basket.dates import format_date, parse_selection_date
from basket.opensearch import item_request
from basket.selectors import basket_for_owner, dataset_selection_for_owner, item_criteria_of
from orders import services as order_services
from portal.api.errors import ApiError

from portal.pages.access import project_page
from orders.texts import order_error_text


def _basket_url(project) -> str:
    return f"/projects/{project.slug}/basket/"


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


@require_POST
@project_page
def order_create(request, project):
    """POST /user/orders from the basket: the new order's page, or the basket with the reason."""
    try:
        order = order_services.order_create(project=project, owner=request.user,
                                            label=request.POST.get("label") or None)
    except ApiError as exc:
        messages.error(request, order_error_text(exc.code))
        return redirect(_basket_url(project))
    if order is None:
        messages.error(request, "You have no basket: add something to it first.")
        return redirect(_basket_url(project))
    messages.success(request, f"Order “{order.label}” created. Its files are being prepared.")
    return redirect(f"/projects/{project.slug}/orders/{order.pk}/")
