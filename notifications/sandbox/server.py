"""A local, in-memory, Twilio-compatible server: "the sandbox".

It answers the slice of Twilio's REST API that Concernline uses (Messages and Calls), sends
the app Twilio-style signed webhooks (inbound SMS, message and call status callbacks, and a
call's TwiML fetches and key presses when it "answers" a call), offers a JSON control API for
tests and benchmarks, and serves a phone-simulator page for humans.

It stands in for Twilio's cloud so the real `twilio` SDK and the app's real webhook views are
exercised end to end. Stdlib plus `twilio` (only to sign webhooks) and no Django, so it runs
standalone: `python -m notifications.sandbox`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import html
import http.client
import json
import logging
import math
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urljoin, urlsplit
from xml.etree import ElementTree

from twilio.request_validator import RequestValidator

logger = logging.getLogger(__name__)

API_VERSION = "2010-04-01"
INBOUND_SMS_PATH = "/twilio/sms/inbound/"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8026
DEFAULT_APP_URL = "http://127.0.0.1:8000"
DEFAULT_ACCOUNT_SID = "AC" + "0" * 32
DEFAULT_AUTH_TOKEN = "sandbox-auth-token"
DEFAULT_FROM_NUMBER = "+447700900000"
DEFAULT_DELIVERY_DELAY_SECONDS = 0.05
WEBHOOK_TIMEOUT_SECONDS = 10.0
PAGE_REFRESH_SECONDS = 5
SHUTDOWN_POLL_SECONDS = 0.02

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
SIGNATURE_MODES = ("valid", "bad", "missing")
SETTABLE_STATUSES = ("sent", "delivered", "undelivered", "failed")
UNANSWERED_CALL_STATUSES = ("no-answer", "busy", "failed")
MACHINE_ANSWER = "machine_end_beep"
MAX_TWIML_HOPS = 6
# How long a call rings before Twilio gives up with "no-answer": its `Timeout` parameter, a
# positive whole number of seconds (else error 21208), 60 unless given, at most 600.
DEFAULT_RING_SECONDS = 60
MAX_RING_SECONDS = 600
UNREACHABLE_ERROR_CODE = 30003
# Twilio's default opt-out and opt-in keywords: after one of the first, Twilio refuses to send
# to the phone (error 21610) until it sends one of the second.
OPT_OUT_WORDS = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT")
OPT_IN_WORDS = ("START", "YES", "UNSTOP")
ERROR_MESSAGES = {
    30003: "Unreachable destination handset",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
}

Form = dict[str, list[str]]


class TwilioApiError(Exception):
    """An error reported the way Twilio's REST API does, so the SDK raises TwilioRestException."""

    def __init__(self, *, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def payload(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }


def injected_error(status: int) -> TwilioApiError:
    """The error for an injected fault; Twilio's generic codes are 20000 + HTTP status."""
    return TwilioApiError(status=status, code=20000 + status, message=HTTPStatus(status).phrase)


def not_found(path: str) -> TwilioApiError:
    return TwilioApiError(
        status=404, code=20404, message=f"The requested resource {path} was not found"
    )


def new_sid(prefix: str) -> str:
    """A Twilio-shaped SID: two-letter prefix plus 32 hex digits."""
    return prefix + secrets.token_hex(16)


def utcnow() -> datetime:
    return datetime.now(UTC)


def rfc2822(moment: datetime | None) -> str | None:
    """Twilio's REST API dates are RFC 2822 strings, which the SDK parses back."""
    return format_datetime(moment) if moment else None


def count_segments(body: str) -> int:
    """Approximates Twilio's SMS segmentation: GSM-7 sizes for ASCII bodies, UCS-2 otherwise."""
    single, per_part = (160, 153) if body.isascii() else (70, 67)
    return 1 if len(body) <= single else math.ceil(len(body) / per_part)


def first(form: Form, key: str) -> str:
    """First value of a form field, or "" like an absent optional Twilio parameter."""
    values = form.get(key)
    return values[0] if values else ""


def parse_basic_auth(header: str | None) -> tuple[str, str] | None:
    """(username, password) from an HTTP Basic `Authorization` header, else None."""
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, separator, password = decoded.partition(":")
    return (username, password) if separator else None


def parse_twiml_messages(twiml: str) -> list[tuple[str | None, str]]:
    """(`to` attribute, text) of each `<Message>` in the app's TwiML; [] if it is not XML."""
    try:
        # The document is the reply of the app under test, not third-party input.
        root = ElementTree.fromstring(twiml)  # noqa: S314
    except ElementTree.ParseError:
        return []
    replies = []
    for element in root.iter("Message"):
        body = element.findtext("Body")
        text = body if body is not None else (element.text or "")
        replies.append((element.get("to"), text.strip()))
    return replies


@dataclass(frozen=True)
class VoiceStep:
    """What one TwiML document told the caller: the words said, where a key press goes
    (the <Gather> action, None if there is no Gather), where to go next (<Redirect>), and
    whether it hung up."""

    said: list[str]
    gather_action: str | None
    redirect: str | None
    hangup: bool


def parse_voice_twiml(twiml: str) -> VoiceStep:
    try:
        # The document is the reply of the app under test, not third-party input.
        root = ElementTree.fromstring(twiml)  # noqa: S314
    except ElementTree.ParseError:
        return VoiceStep(said=[], gather_action=None, redirect=None, hangup=True)
    said = [(element.text or "").strip() for element in root.iter("Say")]
    gather = root.find("Gather")
    redirect = root.find("Redirect")
    return VoiceStep(
        said=said,
        gather_action=None if gather is None else gather.get("action", ""),
        redirect=None if redirect is None else (redirect.text or "").strip(),
        hangup=root.find("Hangup") is not None,
    )


@dataclass(frozen=True)
class WebhookResult:
    """What the app answered to a webhook; `status` is None when it could not be reached."""

    status: int | None
    body: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def post_form(
    url: str, params: Mapping[str, str], *, signature: str | None, timeout: float
) -> WebhookResult:
    """POST a form the way Twilio does: signed, no redirects followed, no proxies."""
    parts = urlsplit(url)
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_class(parts.netloc, timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": "TwilioProxy/1.1 (Concernline sandbox)",
    }
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    try:
        connection.request("POST", target, body=urlencode(params), headers=headers)
        response = connection.getresponse()
        return WebhookResult(
            status=response.status, body=response.read().decode("utf-8", "replace")
        )
    except (OSError, http.client.HTTPException) as exc:
        return WebhookResult(status=None, error=f"{type(exc).__name__}: {exc}")
    finally:
        connection.close()


@dataclass
class Message:
    """An SMS: created through the REST API, received from a phone, or a TwiML reply."""

    sid: str
    account_sid: str
    to: str
    from_: str
    body: str
    direction: str
    status: str
    created_at: datetime
    request_received_at: float
    status_callback: str | None = None
    messaging_service_sid: str | None = None
    error_code: int | None = None
    sent_at: datetime | None = None
    updated_at: datetime = field(default_factory=utcnow)

    @property
    def uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}.json"

    def resource(self) -> dict[str, Any]:
        """The Message resource as Twilio's REST API returns it (fields MessageInstance reads)."""
        uri_base = self.uri.removesuffix(".json")
        return {
            "sid": self.sid,
            "account_sid": self.account_sid,
            "messaging_service_sid": self.messaging_service_sid,
            "to": self.to,
            "from": self.from_,
            "body": self.body,
            "status": self.status,
            "direction": self.direction,
            "num_segments": str(count_segments(self.body)),
            "num_media": "0",
            "date_created": rfc2822(self.created_at),
            "date_updated": rfc2822(self.updated_at),
            "date_sent": rfc2822(self.sent_at),
            "error_code": self.error_code,
            "error_message": ERROR_MESSAGES.get(self.error_code or 0),
            "price": None,
            "price_unit": "USD",
            "api_version": API_VERSION,
            "uri": self.uri,
            "subresource_uris": {
                "media": f"{uri_base}/Media.json",
                "feedback": f"{uri_base}/Feedback.json",
            },
        }

    def summary(self) -> dict[str, Any]:
        """The control API's view, with the timing data benchmarks need."""
        return {
            "sid": self.sid,
            "account_sid": self.account_sid,
            "direction": self.direction,
            "to": self.to,
            "from": self.from_,
            "body": self.body,
            "status": self.status,
            "error_code": self.error_code,
            "status_callback": self.status_callback,
            "messaging_service_sid": self.messaging_service_sid,
            "num_segments": count_segments(self.body),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "request_received_at": self.request_received_at,
        }

    def status_callback_params(self) -> dict[str, str]:
        params = {
            "MessageSid": self.sid,
            "MessageStatus": self.status,
            "SmsSid": self.sid,
            "SmsStatus": self.status,
            "AccountSid": self.account_sid,
            "From": self.from_,
            "To": self.to,
            "ApiVersion": API_VERSION,
        }
        if self.error_code is not None:
            params["ErrorCode"] = str(self.error_code)
        if self.messaging_service_sid:
            params["MessagingServiceSid"] = self.messaging_service_sid
        return params

    def inbound_webhook_params(self) -> dict[str, str]:
        return {
            "MessageSid": self.sid,
            "SmsMessageSid": self.sid,
            "SmsSid": self.sid,
            "AccountSid": self.account_sid,
            "From": self.from_,
            "To": self.to,
            "Body": self.body,
            "NumMedia": "0",
            "NumSegments": str(count_segments(self.body)),
            "SmsStatus": "received",
            "ApiVersion": API_VERSION,
        }


