from dataclasses import dataclass


@dataclass(frozen=True)
class SentMessage:
    sid: str
    status: str


@dataclass(frozen=True)
class ProviderStatus:
    """What the provider says now about a message or call it accepted earlier."""

    status: str
    error_code: str = ""
    answered_by: str = ""


class SmsProvider:
    """What every SMS/voice provider implements. Methods take keyword arguments only, so a
    number and a message body can never be swapped by accident."""

    def send_sms(self, *, to: str, body: str, status_callback: str | None) -> SentMessage:
        """Hand one SMS to the provider and return its id.

        Raises TransientProviderError (retry later), PermanentProviderError (give up, show why)
        or UnknownOutcomeError (it may have gone: do not resend).
        """
        raise NotImplementedError("subclasses of SmsProvider must provide a send_sms() method")

    def make_call(self, *, to: str, url: str, status_callback: str | None) -> SentMessage:
        """Start one phone call whose instructions (TwiML) are fetched from `url`, with
        answering-machine detection. Raises as send_sms does."""
        raise NotImplementedError("subclasses of SmsProvider must provide a make_call() method")

    def fetch_status(self, *, sid: str, channel: str) -> ProviderStatus:
        """The provider's current status of a message or call ("sms" or "call").
        Raises TransientProviderError when it cannot be asked now."""
        raise NotImplementedError("subclasses of SmsProvider must provide a fetch_status() method")
