from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"

    def ready(self):
        from portal.api.errors import REGARDS_STATUS_BY_CODE

        from . import codes

        REGARDS_STATUS_BY_CODE.update(codes.REGARDS_STATUS_BY_CODE)
