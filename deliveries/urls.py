from django.urls import include, path

from . import apis, pages

P = "api/v1/delivery"

# catalogId may hold colons (URNs): `str` matches anything but a slash.
urlpatterns = [
    path(f"{P}/prepareDelivery", apis.PrepareDeliveryApi.as_view(), name="delivery-prepare"),
    path(f"{P}/preparedDelivery/<str:catalogId>", apis.PreparedDeliveryApi.as_view(), name="delivery-prepared"),
    path(f"{P}/artifacts/<int:artifactId>/download", apis.DeliveryArtifactDownloadApi.as_view(),
         name="delivery-artifact-download"),
    path(f"{P}/cache/delete", apis.DeliveryCacheDeleteApi.as_view(), name="delivery-cache-delete"),
    path(f"{P}/cache/config", apis.DeliveryCacheConfigApi.as_view(), name="delivery-cache-config"),
    path(f"{P}/signing-key", apis.DeliverySigningKeyApi.as_view(), name="delivery-signing-key"),
    path("", include("deliveries.downloadorders.urls")),
]

# Pages (people-facing, session login). Not under orders/<id>/: that is the order actions' space.
urlpatterns += [
    path("projects/<slug:slug>/archives/<int:order_id>/", pages.order_archive, name="page-order-archive"),
    path("projects/<slug:slug>/archives/<int:order_id>/prepare", pages.order_archive_prepare,
         name="page-order-archive-prepare"),
]
