"""OpenAPI descriptions of our own authentication classes (loaded by PortalConfig.ready)."""
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "portal.tenancy.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "A token from /api/v1/rs-authentication/oauth/token or `issue_token`."}


class QueryTokenScheme(OpenApiAuthenticationExtension):
    target_class = "portal.tenancy.authentication.QueryTokenAuthentication"
    name = "queryTokenAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "query", "name": "token",
                "description": "The bearer token in the link (file downloads only)."}
