"""What a provider may raise. Each provider method's docstring names which ones."""


class ProviderError(Exception):
    """Sending failed."""

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class TransientProviderError(ProviderError):
    """Nothing was sent and trying again later may work (network down, provider 5xx or 429)."""


class PermanentProviderError(ProviderError):
    """The provider refused the message and will refuse it again (an invalid number, say)."""


class UnknownOutcomeError(ProviderError):
    """The request may or may not have reached the provider (a read timeout). Sending again
    could page twice, so the attempt is marked unknown and escalation's next step covers it."""
