from django.urls import path

from . import apis

PREFIX = "api/v1/rs-order/order/basket"

urlpatterns = [
    path(f"{PREFIX}", apis.BasketApi.as_view(), name="basket"),
    path(f"{PREFIX}/selection", apis.BasketSelectionAddApi.as_view(), name="basket-selection-add"),
    path(f"{PREFIX}/dataset/<int:datasetSelectionId>/updateFileFilters",
         apis.BasketFileFiltersUpdateApi.as_view(), name="basket-dataset-file-filters"),
    path(f"{PREFIX}/dataset/<int:datasetSelectionId>/<str:itemsSelectionDate>",
         apis.BasketItemsSelectionRemoveApi.as_view(), name="basket-items-selection-remove"),
    path(f"{PREFIX}/dataset/<int:datasetSelectionId>",
         apis.BasketDatasetSelectionRemoveApi.as_view(), name="basket-dataset-selection-remove"),
]
