"""API authentication by hashed token. Kept apart from the API views: DRF imports this module
while it is still setting itself up."""

from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from . import services
from .models import ApiToken

# How often a token's "last used" time is written: not on every request.
LAST_USED_RESOLUTION_SECONDS = 300


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
        now = timezone.now()
        token = (
            ApiToken.objects.select_related("user")
            .filter(key_hash=services.hash_api_key(key))
            .first()
        )
        if (
            token is None
            or token.revoked_at is not None
            or token.expires_at <= now
            or not token.user.is_active
        ):
            raise exceptions.AuthenticationFailed("The token is not valid, or has expired.")
        stale = token.last_used_at is None or (
            (now - token.last_used_at).total_seconds() > LAST_USED_RESOLUTION_SECONDS
        )
        if stale:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request):
        return "Token"
