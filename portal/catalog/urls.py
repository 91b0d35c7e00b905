from django.urls import path

from . import apis, pages

urlpatterns = [
    path("api/v1/rs-catalog/search/dataobjects", apis.DataObjectSearchApi.as_view(),
         name="catalog-search-dataobjects"),
    path("api/v1/rs-catalog/search/datasets", apis.DatasetSearchApi.as_view(), name="catalog-search-datasets"),
    path("api/v1/rs-catalog/<str:productURN>/files/<str:checksum>", apis.DataFileDownloadApi.as_view(),
         name="catalog-file-download"),
]

# Pages (people-facing, session login).
urlpatterns += [
    path("projects/<slug:slug>/search/", pages.search, name="page-search"),
]