@dataclass
class Call:
    """An outbound call created through the REST API; the simulator answers it (fetching the
    app's TwiML, pressing keys), lets it go to voicemail, or ends it unanswered."""

    sid: str
    account_sid: str
    to: str
    from_: str
    url: str
    twiml: str
    status_callback: str | None
    status_callback_events: list[str]
    machine_detection: str | None
    created_at: datetime
    request_received_at: float
    ring_seconds: int = DEFAULT_RING_SECONDS
    status: str = "queued"
    answered_by: str | None = None
    digits: str = ""
    said: list[str] = field(default_factory=list)
    webhooks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{self.sid}.json"

    def resource(self) -> dict[str, Any]:
        """The Call resource as Twilio's REST API returns it (fields CallInstance reads)."""
        uri_base = self.uri.removesuffix(".json")
        return {
            "sid": self.sid,
            "account_sid": self.account_sid,
            "parent_call_sid": None,
            "to": self.to,
            "to_formatted": self.to,
            "from": self.from_,
            "from_formatted": self.from_,
            "phone_number_sid": None,
            "status": self.status,
            "direction": "outbound-api",
            "date_created": rfc2822(self.created_at),
            "date_updated": rfc2822(self.created_at),
            "start_time": None,
            "end_time": None,
            "duration": None,
            "price": None,
            "price_unit": "USD",
            "answered_by": self.answered_by,
            "api_version": API_VERSION,
            "forwarded_from": None,
            "group_sid": None,
            "caller_name": None,
            "queue_time": "0",
            "trunk_sid": None,
            "uri": self.uri,
            "subresource_uris": {
                "notifications": f"{uri_base}/Notifications.json",
                "recordings": f"{uri_base}/Recordings.json",
            },
        }

    def summary(self) -> dict[str, Any]:
        return {
            "sid": self.sid,
            "account_sid": self.account_sid,
            "to": self.to,
            "from": self.from_,
            "status": self.status,
            "url": self.url or None,
            "twiml": self.twiml or None,
            "status_callback": self.status_callback,
            "status_callback_event": self.status_callback_events,
            "machine_detection": self.machine_detection,
            "timeout": self.ring_seconds,
            "answered_by": self.answered_by,
            "digits": self.digits,
            "said": list(self.said),
            "webhooks": list(self.webhooks),
            "created_at": self.created_at.isoformat(),
            "request_received_at": self.request_received_at,
        }


