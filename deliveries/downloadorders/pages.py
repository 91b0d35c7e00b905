"""Pages: the basket page's "Download as…" form creates a download order from the basket; the
order's page shows its progress (refreshing itself) and then its zip link."""
from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from portal.catalog.models import DataType
from portal.errors import Invalid
from portal.pages.access import project_page

from . import selectors, services
from .bodies import archive_of
from .models import DownloadOrderStatus

RENDITION_CHOICES = [(DataType.RAWDATA.value, "Original (RAWDATA)"), ("QUICKLOOK", "Best quicklook"),
                     (DataType.QUICKLOOK_HD.value, "Quicklook HD"), (DataType.QUICKLOOK_MD.value, "Quicklook MD"),
                     (DataType.QUICKLOOK_SD.value, "Quicklook SD"), (DataType.THUMBNAIL.value, "Thumbnail")]
FINAL = (DownloadOrderStatus.COMPLETED, DownloadOrderStatus.FAILED)


def _conversion(post) -> list[list[dict]]:
    steps = []
    if post.get("image_format"):
        steps.append({"type": "fileExtension", "value": post["image_format"]})
    width = (post.get("image_width") or "").strip()
    if width:
        steps.append({"type": "resize", "value": {"width": int(width) if width.isdigit() and len(width) < 7
                                                  else width}})
    return [steps] if steps else []


@require_POST
@project_page
def download_order_create(request, project):
    """The form's choices as a download order of the basket (one entry per dataset)."""
    conversions = _conversion(request.POST)
    global_config = {key[len("rendition_"):]: {"renditions": [value], "conversions": conversions}
                     for key, value in request.POST.items() if key.startswith("rendition_")}
    request_ = services.DownloadOrderRequest(selection_pool=services.BASKET, global_config=global_config,
                                             zip_filename=(request.POST.get("zip_filename") or "").strip(),
                                             name=(request.POST.get("zip_filename") or "").strip())
    try:
        order = services.download_order_create(project=project, owner=request.user, request=request_)
    except Invalid as exc:
        messages.error(request, f"{exc.message} ({exc.code})")
        return redirect(reverse("page-basket", kwargs={"slug": project.slug}))
    messages.success(request, "Your zip is being prepared.")
    return redirect(reverse("page-downloadorder", kwargs={"slug": project.slug, "download_order_id": order.pk}))


@require_GET
@project_page
def download_order_detail(request, project, download_order_id: int):
    order = selectors.download_order_for_caller(project=project, user=request.user,
                                                download_order_id=download_order_id,
                                                is_admin=request.access.is_admin)
    delivery, archive = order.delivery, archive_of(order)
    zip_url = zip_name = None
    if archive is not None:
        zip_url = reverse("delivery-artifact-download", kwargs={"artifactId": archive.pk}) + f"?scope={project.slug}"
        zip_name = archive.meta_data.get("filename")
    final = order.status in FINAL
    progress = 100 if final else (delivery.progress if delivery is not None else 0)
    return render(request, "deliveries/downloadorders/download_order.html", {
        "project": project, "order": order, "final": final, "progress": progress, "zip_url": zip_url,
        "zip_name": zip_name})
