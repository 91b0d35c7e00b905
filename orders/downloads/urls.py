from django.urls import path

from . import apis

P = "api/v1/rs-order"

urlpatterns = [
    path(f"{P}/orders/<int:orderId>/files/available", apis.OrderFilesAvailableApi.as_view(),
         name="orders-files-available"),
    path(f"{P}/user/orders/<int:orderId>/files/available", apis.OrderFilesAvailableApi.as_view(),
         name="user-orders-files-available"),
    path(f"{P}/orders/<int:orderId>/dataset/<int:datasetTaskId>/files", apis.OrderDatasetTaskFilesApi.as_view(),
         name="orders-dataset-files"),
    path(f"{P}/orders/files/<int:dataFileId>", apis.OrderFileDownloadApi.as_view(), name="orders-file"),
    path(f"{P}/orders/public/files/<int:dataFileId>", apis.PublicOrderFileDownloadApi.as_view(),
         name="orders-public-file"),
    path(f"{P}/user/orders/<int:orderId>/download", apis.UserOrderZipDownloadApi.as_view(),
         name="user-order-zip"),
    path(f"{P}/user/orders/<int:orderId>/metalink/download", apis.UserOrderMetalinkApi.as_view(),
         name="user-order-metalink"),
    path(f"{P}/user/orders/metalink/download", apis.PublicOrderMetalinkApi.as_view(),
         name="public-order-metalink"),
]
