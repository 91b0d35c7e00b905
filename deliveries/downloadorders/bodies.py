"""The download order resources as the API shows them (snake_case, link objects): used by the
API, and by history for the `downloadorder.completed` webhook's data. No HTTP here."""
from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse

from portal.dates import iso_utc

from .. import codes as delivery_codes
from ..models import DeliveryArtifact, DeliveryStatus
from .models import DownloadOrder, DownloadOrderStatus


def link(href: str | None, title: str = "") -> dict | None:
    if href is None:
        return None
    return {"href": href, "filename_properties": [], "title": title, "templated": False}


def url(path: str, project_slug: str, **params) -> str:
    query = urlencode({"scope": project_slug, **{k: v for k, v in params.items() if v is not None}})
    return f"{settings.PORTAL_BASE_URL}{path}?{query}"


def _user_link(user) -> dict | None:
    return None if user is None else link(f"mailto:{user.email}", user.email)


def archive_of(order: DownloadOrder) -> DeliveryArtifact | None:
    delivery = order.delivery
    if delivery is None or delivery.status != DeliveryStatus.DONE or order.status != DownloadOrderStatus.COMPLETED:
        return None
    archives = [a for a in delivery.artifacts.all() if a.item_key == delivery_codes.ARCHIVE_ITEM_KEY]
    return archives[0] if archives else None


def _freed_notice(order: DownloadOrder) -> str | None:
    """A Completed order whose zip left the delivery cache (freed, evicted, expired) says how to get it back."""
    if order.status != DownloadOrderStatus.COMPLETED or order.delivery is None \
            or order.delivery.status != DeliveryStatus.DELETE:
        return None
    return (f"The zip was removed from the delivery cache: prepare it again with POST "
            f"/api/v1/delivery/prepareDelivery {{\"catalogId\": \"{order.catalog_id}\"}}.")


def download_order_body(order: DownloadOrder, *, project_slug: str) -> dict:
    archive = archive_of(order)
    detail = reverse("downloadorder-detail", kwargs={"downloadOrderId": order.pk})
    return {
        "order_id": order.pk,
        "name": order.name or None,
        "target_count": order.target_count,
        "has_conversions": order.has_conversions,
        "created_by": _user_link(order.owner),
        "created_on": iso_utc(order.created_at),
        "modified_by": _user_link(order.modified_by),
        "modified_on": iso_utc(order.modified_at),
        "status": order.status,
        "download_location": None if archive is None else link(
            url(reverse("delivery-artifact-download", kwargs={"artifactId": archive.pk}), project_slug),
            archive.meta_data.get("filename", "")),
        "additional_info": _freed_notice(order) or order.additional_info or None,
        "external_job_reference": None if order.delivery is None else link(
            url(reverse("delivery-prepared", kwargs={"catalogId": order.catalog_id}), project_slug),
            order.catalog_id),
        "targets": link(url(reverse("downloadorder-targets", kwargs={"downloadOrderId": order.pk}), project_slug)),
        "culture": order.culture or None,
        "self": link(url(detail, project_slug), order.name),
    }


def target_body(target, *, order: DownloadOrder, project_slug: str) -> dict:
    obj = target.data_object
    self_path = reverse("downloadorder-target", kwargs={"downloadOrderId": order.pk, "entityId": str(obj.pk)})
    entity_path = reverse("regards-legacy-dataobject", kwargs={"urn": obj.ip_id})
    return {
        "entity": link(url(entity_path, project_slug), obj.label),
        "entity_id": obj.pk,
        "entity_urn": obj.ip_id,
        "renditions": target.renditions,
        "conversions": target.conversions,
        "individual": target.individual,
        "self": link(url(self_path, project_slug)),
    }


