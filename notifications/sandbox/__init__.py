"""Local Twilio-compatible sandbox; run it with `python -m notifications.sandbox`."""

from notifications.sandbox.server import (
    Sandbox,
    SandboxServer,
    TwilioApiError,
    start_sandbox,
)

__all__ = ["Sandbox", "SandboxServer", "TwilioApiError", "start_sandbox"]
