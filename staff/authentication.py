"""API authentication: by hashed token, or by a browser session that has proved its second
factor. Kept apart from the API views: DRF imports this module while it is still setting
itself up."""

from rest_framework import exceptions
from rest_framework.authentication import (
    BaseAuthentication,
    SessionAuthentication,
    get_authorization_header,
)

from . import services
from .security import held_to_second_factor

NO_SECOND_FACTOR_TOKEN = (
    "This token was given without two-step sign-in, which your account needs. Ask for a new "
    "token with your email, password and a code from your authenticator app (otp)."
)
UNVERIFIED_SESSION = (
    "Your account needs two-step sign-in: give the code from your authenticator app on the "
    "web (/accounts/two-factor/) before using the API with this session."
)


class ApiTokenAuthentication(BaseAuthentication):
    """`Authorization: Token <key>` (or `Bearer <key>`). Looks the key up by its SHA-256.
    A token given for a password alone is refused to a person held to a second factor."""

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
        if not token.second_factor and held_to_second_factor(
            token.user, has_device=token.owner_has_device
        ):
            raise exceptions.AuthenticationFailed(
                NO_SECOND_FACTOR_TOKEN, code="second_factor_required"
            )
        return token.user, token

    def authenticate_header(self, request):
        return "Token"


class VerifiedSessionAuthentication(SessionAuthentication):
    """The browser's session, as DRF's SessionAuthentication (CSRF included), refused with a 403
    when its person is held to a second factor and the session has not proved it: the pages'
    two-step rule (staff.security.SecondFactorRequiredMiddleware) holds in the API too."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user = result[0]
        verified = getattr(user, "is_verified", None)
        if held_to_second_factor(user) and not (verified and verified()):
            raise exceptions.PermissionDenied(UNVERIFIED_SESSION, code="second_factor_required")
        return result
