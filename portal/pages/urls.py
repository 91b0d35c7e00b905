from django.urls import path

from basket import pages as basket
from orders import pages as orders
from portal.catalog import pages as catalog

P = "projects/<slug:slug>"

urlpatterns = [
    path(f"{P}/", catalog.project_home, name="page-project"),
    path(f"{P}/search/", catalog.search, name="page-search"),
    path(f"{P}/basket/add", catalog.basket_add, name="page-basket-add"),
    path(f"{P}/basket/", basket.basket_page, name="page-basket"),
    path(f"{P}/basket/remove-items", basket.basket_remove_items, name="page-basket-remove-items"),
    path(f"{P}/basket/remove-dataset", basket.basket_remove_dataset, name="page-basket-remove-dataset"),
    path(f"{P}/basket/empty", basket.basket_clear, name="page-basket-empty"),
    path(f"{P}/basket/order", basket.order_create, name="page-order-create"),
    path(f"{P}/orders/", orders.order_list, name="page-orders"),
    path(f"{P}/orders/<int:order_id>/", orders.order_detail, name="page-order"),
    path(f"{P}/orders/<int:order_id>/<slug:action>", orders.order_action, name="page-order-action"),
]
