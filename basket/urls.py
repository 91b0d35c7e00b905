from django.urls import path

from . import apis, pages

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

# Pages (people-facing, session login).
P = "projects/<slug:slug>"
urlpatterns += [
    path(f"{P}/basket/add", pages.basket_add, name="page-basket-add"),
    path(f"{P}/basket/", pages.basket_page, name="page-basket"),
    path(f"{P}/basket/remove-items", pages.basket_remove_items, name="page-basket-remove-items"),
    path(f"{P}/basket/remove-dataset", pages.basket_remove_dataset, name="page-basket-remove-dataset"),
    path(f"{P}/basket/empty", pages.basket_clear, name="page-basket-empty"),
]
