from dataclasses import dataclass


@dataclass(frozen=True)
class SentMessage:
    sid: str
    status: str


class SmsProvider:
    """What every SMS provider implements. Methods take keyword arguments only, so a number and
    a message body can never be swapped by accident."""

    def send_sms(self, *, to: str, body: str, status_callback: str | None) -> SentMessage:
        """Hand one SMS to the provider and return its id.

        Raises TransientProviderError (retry later), PermanentProviderError (give up, show why)
        or UnknownOutcomeError (it may have gone: do not resend).
        """
        raise NotImplementedError("subclasses of SmsProvider must provide a send_sms() method")
