from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Orderly portal"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from portal.api import schema  # noqa: F401  registers OpenAPI extensions
        from portal.api.strict import install_strict_strings
        from portal.regex import install_sqlite_regexp

        connection_created.connect(install_sqlite_regexp, dispatch_uid="orderly-re2-regexp")
        install_strict_strings()
