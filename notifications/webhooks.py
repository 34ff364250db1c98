"""Twilio signature checking. A request is accepted only when its X-Twilio-Signature matches
one of our auth tokens; with no token configured every request is refused."""

import logging

from django.conf import settings
from django.http import HttpRequest
from twilio.request_validator import RequestValidator

security_logger = logging.getLogger("django.security.twilio")


def twilio_signature_is_valid(request: HttpRequest) -> bool:
    signature = request.headers.get("X-Twilio-Signature", "")
    tokens = [t for t in (settings.TWILIO_AUTH_TOKEN, settings.TWILIO_AUTH_TOKEN_SECONDARY) if t]
    if not signature or not tokens:
        security_logger.warning(
            "Twilio webhook refused: %s", "no signature" if tokens else "no auth token configured"
        )
        return False
    url = settings.PUBLIC_BASE_URL + request.get_full_path()
    # The whole QueryDict: Twilio signs every value of a repeated key, which .dict() would drop.
    params = request.POST
    if any(RequestValidator(token).validate(url, params, signature) for token in tokens):
        return True
    security_logger.warning("Twilio webhook refused: bad signature for %s", request.path)
    return False
