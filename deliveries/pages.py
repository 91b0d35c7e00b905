"""The prepared archive of an order, for people: the order page's "Prepare an archive" button
posts here; this page follows the preparation and offers the archive once it is done."""
from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from portal.errors import DomainError
from portal.pages.access import project_page
from portal.pages.errors import error_page_for

from . import codes, selectors, services
from .models import ACTIVE_STATUSES, DeliveryStatus


def _catalog_id(order_id: int) -> str:
    return f"{codes.ORDER_PREFIX}{order_id}"


def _archive_url(project, order_id: int) -> str:
    return reverse("page-order-archive", kwargs={"slug": project.slug, "order_id": order_id})


@require_POST
@project_page
def order_archive_prepare(request, project, order_id: int):
    is_admin = request.access.is_admin
    try:
        target = selectors.target_for_caller(project=project, user=request.user, catalog_id=_catalog_id(order_id),
                                             is_admin=is_admin)
        services.delivery_prepare(project=project, user=request.user, target=target)
    except DomainError as exc:
        if error_page_for(exc) is not None:
            raise
        messages.error(request, f"{exc.message} ({exc.code})")
        return redirect(reverse("page-order", kwargs={"slug": project.slug, "order_id": order_id}))
    return redirect(_archive_url(project, order_id))


@require_GET
@project_page
def order_archive(request, project, order_id: int):
    delivery = selectors.delivery_for_caller(project=project, user=request.user, catalog_id=_catalog_id(order_id),
                                             is_admin=request.access.is_admin)
    archive = next((a for a in delivery.artifacts.all() if a.item_key == codes.ARCHIVE_ITEM_KEY), None) \
        if delivery.status == DeliveryStatus.DONE else None
    api = reverse("delivery-prepared", kwargs={"catalogId": delivery.catalog_id})
    return render(request, "deliveries/order_archive.html", {
        "project": project, "order_id": order_id, "delivery": delivery, "archive": archive,
        "active": delivery.status in ACTIVE_STATUSES,
        "status_url": f"{api}?scope={project.slug}",
        "archive_url": (f"{reverse('delivery-artifact-download', kwargs={'artifactId': archive.pk})}"
                        f"?scope={project.slug}") if archive else None,
    })
