from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"

    def ready(self):
        from portal.api.errors import REGARDS_STATUS_BY_CODE

        from . import codes

        REGARDS_STATUS_BY_CODE.update(codes.REGARDS_STATUS_BY_CODE)

        from portal.overview import register_panel

        from .overview import orders_activity_panel, orders_state_panel

        register_panel("orders-activity", orders_activity_panel, position=10)
        register_panel("orders-state", orders_state_panel, position=20)
