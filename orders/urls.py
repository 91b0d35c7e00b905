from django.urls import path

from . import apis, pages
from .downloads.urls import urlpatterns as downloads_urlpatterns
from .live import apis as live_apis

P = "api/v1/rs-order"

urlpatterns = [
    path(f"{P}/user/orders", apis.UserOrderListCreateApi.as_view(), name="user-orders"),
    path(f"{P}/user/orders/<int:orderId>", apis.UserOrderDetailApi.as_view(), name="user-order"),
    path(f"{P}/user/orders/pause/<int:orderId>", apis.UserOrderPauseApi.as_view(), name="user-order-pause"),
    path(f"{P}/user/orders/resume/<int:orderId>", apis.UserOrderResumeApi.as_view(), name="user-order-resume"),
    path(f"{P}/user/orders/remove/<int:orderId>", apis.UserOrderRemoveApi.as_view(), name="user-order-remove"),
    path(f"{P}/user/orders/<int:orderId>/retry", apis.UserOrderRetryApi.as_view(), name="user-order-retry"),
    path(f"{P}/user/orders/<int:orderId>/restart", apis.UserOrderRestartApi.as_view(), name="user-order-restart"),
    path(f"{P}/user/orders/<int:orderId>/extend", apis.UserOrderExtendApi.as_view(), name="user-order-extend"),
    path(f"{P}/orders", apis.AdminOrderListApi.as_view(), name="orders"),
    path(f"{P}/orders/search", apis.AdminOrderSearchApi.as_view(), name="orders-search"),
    path(f"{P}/orders/csv", apis.AdminOrderCsvApi.as_view(), name="orders-csv"),
]

urlpatterns += downloads_urlpatterns
urlpatterns += [
    path(f"{P}/user/orders/<int:orderId>/events", live_apis.UserOrderEventsApi.as_view(), name="user-order-events"),
]

# Pages (people-facing, session login).
PAGES = "projects/<slug:slug>"
urlpatterns += [
    path(f"{PAGES}/basket/order", pages.order_create, name="page-order-create"),
    path(f"{PAGES}/orders/", pages.order_list, name="page-orders"),
    path(f"{PAGES}/orders/<int:order_id>/", pages.order_detail, name="page-order"),
    path(f"{PAGES}/orders/<int:order_id>/<slug:action>", pages.order_action, name="page-order-action"),
]
