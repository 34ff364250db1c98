import threading
import uuid

from .base import ProviderStatus, SentMessage, SmsProvider

_lock = threading.Lock()
outbox: list[dict] = []
calls: list[dict] = []


class OutboxProvider(SmsProvider):
    """Keeps sent messages in `outbox` and calls in `calls` in memory, like Django's locmem
    mail backend, for tests that need no network at all."""

    def send_sms(self, *, to: str, body: str, status_callback: str | None) -> SentMessage:
        sid = f"SM{uuid.uuid4().hex}"
        with _lock:
            outbox.append({"sid": sid, "to": to, "body": body, "status_callback": status_callback})
        return SentMessage(sid=sid, status="queued")

    def make_call(self, *, to: str, url: str, status_callback: str | None) -> SentMessage:
        sid = f"CA{uuid.uuid4().hex}"
        with _lock:
            calls.append({"sid": sid, "to": to, "url": url, "status_callback": status_callback})
        return SentMessage(sid=sid, status="queued")

    def fetch_status(self, *, sid: str, channel: str) -> ProviderStatus:
        return ProviderStatus(status="queued")