@dataclass
class InboundExchange:
    """An SMS a phone sent to the app, and what the app answered."""

    message: Message
    signature: str
    app_status: int | None = None
    app_body: str = ""
    error: str | None = None
    replies: list[Message] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            **self.message.summary(),
            "signature": self.signature,
            "app_status": self.app_status,
            "app_body": self.app_body,
            "error": self.error,
            "replies": [reply.summary() for reply in self.replies],
        }


@dataclass(frozen=True)
class ThreadEntry:
    """One line of a phone's conversation on the simulator page."""

    at: datetime
    phone: str
    counterpart: str
    kind: str  # "outbound" (app -> phone), "reply", "inbound" (phone -> app) or "call"
    text: str
    status: str
    sid: str


class Sandbox:
    """All sandbox state and behaviour, independent of HTTP.

    State lives in memory behind one lock; the lock is never held during network I/O,
    because the app may call the REST API while it handles a webhook from us.
    """

    def __init__(
        self,
        *,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        app_url: str = DEFAULT_APP_URL,
        from_number: str = DEFAULT_FROM_NUMBER,
        auto_deliver: bool = True,
        delivery_delay: float = DEFAULT_DELIVERY_DELAY_SECONDS,
        unreachable: Iterable[str] = (),
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.app_url = app_url.rstrip("/")
        self.from_number = from_number
        self.auto_deliver = auto_deliver
        self.delivery_delay = delivery_delay
        self._configured_unreachable = frozenset(unreachable)
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._clear()

    def _clear(self) -> None:
        self._messages: dict[str, Message] = {}
        self._calls: dict[str, Call] = {}
        self._inbound: list[InboundExchange] = []
        self._faults: dict[str, deque[int]] = {"messages": deque(), "calls": deque()}
        self._fault_delay = 0.0
        self._unreachable = set(self._configured_unreachable)
        self._unsubscribed: set[str] = set()

    def reset(self) -> None:
        """Forget everything recorded and every injected fault (configuration stays)."""
        with self._lock:
            self._clear()

    def close(self) -> None:
        """Stop pending automatic deliveries; used when the server shuts down."""
        self._closed.set()

    # REST API -----------------------------------------------------------------------------

    def authenticate(self, *, authorization: str | None, account_sid: str) -> None:
        """Require Basic auth as this account, for this account's URLs, like Twilio."""
        credentials = parse_basic_auth(authorization)
        valid = (
            credentials is not None
            and credentials[0] == self.account_sid == account_sid
            and hmac.compare_digest(credentials[1].encode(), self.auth_token.encode())
        )
        if not valid:
            raise TwilioApiError(status=401, code=20003, message="Authenticate")

    def create_message(self, *, form: Form, received_at: float) -> dict[str, Any]:
        self._apply_fault("messages")
        to, from_, body = first(form, "To"), first(form, "From"), first(form, "Body")
        service_sid = first(form, "MessagingServiceSid") or None
        if not E164.match(to):
            raise TwilioApiError(
                status=400, code=21211, message=f"The 'To' number {to} is not a valid phone number."
            )
        if not from_ and not service_sid:
            raise TwilioApiError(
                status=400, code=21603, message="A 'From' phone number is required."
            )
        if not body and not form.get("MediaUrl") and not form.get("ContentSid"):
            raise TwilioApiError(status=400, code=21602, message="Message body is required.")
        with self._lock:
            unsubscribed = to in self._unsubscribed
        if unsubscribed:
            raise TwilioApiError(
                status=400, code=21610, message="Attempt to send to unsubscribed recipient"
            )
        now = utcnow()
        message = Message(
            sid=new_sid("SM"),
            account_sid=self.account_sid,
            to=to,
            from_=from_ or self.from_number,
            body=body,
            direction="outbound-api",
            status="queued",
            created_at=now,
            updated_at=now,
            request_received_at=received_at,
            status_callback=first(form, "StatusCallback") or None,
            messaging_service_sid=service_sid,
        )
        with self._lock:
            self._messages[message.sid] = message
            resource = message.resource()
        if self.auto_deliver:
            threading.Thread(target=self._deliver, args=(message.sid,), daemon=True).start()
        return resource

    def fetch_message(self, *, sid: str) -> dict[str, Any]:
        with self._lock:
            message = self._messages.get(sid)
            if message is None:
                raise not_found(f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json")
            return message.resource()

    def create_call(self, *, form: Form, received_at: float) -> dict[str, Any]:
        self._apply_fault("calls")
        to, from_ = first(form, "To"), first(form, "From")
        url, twiml = first(form, "Url"), first(form, "Twiml")
        if not E164.match(to):
            raise TwilioApiError(
                status=400, code=21211, message=f"The 'To' number {to} is not a valid phone number."
            )
        if not from_:
            raise TwilioApiError(status=400, code=21213, message="Caller phone number is required.")
        has_instructions = twiml or first(form, "ApplicationSid")
        if not has_instructions and not url.startswith(("http://", "https://")):
            raise TwilioApiError(status=400, code=21205, message=f"Url is not a valid URL: {url}")
        timeout = first(form, "Timeout") or str(DEFAULT_RING_SECONDS)
        if not timeout.isdigit() or int(timeout) < 1:
            raise TwilioApiError(
                status=400, code=21208, message=f"Timeout must be a positive integer: {timeout}"
            )
        call = Call(
            sid=new_sid("CA"),
            account_sid=self.account_sid,
            to=to,
            from_=from_,
            url=url,
            twiml=twiml,
            status_callback=first(form, "StatusCallback") or None,
            status_callback_events=form.get("StatusCallbackEvent", []),
            machine_detection=first(form, "MachineDetection") or None,
            created_at=utcnow(),
            request_received_at=received_at,
            ring_seconds=min(int(timeout), MAX_RING_SECONDS),
        )
        with self._lock:
            self._calls[call.sid] = call
            resource = call.resource()
        if self.auto_deliver:
            threading.Thread(target=self._ring, args=(call.sid,), daemon=True).start()
        return resource

    def fetch_call(self, *, sid: str) -> dict[str, Any]:
        with self._lock:
            call = self._calls.get(sid)
            if call is None:
                raise not_found(f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{sid}.json")
            return call.resource()

    # Faults -------------------------------------------------------------------------------

    def set_faults(
        self,
        *,
        messages: Iterable[int] | None = None,
        calls: Iterable[int] | None = None,
        delay: float | None = None,
        unreachable: Iterable[str] | None = None,
    ) -> dict[str, Any]:
        """Replace the given fault settings; the status queues are consumed one per create."""
        queues = {"messages": messages, "calls": calls}
        for statuses in queues.values():
            for status in statuses or ():
                if not isinstance(status, int) or not 400 <= status <= 599:
                    raise ValueError(f"fault statuses must be HTTP error codes, got {status!r}")
        if delay is not None and delay < 0:
            raise ValueError("delay must not be negative")
        with self._lock:
            for kind, statuses in queues.items():
                if statuses is not None:
                    self._faults[kind] = deque(statuses)
            if delay is not None:
                self._fault_delay = float(delay)
            if unreachable is not None:
                self._unreachable = set(unreachable)
            return self._faults_summary()

    def _faults_summary(self) -> dict[str, Any]:
        return {
            "messages": list(self._faults["messages"]),
            "calls": list(self._faults["calls"]),
            "delay": self._fault_delay,
            "unreachable": sorted(self._unreachable),
        }

    def _apply_fault(self, kind: str) -> None:
        """Sleep for the injected delay, then fail if a status is queued for this resource."""
        with self._lock:
            status = self._faults[kind].popleft() if self._faults[kind] else None
            delay = self._fault_delay
        if delay:
            time.sleep(delay)
        if status is not None:
            raise injected_error(status)

    # Webhooks to the app ------------------------------------------------------------------

    def signature_for(self, url: str, params: Mapping[str, str], *, mode: str) -> str | None:
        """Twilio's X-Twilio-Signature; "bad" signs with the wrong token, "missing" omits it."""
        if mode == "missing":
            return None
        token = self.auth_token if mode == "valid" else f"{self.auth_token}-forged"
        return RequestValidator(token).compute_signature(url, params)

    def _post_webhook(self, url: str, params: Mapping[str, str], *, mode: str) -> WebhookResult:
        signature = self.signature_for(url, params, mode=mode)
        result = post_form(url, params, signature=signature, timeout=WEBHOOK_TIMEOUT_SECONDS)
        logger.info("webhook %s -> %s %s", url, result.status, result.error or "")
        return result

    def send_inbound(
        self, *, from_: str, body: str, to: str | None = None, signature: str = "valid"
    ) -> InboundExchange:
        """Deliver an SMS from a phone to the app's inbound webhook and record its reply."""
        if not from_:
            raise ValueError("From is required")
        if signature not in SIGNATURE_MODES:
            raise ValueError(f"signature must be one of {', '.join(SIGNATURE_MODES)}")
        now = utcnow()
        message = Message(
            sid=new_sid("SM"),
            account_sid=self.account_sid,
            to=to or self.from_number,
            from_=from_,
            body=body,
            direction="inbound",
            status="received",
            created_at=now,
            updated_at=now,
            request_received_at=time.time(),
        )
        exchange = InboundExchange(message=message, signature=signature)
        word = body.strip().upper()
        with self._lock:
            self._inbound.append(exchange)
            # Like Twilio's standard opt-out: the carrier-side block holds whatever the app
            # makes of the message, until the phone opts in again.
            if word in OPT_OUT_WORDS:
                self._unsubscribed.add(from_)
            elif word in OPT_IN_WORDS:
                self._unsubscribed.discard(from_)
        url = self.app_url + INBOUND_SMS_PATH
        result = self._post_webhook(url, message.inbound_webhook_params(), mode=signature)
        replies = self._replies_to(message, result.body) if result.ok else []
        with self._lock:
            exchange.app_status = result.status
            exchange.app_body = result.body
            exchange.error = result.error
            exchange.replies = replies
        return exchange

    def _replies_to(self, inbound: Message, twiml: str) -> list[Message]:
        now = utcnow()
        return [
            Message(
                sid=new_sid("SM"),
                account_sid=self.account_sid,
                to=to or inbound.from_,
                from_=inbound.to,
                body=text,
                direction="outbound-reply",
                status="sent",
                created_at=now,
                updated_at=now,
                sent_at=now,
                request_received_at=time.time(),
            )
            for to, text in parse_twiml_messages(twiml)
        ]

    def update_status(
        self, *, sid: str, status: str, error_code: int | None = None
    ) -> WebhookResult | None:
        """Record a delivery status and send the signed status callback, if one was asked for."""
        if status not in SETTABLE_STATUSES:
            raise ValueError(f"status must be one of {', '.join(SETTABLE_STATUSES)}")
        with self._lock:
            message = self._messages.get(sid)
            if message is None:
                raise not_found(f"/_sandbox/messages/{sid}")
            message.status = status
            message.error_code = error_code
            message.updated_at = utcnow()
            if status == "sent":
                message.sent_at = message.updated_at
            callback = message.status_callback
            params = message.status_callback_params()
        if callback is None:
            return None
        return self._post_webhook(callback, params, mode="valid")

    # Calls: the phone simulator's side ---------------------------------------------------

    def _call_params(self, call: Call, **extra: str) -> dict[str, str]:
        params = {
            "CallSid": call.sid,
            "AccountSid": call.account_sid,
            "From": call.from_,
            "To": call.to,
            "Direction": "outbound-api",
            "ApiVersion": API_VERSION,
            "CallStatus": call.status,
        }
        if call.answered_by:
            params["AnsweredBy"] = call.answered_by
        params.update(extra)
        return params

    def _get_call(self, sid: str) -> Call:
        call = self._calls.get(sid)
        if call is None:
            raise not_found(f"/_sandbox/calls/{sid}")
        return call

    def _call_webhook(
        self, call: Call, url: str, *, signature: str = "valid", **extra: str
    ) -> WebhookResult:
        with self._lock:
            params = self._call_params(call, **extra)
        result = self._post_webhook(url, params, mode=signature)
        with self._lock:
            call.webhooks.append({"url": url, "params": params, "status": result.status})
        return result

    def call_status_callback(
        self, *, sid: str, status: str, signature: str = "valid", only_from: str | None = None
    ) -> WebhookResult | None:
        """Set a call's status and send its signed status callback (queued, ringing,
        in-progress, completed, busy, no-answer, failed); with `only_from`, only if the call
        is still in that status."""
        with self._lock:
            call = self._get_call(sid)
            if only_from is not None and call.status != only_from:
                return None
            call.status = status
            callback = call.status_callback
        if not callback:
            return None
        return self._call_webhook(call, callback, signature=signature)

    def answer_call(
        self, *, sid: str, digits: str = "", machine: bool = False, signature: str = "valid"
    ) -> dict[str, Any]:
        """Answer a call as a person who presses `digits` one by one at each <Gather> (or none),
        or as an answering machine (`machine`): fetch the TwiML from the app's voice URL,
        follow Gather actions and Redirects, record what was said, then hang up and send the
        "completed" status callback. Every request is signed like Twilio's."""
        with self._lock:
            call = self._get_call(sid)
            if call.status not in ("queued", "initiated", "ringing"):
                raise ValueError(f"call {sid} is {call.status}, not ringing")
            call.status = "in-progress"
            call.answered_by = MACHINE_ANSWER if machine else "human"
            url = call.url
        if call.status_callback:
            self._call_webhook(call, call.status_callback)
        keys = list(digits)
        next_url: str | None = url
        extra: dict[str, str] = {}
        for _hop in range(MAX_TWIML_HOPS):
            if not next_url:
                break
            result = self._call_webhook(call, next_url, signature=signature, **extra)
            if not result.ok:
                break
            step = parse_voice_twiml(result.body)
            with self._lock:
                call.said.extend(step.said)
            extra = {}
            if step.hangup:
                break
            if step.gather_action is not None and keys:
                key = keys.pop(0)
                with self._lock:
                    call.digits += key
                next_url = urljoin(next_url, step.gather_action or next_url)
                extra = {"Digits": key}
            elif step.redirect and keys:
                next_url = urljoin(next_url, step.redirect)
            else:
                break  # nothing more to press: the phone hangs up
        self.call_status_callback(sid=sid, status="completed")
        with self._lock:
            return call.summary()

    def end_call_unanswered(self, *, sid: str, status: str) -> WebhookResult | None:
        """The call is not answered: "no-answer", "busy" or "failed"."""
        if status not in UNANSWERED_CALL_STATUSES:
            raise ValueError(f"status must be one of {', '.join(UNANSWERED_CALL_STATUSES)}")
        with self._lock:
            call = self._get_call(sid)
            if call.status not in ("queued", "initiated", "ringing"):
                raise ValueError(f"call {sid} is {call.status}, not ringing")
        return self.call_status_callback(sid=sid, status=status)

    def _ring(self, sid: str) -> None:
        """A new call starts ringing after the delivery delay, as Twilio's would, and ends
        "no-answer" if nobody answers it within its `Timeout`."""
        if self._closed.wait(self.delivery_delay):
            return
        try:
            self.call_status_callback(sid=sid, status="ringing", only_from="queued")
            with self._lock:
                ring_seconds = self._get_call(sid).ring_seconds
            if self._closed.wait(ring_seconds):
                return
            self.call_status_callback(sid=sid, status="no-answer", only_from="ringing")
        except TwilioApiError:  # forgotten by a reset meanwhile
            return

    def _deliver(self, sid: str) -> None:
        """Walk a new message through sent -> delivered (undelivered for unreachable numbers)."""
        with self._lock:
            unreachable = sid in self._messages and self._messages[sid].to in self._unreachable
        final = ("undelivered", UNREACHABLE_ERROR_CODE) if unreachable else ("delivered", None)
        for status, error_code in (("sent", None), final):
            if self._closed.wait(self.delivery_delay):
                return
            try:
                self.update_status(sid=sid, status=status, error_code=error_code)
            except TwilioApiError:  # forgotten by a reset meanwhile
                return

    # Views for the control API and the simulator -----------------------------------------

    def list_messages(self, *, to: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [m.summary() for m in self._messages.values() if to in (None, m.to)]

    def list_calls(self, *, to: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [c.summary() for c in self._calls.values() if to in (None, c.to)]

    def list_inbound(self) -> list[dict[str, Any]]:
        with self._lock:
            return [exchange.summary() for exchange in self._inbound]

    def phone_threads(self) -> dict[str, list[ThreadEntry]]:
        """Each phone's SMS and calls in time order, most recently active phone first."""
        with self._lock:
            entries = [outbound_entry(m) for m in self._messages.values()]
            entries += [call_entry(c) for c in self._calls.values()]
            for exchange in self._inbound:
                entries.append(inbound_entry(exchange))
                entries += [reply_entry(r) for r in exchange.replies]
        threads: dict[str, list[ThreadEntry]] = {}
        for entry in sorted(entries, key=lambda e: e.at):
            threads.setdefault(entry.phone, []).append(entry)
        return dict(sorted(threads.items(), key=lambda item: item[1][-1].at, reverse=True))


def outbound_entry(message: Message) -> ThreadEntry:
    error = f" (error {message.error_code})" if message.error_code else ""
    return ThreadEntry(
        at=message.created_at,
        phone=message.to,
        counterpart=message.from_,
        kind="outbound",
        text=message.body,
        status=message.status + error,
        sid=message.sid,
    )


def reply_entry(message: Message) -> ThreadEntry:
    return ThreadEntry(
        at=message.created_at,
        phone=message.to,
        counterpart=message.from_,
        kind="reply",
        text=message.body,
        status=message.status,
        sid=message.sid,
    )


def inbound_entry(exchange: InboundExchange) -> ThreadEntry:
    message = exchange.message
    if exchange.app_status is None:
        outcome = f"app unreachable: {exchange.error}" if exchange.error else "sending…"
    else:
        outcome = f"app answered {exchange.app_status}"
    if exchange.signature != "valid":
        outcome += f", signature {exchange.signature}"
    return ThreadEntry(
        at=message.created_at,
        phone=message.from_,
        counterpart=message.to,
        kind="inbound",
        text=message.body,
        status=outcome,
        sid=message.sid,
    )


def call_entry(call: Call) -> ThreadEntry:
    return ThreadEntry(
        at=call.created_at,
        phone=call.to,
        counterpart=call.from_,
        kind="call",
        text=" ".join(call.said) or "(ringing: answer it below)",
        status=call.status
        + (f", {call.answered_by}" if call.answered_by else "")
        + (f", pressed {call.digits}" if call.digits else ""),
        sid=call.sid,
    )


# Simulator page ---------------------------------------------------------------------------

PAGE_CSS = """
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:44rem;padding:1rem;background:#f4f4f6}
h1{font-size:1.3rem;margin:0 0 .25rem}h2{font-size:1.05rem;margin:0 0 .5rem}
.note{color:#555;font-size:.85rem;margin:.25rem 0 1rem}
section,.compose{background:#fff;border-radius:.75rem;padding:.75rem;margin-bottom:1rem;
box-shadow:0 1px 3px rgba(0,0,0,.12)}
ol{list-style:none;padding:0;margin:0 0 .75rem}
li{margin:.4rem 0;padding:.5rem .7rem;border-radius:.9rem;max-width:85%}
.outbound,.reply{background:#e9e9eb}
.inbound{background:#0b84ff;color:#fff;margin-left:auto}
.inbound .meta{color:#e6f0ff}
.call{background:#fff4d6;border:1px dashed #d9a400}
.meta{font-size:.72rem;color:#555;margin-bottom:.2rem}
.text{white-space:pre-wrap;word-wrap:break-word}
form{display:flex;gap:.4rem;flex-wrap:wrap;margin:.3rem 0 0}
input[name=Body],input[name=From]{flex:1;min-width:8rem;padding:.5rem;font-size:1rem}
button{padding:.35rem .7rem;font-size:.85rem}
"""

PAGE_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{refresh}
<title>Concernline Twilio sandbox</title>
<style>{css}</style>
</head>
<body>
<h1>Concernline Twilio sandbox</h1>
<p class="note">Phones that Concernline texted or called, and phones that texted it.
Times are UTC. {refresh_link}</p>
<div class="compose">
<h2>Text Concernline from any phone</h2>
<form method="post" action="/_sandbox/inbound">
<input type="hidden" name="redirect" value="1">
<input type="hidden" name="To" value="{from_number}">
<input name="From" required placeholder="+447700900123" inputmode="tel" autocomplete="off">
<input name="Body" required placeholder="Message" autocomplete="off">
<button>Send</button>
</form>
</div>
{sections}
</body>
</html>
"""

SECTION_TEMPLATE = """<section>
<h2>{phone}</h2>
<ol>
{entries}
</ol>
<form method="post" action="/_sandbox/inbound">
<input type="hidden" name="redirect" value="1">
<input type="hidden" name="From" value="{phone}">
<input type="hidden" name="To" value="{counterpart}">
<input name="Body" required placeholder="Reply as {phone}" autocomplete="off">
<button>Send</button>
</form>
</section>"""

ENTRY_TEMPLATE = """<li class="{kind}">
<div class="meta">{label} · {time} · {status}</div>
<div class="text">{text}</div>
{actions}
</li>"""

STATUS_BUTTON_TEMPLATE = """<form method="post" action="/_sandbox/messages/{sid}/status">
<input type="hidden" name="redirect" value="1">
<input type="hidden" name="status" value="{status}">
<input type="hidden" name="error_code" value="{error_code}">
<button>{status}</button>
</form>"""

ENTRY_LABELS = {
    "outbound": "SMS from Concernline",
    "reply": "SMS reply from Concernline",
    "inbound": "SMS to Concernline",
    "call": "Call from Concernline",
}
STATUS_BUTTONS = (("delivered", ""), ("undelivered", "30003"), ("failed", "30008"))


def escape(value: object) -> str:
    return html.escape(str(value), quote=True)


CALL_BUTTON_TEMPLATE = """<form method="post" action="/_sandbox/calls/{sid}/{action}">
<input type="hidden" name="redirect" value="1">
{fields}
<button>{label}</button>
</form>"""

CALL_BUTTONS = (
    ("answer", {"digits": "1"}, "Answer, press 1"),
    ("answer", {"digits": "2"}, "Answer, press 2"),
    ("answer", {"digits": "91"}, "Answer, press 9 then 1"),
    ("answer", {"digits": ""}, "Answer, press nothing"),
    ("answer", {"machine": "1"}, "Voicemail"),
    ("unanswered", {"status": "no-answer"}, "No answer"),
    ("unanswered", {"status": "busy"}, "Busy"),
    ("unanswered", {"status": "failed"}, "Fail"),
)


def render_call_actions(entry: ThreadEntry) -> str:
    if not entry.status.startswith(("queued", "ringing", "initiated")):
        return ""
    return "\n".join(
        CALL_BUTTON_TEMPLATE.format(
            sid=escape(quote(entry.sid, safe="")),
            action=action,
            fields="".join(
                f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
                for k, v in fields.items()
            ),
            label=escape(label),
        )
        for action, fields, label in CALL_BUTTONS
    )


def render_entry(entry: ThreadEntry) -> str:
    actions = ""
    if entry.kind == "call":
        actions = render_call_actions(entry)
    if entry.kind == "outbound":
        actions = "\n".join(
            STATUS_BUTTON_TEMPLATE.format(
                sid=escape(quote(entry.sid, safe="")),
                status=escape(status),
                error_code=escape(error_code),
            )
            for status, error_code in STATUS_BUTTONS
        )
    return ENTRY_TEMPLATE.format(
        kind=escape(entry.kind),
        label=escape(ENTRY_LABELS[entry.kind]),
        time=escape(entry.at.strftime("%H:%M:%S")),
        status=escape(entry.status),
        text=escape(entry.text),
        actions=actions,
    )


def render_simulator(
    threads: Mapping[str, list[ThreadEntry]], *, from_number: str, refresh: bool
) -> str:
    """The phone simulator: plain HTML forms, so it works without JavaScript."""
    sections = [
        SECTION_TEMPLATE.format(
            phone=escape(phone),
            counterpart=escape(entries[-1].counterpart),
            entries="\n".join(render_entry(entry) for entry in entries),
        )
        for phone, entries in threads.items()
    ]
    if refresh:
        meta = f'<meta http-equiv="refresh" content="{PAGE_REFRESH_SECONDS}">'
        link = '<a href="/?refresh=0">Pause auto-refresh</a> (to type without interruption).'
    else:
        meta, link = "", '<a href="/">Resume auto-refresh</a>.'
    return PAGE_TEMPLATE.format(
        refresh=meta,
        refresh_link=link,
        css=PAGE_CSS,
        from_number=escape(from_number),
        sections="\n".join(sections) or '<p class="note">No messages or calls yet.</p>',
    )


# HTTP layer -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiRequest:
    """What a route handler needs from an HTTP request."""

    args: dict[str, str]
    query: Form
    body: bytes
    content_type: str
    authorization: str | None
    received_at: float

    def form(self) -> Form:
        return parse_qs(self.body.decode("utf-8"), keep_blank_values=True)

    def payload(self) -> dict[str, Any]:
        """A control-API body: a JSON object, or a form (single values) from the page."""
        if self.content_type.startswith("application/json"):
            data = json.loads(self.body or b"{}")
            if not isinstance(data, dict):
                raise ValueError("expected a JSON object")
            return data
        return {key: values[0] for key, values in self.form().items()}


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str
    location: str | None = None


def json_reply(data: object, *, status: int = 200) -> Reply:
    body = json.dumps(data).encode("utf-8")
    return Reply(status=status, body=body, content_type="application/json; charset=utf-8")


def redirect_home() -> Reply:
    """303 back to the simulator page after one of its forms was submitted."""
    return Reply(status=303, body=b"", content_type="text/plain", location="/")


def wants_redirect(payload: Mapping[str, Any]) -> bool:
    return str(payload.get("redirect", "")).lower() in ("1", "true")


def optional_int(value: object) -> int | None:
    """An optional integer field that may arrive as "" from an HTML form."""
    return None if value in (None, "") else int(str(value))


def handle_create_message(sandbox: Sandbox, request: ApiRequest) -> Reply:
    sandbox.authenticate(authorization=request.authorization, account_sid=request.args["account"])
    resource = sandbox.create_message(form=request.form(), received_at=request.received_at)
    return json_reply(resource, status=201)


def handle_fetch_message(sandbox: Sandbox, request: ApiRequest) -> Reply:
    sandbox.authenticate(authorization=request.authorization, account_sid=request.args["account"])
    return json_reply(sandbox.fetch_message(sid=request.args["sid"]))


def handle_create_call(sandbox: Sandbox, request: ApiRequest) -> Reply:
    sandbox.authenticate(authorization=request.authorization, account_sid=request.args["account"])
    resource = sandbox.create_call(form=request.form(), received_at=request.received_at)
    return json_reply(resource, status=201)


def handle_fetch_call(sandbox: Sandbox, request: ApiRequest) -> Reply:
    sandbox.authenticate(authorization=request.authorization, account_sid=request.args["account"])
    return json_reply(sandbox.fetch_call(sid=request.args["sid"]))


def handle_simulator(sandbox: Sandbox, request: ApiRequest) -> Reply:
    refresh = first(request.query, "refresh") != "0"
    page = render_simulator(
        sandbox.phone_threads(), from_number=sandbox.from_number, refresh=refresh
    )
    return Reply(status=200, body=page.encode("utf-8"), content_type="text/html; charset=utf-8")


def handle_health(sandbox: Sandbox, request: ApiRequest) -> Reply:
    return json_reply({"ok": True})


def handle_list_messages(sandbox: Sandbox, request: ApiRequest) -> Reply:
    return json_reply(sandbox.list_messages(to=first(request.query, "to") or None))


def handle_list_calls(sandbox: Sandbox, request: ApiRequest) -> Reply:
    return json_reply(sandbox.list_calls(to=first(request.query, "to") or None))


def handle_list_inbound(sandbox: Sandbox, request: ApiRequest) -> Reply:
    return json_reply(sandbox.list_inbound())


def handle_send_inbound(sandbox: Sandbox, request: ApiRequest) -> Reply:
    """Text the app as a phone; 502 when the app could not be reached at all."""
    payload = request.payload()
    exchange = sandbox.send_inbound(
        from_=str(payload.get("From", "")),
        to=str(payload.get("To", "")) or None,
        body=str(payload.get("Body", "")),
        signature=str(payload.get("signature", "valid")),
    )
    if wants_redirect(payload):
        return redirect_home()
    data = {
        "sid": exchange.message.sid,
        "status": exchange.app_status,
        "body": exchange.app_body,
        "error": exchange.error,
        "replies": [reply.body for reply in exchange.replies],
    }
    return json_reply(data, status=200 if exchange.app_status is not None else 502)


def handle_set_status(sandbox: Sandbox, request: ApiRequest) -> Reply:
    payload = request.payload()
    status = str(payload.get("status", ""))
    result = sandbox.update_status(
        sid=request.args["sid"], status=status, error_code=optional_int(payload.get("error_code"))
    )
    if wants_redirect(payload):
        return redirect_home()
    data = {
        "sid": request.args["sid"],
        "message_status": status,
        "status": result.status if result else None,
        "body": result.body if result else None,
        "error": result.error if result else None,
    }
    return json_reply(data)


def handle_answer_call(sandbox: Sandbox, request: ApiRequest) -> Reply:
    """Answer a ringing call: {"digits": "1"} presses keys, {"machine": true} is voicemail."""
    payload = request.payload()
    summary = sandbox.answer_call(
        sid=request.args["sid"],
        digits=str(payload.get("digits", "") or ""),
        machine=str(payload.get("machine", "")).lower() in ("1", "true"),
        signature=str(payload.get("signature", "valid")),
    )
    if wants_redirect(payload):
        return redirect_home()
    return json_reply(summary)


def handle_unanswered_call(sandbox: Sandbox, request: ApiRequest) -> Reply:
    payload = request.payload()
    result = sandbox.end_call_unanswered(
        sid=request.args["sid"], status=str(payload.get("status", ""))
    )
    if wants_redirect(payload):
        return redirect_home()
    return json_reply({"sid": request.args["sid"], "status": result.status if result else None})


def handle_faults(sandbox: Sandbox, request: ApiRequest) -> Reply:
    payload = request.payload()
    delay = payload.get("delay")
    faults = sandbox.set_faults(
        messages=payload.get("messages"),
        calls=payload.get("calls"),
        delay=None if delay is None else float(delay),
        unreachable=payload.get("unreachable"),
    )
    return json_reply(faults)


def handle_reset(sandbox: Sandbox, request: ApiRequest) -> Reply:
    sandbox.reset()
    return json_reply({"ok": True})


Handler = Callable[[Sandbox, ApiRequest], Reply]
ACCOUNT = rf"/{API_VERSION}/Accounts/(?P<account>[^/]+)"
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = [
    (method, re.compile(f"^{pattern}$"), handler)
    for method, pattern, handler in [
        ("POST", rf"{ACCOUNT}/Messages\.json", handle_create_message),
        ("GET", rf"{ACCOUNT}/Messages/(?P<sid>[^/]+)\.json", handle_fetch_message),
        ("POST", rf"{ACCOUNT}/Calls\.json", handle_create_call),
        ("GET", rf"{ACCOUNT}/Calls/(?P<sid>[^/]+)\.json", handle_fetch_call),
        ("GET", r"/", handle_simulator),
        ("GET", r"/_sandbox/health", handle_health),
        ("GET", r"/_sandbox/messages\.json", handle_list_messages),
        ("GET", r"/_sandbox/calls\.json", handle_list_calls),
        ("GET", r"/_sandbox/inbound\.json", handle_list_inbound),
        ("POST", r"/_sandbox/inbound", handle_send_inbound),
        ("POST", r"/_sandbox/messages/(?P<sid>[^/]+)/status", handle_set_status),
        ("POST", r"/_sandbox/calls/(?P<sid>[^/]+)/answer", handle_answer_call),
        ("POST", r"/_sandbox/calls/(?P<sid>[^/]+)/unanswered", handle_unanswered_call),
        ("POST", r"/_sandbox/faults", handle_faults),
        ("POST", r"/_sandbox/reset", handle_reset),
    ]
]


def route(method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
    for route_method, pattern, handler in ROUTES:
        match = pattern.match(path)
        if match and route_method == method:
            return handler, match.groupdict()
    return None


class SandboxRequestHandler(BaseHTTPRequestHandler):
    """Turns HTTP requests into route-handler calls; keep-alive, like api.twilio.com."""

    protocol_version = "HTTP/1.1"
    server_version = "ConcernlineTwilioSandbox/1.0"
    # An answer goes out in several small writes; with Nagle's algorithm on, the client's
    # delayed ACK would hold each answer ~40 ms, a cost Twilio's own servers do not have.
    disable_nagle_algorithm = True
    server: SandboxServer

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        received_at = time.time()
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = urlsplit(self.path)
        found = route(method, parts.path)
        if found is None:
            self._send(self._not_found(parts.path))
            return
        handler, args = found
        request = ApiRequest(
            args=args,
            query=parse_qs(parts.query),
            body=body,
            content_type=self.headers.get("Content-Type", ""),
            authorization=self.headers.get("Authorization"),
            received_at=received_at,
        )
        try:
            reply = handler(self.server.sandbox, request)
        except TwilioApiError as exc:
            reply = json_reply(exc.payload(), status=exc.status)
        except ValueError as exc:  # includes malformed JSON
            reply = json_reply({"error": str(exc)}, status=400)
        self._send(reply)

    @staticmethod
    def _not_found(path: str) -> Reply:
        if path.startswith(f"/{API_VERSION}/"):
            return json_reply(not_found(path).payload(), status=404)
        return json_reply({"error": f"no route for {path}"}, status=404)

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        if reply.location:
            self.send_header("Location", reply.location)
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.info("%s %s", self.address_string(), format % args)


class SandboxServer(ThreadingHTTPServer):
    """The HTTP server around a `Sandbox`; `url` is where the SDK and browsers reach it."""

    daemon_threads = True

    def __init__(self, sandbox: Sandbox, *, host: str = DEFAULT_HOST, port: int = 0) -> None:
        super().__init__((host, port), SandboxRequestHandler)
        self.sandbox = sandbox
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        if host in ("", "0.0.0.0"):  # noqa: S104 - mapping a wildcard bind to a usable URL
            host = "127.0.0.1"
        return f"http://{host}:{port}"

    def start(self) -> threading.Thread:
        """Serve from a daemon thread, so tests and scripts can run the sandbox in-process.

        The short poll interval makes `stop()` take milliseconds instead of half a second.
        """
        self._thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS},
            name="twilio-sandbox",
            daemon=True,
        )
        self._thread.start()
        return self._thread

    def stop(self) -> None:
        """Stop serving, cancel pending deliveries and release the port."""
        self.sandbox.close()
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
            self._thread = None
        self.server_close()


def start_sandbox(
    *,
    host: str = DEFAULT_HOST,
    port: int = 0,
    app_url: str = DEFAULT_APP_URL,
    account_sid: str = DEFAULT_ACCOUNT_SID,
    auth_token: str = DEFAULT_AUTH_TOKEN,
    auto_deliver: bool = True,
    from_number: str = DEFAULT_FROM_NUMBER,
    delivery_delay: float = DEFAULT_DELIVERY_DELAY_SECONDS,
    unreachable: Iterable[str] = (),
) -> tuple[SandboxServer, threading.Thread]:
    """Start a sandbox in a background thread; port 0 picks a free port (see `server.url`)."""
    sandbox = Sandbox(
        account_sid=account_sid,
        auth_token=auth_token,
        app_url=app_url,
        from_number=from_number,
        auto_deliver=auto_deliver,
        delivery_delay=delivery_delay,
        unreachable=unreachable,
    )
    server = SandboxServer(sandbox, host=host, port=port)
    return server, server.start()
