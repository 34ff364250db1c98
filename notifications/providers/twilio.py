import threading
from contextlib import contextmanager

import requests
from django.conf import settings
from twilio.base.exceptions import TwilioRestException

# The SDK imports these on first use, which under load took a page a few hundred ms; a worker
# imports this module as it starts (config/celery.py), so it pays for them then.
from twilio.rest.api.v2010.account.call import CallList  # noqa: F401
from twilio.rest.api.v2010.account.message import MessageList  # noqa: F401
from urllib3.exceptions import NewConnectionError

from ..exceptions import PermanentProviderError, TransientProviderError, UnknownOutcomeError
from ..twilio_client import make_twilio_client
from .base import ProviderStatus, SentMessage, SmsProvider


@contextmanager
def _translated_errors():
    """Twilio's and the network's failures, as the provider errors services.py understands."""
    try:
        yield
    except TwilioRestException as exc:
        code = str(exc.code or exc.status)
        if exc.status >= 500 or exc.status == 429:
            raise TransientProviderError(f"Twilio answered {exc.status}", code=code) from exc
        raise PermanentProviderError(str(exc.msg)[:255], code=code) from exc
    except requests.ConnectTimeout as exc:
        raise TransientProviderError("Could not connect to Twilio in time") from exc
    except requests.ConnectionError as exc:
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        if isinstance(reason, NewConnectionError):
            raise TransientProviderError("Could not connect to Twilio") from exc
        raise UnknownOutcomeError("The connection to Twilio broke mid-request") from exc
    except requests.Timeout as exc:
        raise UnknownOutcomeError("Twilio did not answer in time") from exc


# One Twilio client per thread, kept while the settings it was made from hold: its HTTP session
# keeps the connection to Twilio open between pages (a new TCP and TLS handshake per SMS would
# cost more than the rest of the send). Per thread, because a requests session is not made to
# be shared between threads (a worker may run a thread pool).
_clients = threading.local()


class TwilioProvider(SmsProvider):
    """Sends through the real Twilio SDK. TWILIO_API_URL points it at another Twilio-compatible
    server (the local sandbox in tests and demos)."""

    def _client(self):
        key = (
            settings.TWILIO_ACCOUNT_SID,
            settings.TWILIO_AUTH_TOKEN,
            settings.TWILIO_API_URL or None,
            settings.TWILIO_TIMEOUT_SECONDS,
        )
        cached = getattr(_clients, "entry", None)
        if cached is None or cached[0] != key:
            client = make_twilio_client(
                account_sid=key[0], auth_token=key[1], api_url=key[2], timeout=key[3]
            )
            _clients.entry = cached = (key, client)
        return cached[1]

    def send_sms(self, *, to: str, body: str, status_callback: str | None) -> SentMessage:
        with _translated_errors():
            message = self._client().messages.create(
                to=to,
                from_=settings.TWILIO_FROM_NUMBER,
                body=body,
                status_callback=status_callback,
            )
        return SentMessage(sid=message.sid, status=message.status or "queued")

    def make_call(self, *, to: str, url: str, status_callback: str | None) -> SentMessage:
        with _translated_errors():
            call = self._client().calls.create(
                to=to,
                from_=settings.TWILIO_FROM_NUMBER,
                url=url,
                method="POST",
                status_callback=status_callback,
                status_callback_method="POST",
                status_callback_event=["initiated", "ringing", "answered", "completed"],
                machine_detection="Enable",
                timeout=settings.PAGING_CALL_RING_SECONDS,
            )
        return SentMessage(sid=call.sid, status=call.status or "queued")

    def fetch_status(self, *, sid: str, channel: str) -> ProviderStatus:
        try:
            with _translated_errors():
                client = self._client()
                if channel == "call":
                    call = client.calls(sid).fetch()
                    return ProviderStatus(
                        status=call.status or "", answered_by=call.answered_by or ""
                    )
                message = client.messages(sid).fetch()
                return ProviderStatus(
                    status=message.status or "", error_code=str(message.error_code or "")
                )
        except UnknownOutcomeError as exc:
            raise TransientProviderError(exc.message) from exc
