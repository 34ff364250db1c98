import logging
import uuid

from .base import ProviderStatus, SentMessage, SmsProvider

logger = logging.getLogger("concernline.sms")


class ConsoleProvider(SmsProvider):
    """Writes each SMS and call to the log instead of sending it: the embedded default."""

    def send_sms(self, *, to: str, body: str, status_callback: str | None) -> SentMessage:
        sid = f"CONSOLE{uuid.uuid4().hex}"
        logger.info("SMS %s to %s: %s", sid, to, body)
        return SentMessage(sid=sid, status="sent")

    def make_call(self, *, to: str, url: str, status_callback: str | None) -> SentMessage:
        sid = f"CONSOLECA{uuid.uuid4().hex}"
        logger.info("call %s to %s: instructions at %s", sid, to, url)
        return SentMessage(sid=sid, status="queued")

    def fetch_status(self, *, sid: str, channel: str) -> ProviderStatus:
        return ProviderStatus(status="sent")
