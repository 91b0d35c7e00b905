from django.apps import AppConfig


class DeliveriesConfig(AppConfig):
    name = "deliveries"

    def ready(self):
        from portal.overview import register_panel

        from .overview import delivery_cache_panel

        register_panel("delivery-cache", delivery_cache_panel, position=30)
