import logging
import uuid

from .base import SentMessage, SmsProvider

logger = logging.getLogger("concernline.sms")


class ConsoleProvider(SmsProvider):
    """Writes each SMS to the log instead of sending it: the embedded default."""

    def send_sms(self, *, to: str, body: str, status_callback: str | None) -> SentMessage:
        sid = f"CONSOLE{uuid.uuid4().hex}"
        logger.info("SMS %s to %s: %s", sid, to, body)
        return SentMessage(sid=sid, status="sent")
