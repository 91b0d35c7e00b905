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


# --- error responses every operation may give -----------------------------------------------

REGARDS_PREFIX = "/api/v1/rs-"
REGARDS_ERROR = {"type": "object", "required": ["messages"],
                 "properties": {"messages": {"type": "array", "items": {"type": "string"}}}}
PROBLEM = {"type": "object", "required": ["type", "title", "status"], "additionalProperties": True,
           "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                          "detail": {"type": "string"}, "code": {"type": "string"},
                          "errors": {"type": "array", "items": {"type": "string"}}}}
OAUTH_ERROR = {"type": "object", "required": ["error"], "additionalProperties": True,
               "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}}}
COMMON_ERRORS = {
    "400": "Malformed request: bad parameter, body or `scope` missing.",
    "401": "Not authenticated (or a refusal, on REGARDS endpoints).",
    "403": "Not a member of the project, or not allowed to do this.",
    "404": "Unknown project or object (or one of another project).",
    "405": "Method not offered here.",
}
BODY_ERRORS = {"415": "Unsupported request body media type."}


def add_error_responses(result, generator, request, public):
    """drf-spectacular post-processing hook: every operation documents the errors every
    endpoint can answer (bad input 400, authentication 401, access 403, unknown 404, method
    405, body type 415, and 429 where logins are throttled), in its protocol's error body
    (REGARDS messages, OAuth errors on the token endpoint, RFC 9457 problems elsewhere)."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("RegardsErrorMessages", REGARDS_ERROR)
    components.setdefault("Problem", PROBLEM)
    components.setdefault("OAuthError", OAUTH_ERROR)
    for path, operations in result.get("paths", {}).items():
        if path.endswith("/oauth/token"):
            media, ref = "application/json", "#/components/schemas/OAuthError"
        elif path.startswith(REGARDS_PREFIX):
            media, ref = "application/json", "#/components/schemas/RegardsErrorMessages"
        else:
            media, ref = "application/problem+json", "#/components/schemas/Problem"
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            errors = dict(COMMON_ERRORS)
            if "requestBody" in operation:
                errors.update(BODY_ERRORS)
            if path.endswith("/oauth/token"):
                errors["429"] = "Too many failed logins from this client (see `Retry-After`)."
            for status_code, description in errors.items():
                response = operation["responses"].setdefault(status_code, {"description": description})
                if "content" not in response:
                    response["content"] = {media: {"schema": {"$ref": ref}}}
    return result
