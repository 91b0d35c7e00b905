"""Order history and order pages (and ordering the basket): the same selectors, services and
transitions table as the API."""
from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from portal.errors import DomainError
from portal.pages.access import project_page
from portal.pages.errors import error_page_for
from portal.pages.paging import paged

from . import services as order_services
from .downloads.selectors import DOWNLOADABLE_STATES
from .downloads.services import METALINK_FORBIDDEN_STATUSES, order_is_expired
from .expiry import order_extend
from .mails import extend_instructions
from .models import FINAL_STATUSES, OrderStatus
from .selectors import (OrderFilters, order_check_caller, order_files_for_page, order_for_caller,
                        order_list_for_admin, order_list_for_owner)
from .texts import order_error_text
from .transitions import order_links

ORDERS_PAGE_SIZE = 20
FILES_PAGE_SIZE = 50
# Buttons, in display order: rel of the order's links -> (label, service, what it did).
ACTIONS = {
    "pause": ("Pause", order_services.order_pause, "Order paused."),
    "resume": ("Resume", order_services.order_resume, "Order resumed."),
    "retry": ("Retry failed files", order_services.order_retry, "The files in error are prepared again."),
    "restart": ("Order again", order_services.order_restart, "New order created."),
    "extend": ("Extend", order_extend, "Order extended: see its new expiration date."),
    "delete": ("Delete", order_services.order_delete, "Order deleted."),
    "remove": ("Remove for good", order_services.order_remove, "Order removed."),
}


def _order_url(project, order_id: int) -> str:
    return reverse("page-order", kwargs={"slug": project.slug, "order_id": order_id})


def _api_url(name: str, project, **kwargs) -> str:
    """Session-authenticated URL of an API endpoint (the `scope` names the project)."""
    return f"{reverse(name, kwargs=kwargs)}?scope={project.slug}"


@require_GET
@project_page
def order_list(request, project):
    """The user's orders (everyone's for an ADMIN), newest first."""
    is_admin = request.access.is_admin
    if is_admin:
        queryset = order_list_for_admin(project=project, filters=OrderFilters())
    else:
        queryset = order_list_for_owner(project=project, owner=request.user)
    orders, paging = paged(queryset, request.GET, size=ORDERS_PAGE_SIZE)
    return render(request, "orders/order_list.html", {
        "project": project, "orders": orders, "paging": paging, "is_admin": is_admin,
        "csv_url": _api_url("orders-csv", project) if is_admin else None,
    })


def _offered_rels(order, *, is_admin: bool) -> set[str]:
    return {link["rel"] for link in order_links(order, is_admin=is_admin)}


@require_GET
@project_page
def order_detail(request, project, order_id: int):
    is_admin = request.access.is_admin
    order = order_for_caller(project=project, user=request.user, order_id=order_id, is_admin=is_admin)
    offered = _offered_rels(order, is_admin=is_admin)
    files, files_paging = paged(order_files_for_page(project=project, order=order), request.GET,
                                size=FILES_PAGE_SIZE, name="files_page")
    servable = order.status not in (OrderStatus.DELETED, OrderStatus.EXPIRED) and not order_is_expired(order)
    rows = [{"file": f, "url": _api_url("orders-file", project, dataFileId=f.pk)
             if servable and f.state in DOWNLOADABLE_STATES else None} for f in files]
    live = order.status not in FINAL_STATUSES
    return render(request, "orders/order_detail.html", {
        "project": project, "order": order, "is_admin": is_admin, "is_owner": order.owner_id == request.user.pk,
        "actions": [{"rel": rel, "label": label, "offered": rel in offered} for rel, (label, *_) in ACTIONS.items()],
        "rows": rows, "files_paging": files_paging,
        "events": order.events.order_by("id"), "extend_help": extend_instructions(order),
        "expires_soon": order.expiration_date - timezone.now() < timedelta(days=1),
        "zip_url": _api_url("user-order-zip", project, orderId=order.pk),
        "zip_offered": "download" in offered and servable,
        "metalink_url": _api_url("user-order-metalink", project, orderId=order.pk),
        "metalink_offered": order.status not in METALINK_FORBIDDEN_STATUSES and servable,
        "metalink_hidden": sorted(METALINK_FORBIDDEN_STATUSES),
        "events_url": (f"{_api_url('user-order-events', project, orderId=order.pk)}"
                       f"&since={int(timezone.now().timestamp() * 1000)}") if live else None,
    })


@require_POST
@project_page
def order_action(request, project, order_id: int, action: str):
    """Calls the order service; the transitions table refuses what the status does not allow."""
    if action not in ACTIONS:
        raise Http404("Unknown action")
    order_check_caller(project=project, user=request.user, order_id=order_id, is_admin=request.access.is_admin)
    _, service, done = ACTIONS[action]
    try:
        result = service(project=project, order_id=order_id)
    except DomainError as exc:
        if error_page_for(exc) is not None:
            raise
        # The transitions table's refusal, or a label the restart cannot reuse.
        messages.error(request, order_error_text(exc.code))
        return redirect(_order_url(project, order_id))
    messages.success(request, done)
    if action == "remove":
        return redirect(reverse("page-orders", kwargs={"slug": project.slug}))
    if action == "restart":
        return redirect(_order_url(project, result.pk))
    return redirect(_order_url(project, order_id))


@require_POST
@project_page
def order_create(request, project):
    """POST /user/orders from the basket: the new order's page, or the basket with the reason."""
    try:
        order = order_services.order_create(project=project, owner=request.user,
                                            label=request.POST.get("label") or None)
    except DomainError as exc:
        messages.error(request, order_error_text(exc.code))
        return redirect(reverse("page-basket", kwargs={"slug": project.slug}))
    if order is None:
        messages.error(request, "You have no basket: add something to it first.")
        return redirect(reverse("page-basket", kwargs={"slug": project.slug}))
    messages.success(request, f"Order “{order.label}” created. Its files are being prepared.")
    return redirect(_order_url(project, order.pk))
