from django.urls import path

from . import apis, pages
from .regards import apis as regards

LEGACY = "api/v1/rs-catalog/engines/legacy"
ACCESS = "api/v1/rs-access-project"

urlpatterns = [
    path("api/v1/rs-catalog/search/dataobjects", apis.DataObjectSearchApi.as_view(),
         name="catalog-search-dataobjects"),
    path("api/v1/rs-catalog/search/datasets", apis.DatasetSearchApi.as_view(), name="catalog-search-datasets"),
    path("api/v1/rs-catalog/<str:productURN>/files/<str:checksum>", apis.DataFileDownloadApi.as_view(),
         name="catalog-file-download"),
    # REGARDS' own catalog API, for existing REGARDS clients (portal/catalog/regards/).
    path(f"{LEGACY}/dataobjects/search", regards.LegacyDataObjectSearchApi.as_view(),
         name="regards-legacy-dataobjects-search"),
    path(f"{LEGACY}/datasets/search", regards.LegacyDatasetSearchApi.as_view(),
         name="regards-legacy-datasets-search"),
    path(f"{LEGACY}/entities/search", regards.LegacyEntitySearchApi.as_view(),
         name="regards-legacy-entities-search"),
    path(f"{LEGACY}/dataobjects/<str:urn>", regards.LegacyDataObjectApi.as_view(),
         name="regards-legacy-dataobject"),
    path(f"{LEGACY}/datasets/<str:datasetUrn>", regards.LegacyDatasetApi.as_view(),
         name="regards-legacy-dataset"),
    path(f"{LEGACY}/datasets/<str:datasetUrn>/dataobjects/search", regards.LegacyDatasetDataObjectSearchApi.as_view(),
         name="regards-legacy-dataset-dataobjects-search"),
    path(f"{ACCESS}/dataobjects/search", regards.AccessProjectDataObjectSearchApi.as_view(),
         name="regards-access-dataobjects-search"),
    path(f"{ACCESS}/datasets/search", regards.AccessProjectDatasetSearchApi.as_view(),
         name="regards-access-datasets-search"),
    path(f"{ACCESS}/search", regards.AccessProjectEntitySearchApi.as_view(), name="regards-access-search"),
    path("api/v1/rs-dam/datasets", regards.DamDatasetListApi.as_view(), name="regards-dam-datasets"),
    path("api/v1/rs-catalog/downloads/<str:productURN>/files/<str:checksum>",
         regards.RegardsFileDownloadApi.as_view(), name="regards-file-download"),
]

# Pages (people-facing, session login).
urlpatterns += [
    path("projects/<slug:slug>/search/", pages.search, name="page-search"),
]
