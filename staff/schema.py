"""How the API's token authentication appears in the OpenAPI schema."""

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "staff.authentication.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <key>` (or `Bearer <key>`), from POST /api/v1/auth/token/.",
        }


class VerifiedSessionScheme(OpenApiAuthenticationExtension):
    target_class = "staff.authentication.VerifiedSessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": settings.SESSION_COOKIE_NAME,
            "description": "A signed-in browser session; for roles that need two-step sign-in, "
            "one that has given its code on the web.",
        }
