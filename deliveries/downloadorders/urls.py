from django.urls import path

from . import apis, pages

P = "api/downloadorders"

# entityId: a data object's numeric id or its URN (colons allowed; `str` matches no slash).
urlpatterns = [
    path(P, apis.DownloadOrdersApi.as_view(), name="downloadorder-list"),
    path(f"{P}/<int:downloadOrderId>", apis.DownloadOrderApi.as_view(), name="downloadorder-detail"),
    path(f"{P}/<int:downloadOrderId>/targets", apis.DownloadOrderTargetsApi.as_view(),
         name="downloadorder-targets"),
    path(f"{P}/<int:downloadOrderId>/targets/<str:entityId>", apis.DownloadOrderTargetApi.as_view(),
         name="downloadorder-target"),
    path("projects/<slug:slug>/downloadorders/new", pages.download_order_create, name="page-downloadorder-create"),
    path("projects/<slug:slug>/downloadorders/<int:download_order_id>/", pages.download_order_detail,
         name="page-downloadorder"),
]
