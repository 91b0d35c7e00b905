from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Orderly portal"

    def ready(self) -> None:
        from portal.api import schema  # noqa: F401  registers OpenAPI extensions
