"""API authentication by hashed token. Kept apart from the API views: DRF imports this module
while it is still setting itself up."""

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from . import services


class ApiTokenAuthentication(BaseAuthentication):
    """`Authorization: Token <key>` (or `Bearer <key>`). Looks the key up by its SHA-256."""

    keywords = (b"token", b"bearer")

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in self.keywords:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Give one token after the word Token.")
        try:
            key = parts[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed("The token is not valid.") from None
        return self.authenticate_key(key)

    def authenticate_key(self, key: str):
        token = services.use_api_token(key)
        if token is None:
            raise exceptions.AuthenticationFailed("The token is not valid, or has expired.")
        return token.user, token

    def authenticate_header(self, request):
        return "Token"
