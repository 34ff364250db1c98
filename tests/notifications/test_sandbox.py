"""The Twilio sandbox, driven by the real `twilio` SDK and checked by a stand-in app.

The stand-in app verifies every webhook's X-Twilio-Signature exactly as Concernline's views
must, so a sandbox that signs the wrong URL or parameters fails here, not in a demo.
No Django: the sandbox is standalone.
"""

from __future__ import annotations

import html
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.rest.api.v2010.account.message import MessageInstance

from notifications.sandbox import SandboxServer, start_sandbox
from notifications.twilio_client import (
    RedirectingHttpClient,
    make_twilio_client,
    rewrite_twilio_url,
)

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "test-auth-token"
SANDBOX_NUMBER = "+447700900000"
MANAGER_PHONE = "+447700900123"
INBOUND_PATH = "/twilio/sms/inbound/"
STATUS_PATH = "/twilio/sms/status/"
WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class Webhook:
    path: str
    params: dict[str, str]
    content_type: str
    signature_valid: bool


class FakeAppHandler(BaseHTTPRequestHandler):
    """Validates the signature over the URL it was reached at, as Django's views will."""

    server: FakeApp

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers["Content-Length"])).decode("utf-8")
        params = dict(parse_qsl(raw, keep_blank_values=True))
        url = f"http://{self.headers['Host']}{self.path}"
        signature = self.headers.get("X-Twilio-Signature", "")
        valid = RequestValidator(AUTH_TOKEN).validate(url, params, signature)
        self.server.record(Webhook(self.path, params, self.headers.get("Content-Type", ""), valid))
        if not valid:
            self._reply(403, "text/plain", "Invalid signature")
        elif self.path.startswith("/voice/answer"):
            twiml = (
                '<Response><Say>Case C-1.</Say><Gather numDigits="1" action="/voice/gather?x=1">'
                "<Say>Press 1.</Say></Gather><Redirect>/voice/answer?again=1</Redirect></Response>"
            )
            self._reply(200, "text/xml", twiml)
        elif self.path.startswith("/voice/gather"):
            said = f"You pressed {params.get('Digits', '')}."
            self._reply(200, "text/xml", f"<Response><Say>{said}</Say><Hangup/></Response>")
        elif self.path == INBOUND_PATH:
            text = html.escape(f"Received: {params['Body']}")
            self._reply(200, "text/xml", f"<Response><Message>{text}</Message></Response>")
        else:
            self._reply(204, "text/plain", "")

    def _reply(self, status: int, content_type: str, body: str) -> None:
        encoded = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(encoded)))
        self.end_headers()
        self.wfile.write(encoded)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


class FakeApp(ThreadingHTTPServer):
    """Plays the Concernline app: records the webhooks the sandbox sends it."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), FakeAppHandler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.webhooks: list[Webhook] = []
        self._changed = threading.Condition()

    def record(self, webhook: Webhook) -> None:
        with self._changed:
            self.webhooks.append(webhook)
            self._changed.notify_all()

    def wait_for(self, count: int, *, path: str) -> list[Webhook]:
        """The first `count` webhooks to `path`, waiting for background deliveries."""

        def received() -> list[Webhook]:
            return [webhook for webhook in self.webhooks if webhook.path == path]

        with self._changed:
            self._changed.wait_for(lambda: len(received()) >= count, timeout=WAIT_SECONDS)
            return received()[:count]


@pytest.fixture
def app() -> Iterator[FakeApp]:
    server = FakeApp()
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def make_sandbox(app: FakeApp) -> Iterator[Callable[..., SandboxServer]]:
    """Start sandboxes on ephemeral ports pointed at the fake app; all stopped afterwards."""
    servers: list[SandboxServer] = []

    def make(**options: Any) -> SandboxServer:
        server, _thread = start_sandbox(
            host="127.0.0.1",
            port=0,
            app_url=app.url,
            account_sid=ACCOUNT_SID,
            auth_token=AUTH_TOKEN,
            **{"auto_deliver": True, "delivery_delay": 0.01, **options},
        )
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def sandbox(make_sandbox: Callable[..., SandboxServer]) -> SandboxServer:
    return make_sandbox()


@pytest.fixture
def client(sandbox: SandboxServer) -> Client:
    return make_twilio_client(
        account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, api_url=sandbox.url, timeout=5
    )


def http(
    url: str, *, method: str = "GET", body: bytes = b"", content_type: str = ""
) -> tuple[int, dict[str, str], str]:
    """A raw request that does not follow redirects, so 303s can be asserted."""
    parts = urlsplit(url)
    connection = HTTPConnection(parts.netloc, timeout=WAIT_SECONDS)
    headers = {"Content-Type": content_type} if content_type else {}
    try:
        connection.request(
            method, parts.path + (f"?{parts.query}" if parts.query else ""), body, headers
        )
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode("utf-8")
    finally:
        connection.close()


def control(sandbox: SandboxServer, path: str, payload: dict[str, Any] | None = None) -> Any:
    """Call the control API: POST JSON when there is a payload, else GET; return the JSON."""
    if payload is None:
        status, _headers, body = http(sandbox.url + path)
    else:
        status, _headers, body = http(
            sandbox.url + path,
            method="POST",
            body=json.dumps(payload).encode(),
            content_type="application/json",
        )
    return status, json.loads(body)


def submit_form(sandbox: SandboxServer, path: str, fields: dict[str, str]) -> tuple[int, str]:
    """Submit a simulator-page form; returns the status and Location header."""
    status, headers, _body = http(
        sandbox.url + path,
        method="POST",
        body=urlencode(fields).encode(),
        content_type="application/x-www-form-urlencoded",
    )
    return status, headers.get("Location", "")


def send_page(
    client: Client, app: FakeApp, body: str = "Urgent disclosure: call back"
) -> MessageInstance:
    return client.messages.create(
        to=MANAGER_PHONE, from_=SANDBOX_NUMBER, body=body, status_callback=app.url + STATUS_PATH
    )


def test_created_message_is_recorded_and_delivered_with_signed_callbacks(
    client: Client, sandbox: SandboxServer, app: FakeApp
) -> None:
    message = send_page(client, app)

    assert message.sid.startswith("SM") and len(message.sid) == 34
    assert (message.status, message.to, message.from_) == ("queued", MANAGER_PHONE, SANDBOX_NUMBER)
    assert message.direction == "outbound-api"
    assert message.date_created is not None and message.error_code is None

    status, recorded = control(sandbox, "/_sandbox/messages.json")
    assert status == 200
    assert [(m["sid"], m["body"]) for m in recorded] == [(message.sid, message.body)]
    assert isinstance(recorded[0]["request_received_at"], float)

    callbacks = app.wait_for(2, path=STATUS_PATH)
    assert [c.params["MessageStatus"] for c in callbacks] == ["sent", "delivered"]
    assert all(c.signature_valid for c in callbacks)
    assert all(c.content_type == "application/x-www-form-urlencoded" for c in callbacks)
    assert callbacks[-1].params["MessageSid"] == message.sid
    assert callbacks[-1].params["AccountSid"] == ACCOUNT_SID
    assert "ErrorCode" not in callbacks[-1].params
    assert client.messages(message.sid).fetch().status == "delivered"


def test_messages_to_unreachable_numbers_end_undelivered(
    make_sandbox: Callable[..., SandboxServer], app: FakeApp
) -> None:
    sandbox = make_sandbox(unreachable=[MANAGER_PHONE])
    client = make_twilio_client(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, api_url=sandbox.url)
    send_page(client, app)

    final = app.wait_for(2, path=STATUS_PATH)[-1]
    assert (final.params["MessageStatus"], final.params["ErrorCode"]) == ("undelivered", "30003")


def test_messages_can_be_filtered_by_recipient(client: Client, sandbox: SandboxServer) -> None:
    client.messages.create(to=MANAGER_PHONE, from_=SANDBOX_NUMBER, body="one")
    client.messages.create(to="+447700900456", from_=SANDBOX_NUMBER, body="two")

    _status, recorded = control(sandbox, "/_sandbox/messages.json?to=%2B447700900456")
    assert [m["body"] for m in recorded] == ["two"]


def test_wrong_auth_token_is_rejected(sandbox: SandboxServer) -> None:
    client = make_twilio_client(account_sid=ACCOUNT_SID, auth_token="wrong", api_url=sandbox.url)

    with pytest.raises(TwilioRestException) as error:
        client.messages.create(to=MANAGER_PHONE, from_=SANDBOX_NUMBER, body="hi")

    assert (error.value.status, error.value.code) == (401, 20003)
    assert control(sandbox, "/_sandbox/messages.json")[1] == []


def test_invalid_to_number_is_rejected(client: Client, sandbox: SandboxServer) -> None:
    with pytest.raises(TwilioRestException) as error:
        client.messages.create(to="07700 900123", from_=SANDBOX_NUMBER, body="hi")

    assert (error.value.status, error.value.code) == (400, 21211)
    assert "07700 900123" in error.value.msg
    assert control(sandbox, "/_sandbox/messages.json")[1] == []


def test_a_phone_that_replied_stop_gets_no_sms_until_it_replies_start(
    client: Client, sandbox: SandboxServer, app: FakeApp
) -> None:
    """Twilio's standard opt-out: after STOP from a phone, messages to it are refused with
    21610 (whatever the app answered), until START."""
    control(sandbox, "/_sandbox/inbound", {"From": MANAGER_PHONE, "Body": "stop"})
    with pytest.raises(TwilioRestException) as error:
        client.messages.create(to=MANAGER_PHONE, from_=SANDBOX_NUMBER, body="a page")
    assert (error.value.status, error.value.code) == (400, 21610)
    client.messages.create(to="+447700900102", from_=SANDBOX_NUMBER, body="someone else")

    control(sandbox, "/_sandbox/inbound", {"From": MANAGER_PHONE, "Body": "START"})
    again = client.messages.create(to=MANAGER_PHONE, from_=SANDBOX_NUMBER, body="a page")

    _status, recorded = control(sandbox, "/_sandbox/messages.json")
    assert again.sid in [m["sid"] for m in recorded] and len(recorded) == 2


def test_injected_fault_fails_one_create_then_recovers(
    client: Client, sandbox: SandboxServer
) -> None:
    status, faults = control(sandbox, "/_sandbox/faults", {"messages": [500]})
    assert (status, faults["messages"]) == (200, [500])

    with pytest.raises(TwilioRestException) as error:
        client.messages.create(to=MANAGER_PHONE, from_=SANDBOX_NUMBER, body="first try")
    assert error.value.status == 500
    retried = client.messages.create(to=MANAGER_PHONE, from_=SANDBOX_NUMBER, body="retry")

    _status, recorded = control(sandbox, "/_sandbox/messages.json")
    assert [m["sid"] for m in recorded] == [retried.sid]


def test_calls_can_be_created_and_fetched(
    client: Client, sandbox: SandboxServer, app: FakeApp
) -> None:
    call = client.calls.create(
        to=MANAGER_PHONE,
        from_=SANDBOX_NUMBER,
        twiml="<Response><Say>Urgent concern raised.</Say></Response>",
        status_callback=app.url + "/voice/status",
        status_callback_event=["initiated", "answered", "completed"],
        machine_detection="Enable",
    )

    assert call.sid.startswith("CA") and len(call.sid) == 34
    assert call.status == "queued"
    fetched = client.calls(call.sid).fetch()
    assert (fetched.sid, fetched.to) == (call.sid, MANAGER_PHONE)
    assert fetched.status in ("queued", "ringing")
    _status, calls = control(sandbox, "/_sandbox/calls.json")
    assert calls[0]["status_callback_event"] == ["initiated", "answered", "completed"]
    assert calls[0]["machine_detection"] == "Enable"


def test_call_without_instructions_is_rejected(client: Client) -> None:
    with pytest.raises(TwilioRestException) as error:
        client.calls.create(to=MANAGER_PHONE, from_=SANDBOX_NUMBER)

    assert (error.value.status, error.value.code) == (400, 21205)


def test_fetching_an_unknown_message_is_a_404(client: Client) -> None:
    with pytest.raises(TwilioRestException) as error:
        client.messages("SM" + "0" * 32).fetch()

    assert (error.value.status, error.value.code) == (404, 20404)


def test_inbound_sms_reaches_the_app_signed_and_its_reply_is_recorded(
    sandbox: SandboxServer, app: FakeApp
) -> None:
    status, answer = control(
        sandbox, "/_sandbox/inbound", {"From": MANAGER_PHONE, "Body": "ACK 1234"}
    )

    assert (status, answer["status"]) == (200, 200)
    assert "<Message>Received: ACK 1234</Message>" in answer["body"]
    [webhook] = app.wait_for(1, path=INBOUND_PATH)
    assert webhook.signature_valid
    assert webhook.params["MessageSid"].startswith("SM")
    expected = {"From": MANAGER_PHONE, "To": SANDBOX_NUMBER, "Body": "ACK 1234"}
    assert {key: webhook.params[key] for key in expected} == expected
    assert (webhook.params["AccountSid"], webhook.params["NumMedia"]) == (ACCOUNT_SID, "0")
    assert webhook.params["SmsStatus"] == "received"
    [exchange] = control(sandbox, "/_sandbox/inbound.json")[1]
    assert exchange["app_status"] == 200
    assert [r["body"] for r in exchange["replies"]] == ["Received: ACK 1234"]


def test_inbound_sms_with_a_forged_signature_fails_validation(
    sandbox: SandboxServer, app: FakeApp
) -> None:
    _status, answer = control(
        sandbox, "/_sandbox/inbound", {"From": MANAGER_PHONE, "Body": "hi", "signature": "bad"}
    )

    assert answer["status"] == 403
    [webhook] = app.wait_for(1, path=INBOUND_PATH)
    assert not webhook.signature_valid


def test_status_can_be_set_through_the_control_api(
    make_sandbox: Callable[..., SandboxServer], app: FakeApp
) -> None:
    sandbox = make_sandbox(auto_deliver=False)
    client = make_twilio_client(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, api_url=sandbox.url)
    message = send_page(client, app)

    status, answer = control(
        sandbox,
        f"/_sandbox/messages/{message.sid}/status",
        {"status": "failed", "error_code": 30008},
    )

    assert (status, answer["status"]) == (200, 204)
    [callback] = app.wait_for(1, path=STATUS_PATH)
    assert callback.signature_valid
    assert (callback.params["MessageStatus"], callback.params["ErrorCode"]) == ("failed", "30008")
    fetched = client.messages(message.sid).fetch()
    assert (fetched.status, fetched.error_code) == ("failed", 30008)


def test_simulator_page_shows_threads_escaped_and_its_forms_redirect(
    make_sandbox: Callable[..., SandboxServer], app: FakeApp
) -> None:
    sandbox = make_sandbox(auto_deliver=False)
    client = make_twilio_client(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, api_url=sandbox.url)
    message = send_page(client, app, body="<script>alert(1)</script>")

    reply = submit_form(
        sandbox, "/_sandbox/inbound", {"From": MANAGER_PHONE, "Body": "On it", "redirect": "1"}
    )
    marked = submit_form(
        sandbox,
        f"/_sandbox/messages/{message.sid}/status",
        {"status": "undelivered", "error_code": "30003", "redirect": "1"},
    )
    status, _headers, page = http(sandbox.url + "/")

    assert reply == marked == (303, "/")
    assert status == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>" not in page
    assert page.index("&lt;script&gt;") < page.index("On it") < page.index("Received: On it")
    assert f"<h2>{MANAGER_PHONE}</h2>" in page
    assert "undelivered (error 30003)" in page


def test_reset_forgets_everything(client: Client, sandbox: SandboxServer) -> None:
    client.messages.create(to=MANAGER_PHONE, from_=SANDBOX_NUMBER, body="hi")
    control(sandbox, "/_sandbox/faults", {"calls": [503]})

    assert control(sandbox, "/_sandbox/reset", {}) == (200, {"ok": True})
    assert control(sandbox, "/_sandbox/messages.json")[1] == []
    assert control(sandbox, "/_sandbox/faults", {})[1]["calls"] == []
    assert control(sandbox, "/_sandbox/health") == (200, {"ok": True})


API_URL = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?PageSize=5"


def test_without_api_url_urls_are_left_alone() -> None:
    assert rewrite_twilio_url(API_URL, api_url=None) == API_URL
    assert rewrite_twilio_url(API_URL, api_url="") == API_URL
    assert RedirectingHttpClient(None).rewrite_url(API_URL) == API_URL


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (API_URL, "http://127.0.0.1:8026/2010-04-01/Accounts/AC1/Messages.json?PageSize=5"),
        (
            "https://api.dublin.ie1.twilio.com/2010-04-01/Accounts/AC1/Calls.json",
            "http://127.0.0.1:8026/2010-04-01/Accounts/AC1/Calls.json",
        ),
        ("https://api.twilio.com.evil.example/x", "https://api.twilio.com.evil.example/x"),
        ("https://example.com/twilio.com/x", "https://example.com/twilio.com/x"),
    ],
)
def test_only_twilio_urls_are_redirected(url: str, expected: str) -> None:
    client = RedirectingHttpClient("http://127.0.0.1:8026/")

    assert client.rewrite_url(url) == expected


def place_call(client: Client, app: FakeApp, **options: Any):
    return client.calls.create(
        to=MANAGER_PHONE,
        from_=SANDBOX_NUMBER,
        url=app.url + "/voice/answer?attempt=7",
        status_callback=app.url + "/voice/status",
        machine_detection="Enable",
        **options,
    )


def test_a_call_rings_and_is_answered_with_a_key_press(
    client: Client, sandbox: SandboxServer, app: FakeApp
) -> None:
    call = place_call(client, app)
    app.wait_for(1, path="/voice/status")  # ringing

    status, summary = control(sandbox, f"/_sandbox/calls/{call.sid}/answer", {"digits": "1"})

    assert status == 200
    assert summary["said"] == ["Case C-1.", "Press 1.", "You pressed 1."]
    assert (summary["status"], summary["answered_by"], summary["digits"]) == (
        "completed",
        "human",
        "1",
    )
    [answer] = app.wait_for(1, path="/voice/answer?attempt=7")
    [gather] = app.wait_for(1, path="/voice/gather?x=1")
    assert answer.signature_valid and gather.signature_valid
    assert answer.params["AnsweredBy"] == "human" and gather.params["Digits"] == "1"
    statuses = [w.params["CallStatus"] for w in app.wait_for(3, path="/voice/status")]
    assert statuses == ["ringing", "in-progress", "completed"]
    assert client.calls(call.sid).fetch().status == "completed"


def test_voicemail_hears_the_message_and_presses_nothing(
    client: Client, sandbox: SandboxServer, app: FakeApp
) -> None:
    call = place_call(client, app)
    app.wait_for(1, path="/voice/status")

    _status, summary = control(sandbox, f"/_sandbox/calls/{call.sid}/answer", {"machine": True})

    assert summary["answered_by"] == "machine_end_beep" and summary["digits"] == ""
    [answer] = app.wait_for(1, path="/voice/answer?attempt=7")
    assert answer.params["AnsweredBy"] == "machine_end_beep"
    assert [w.path for w in app.webhooks if w.path.startswith("/voice/gather")] == []


@pytest.mark.parametrize("outcome", ["no-answer", "busy", "failed"])
def test_an_unanswered_call_sends_its_signed_status(
    client: Client, sandbox: SandboxServer, app: FakeApp, outcome: str
) -> None:
    call = place_call(client, app)
    app.wait_for(1, path="/voice/status")

    status, _body = control(sandbox, f"/_sandbox/calls/{call.sid}/unanswered", {"status": outcome})

    assert status == 200
    last = app.wait_for(2, path="/voice/status")[-1]
    assert last.params["CallStatus"] == outcome and last.signature_valid
    bad, _ = control(sandbox, f"/_sandbox/calls/{call.sid}/answer", {"digits": "1"})
    assert bad == 400  # an ended call cannot be answered


def test_a_call_nobody_answers_ends_no_answer_after_its_timeout(
    client: Client, sandbox: SandboxServer, app: FakeApp
) -> None:
    call = place_call(client, app, timeout=1)

    ringing, ended = app.wait_for(2, path="/voice/status")

    assert (ringing.params["CallStatus"], ended.params["CallStatus"]) == ("ringing", "no-answer")
    assert ended.signature_valid
    assert client.calls(call.sid).fetch().status == "no-answer"
    _status, [summary] = control(sandbox, "/_sandbox/calls.json")
    assert summary["timeout"] == 1


def test_a_call_answered_in_time_does_not_end_no_answer(
    client: Client, sandbox: SandboxServer, app: FakeApp
) -> None:
    call = place_call(client, app, timeout=1)
    app.wait_for(1, path="/voice/status")  # ringing
    control(sandbox, f"/_sandbox/calls/{call.sid}/answer", {"digits": "1"})

    time.sleep(1.5)  # past the ring timeout

    statuses = [w.params["CallStatus"] for w in app.webhooks if w.path == "/voice/status"]
    assert statuses == ["ringing", "in-progress", "completed"]


def test_a_call_rings_sixty_seconds_unless_told_and_no_more_than_600(
    client: Client, sandbox: SandboxServer, app: FakeApp
) -> None:
    for timeout, expected in ((None, 60), (900, 600)):
        client.calls.create(
            to=MANAGER_PHONE,
            from_=SANDBOX_NUMBER,
            url=app.url + "/voice/answer",
            **({} if timeout is None else {"timeout": timeout}),
        )
        _status, calls = control(sandbox, "/_sandbox/calls.json")
        assert calls[-1]["timeout"] == expected
    with pytest.raises(TwilioRestException) as error:
        client.calls.create(
            to=MANAGER_PHONE, from_=SANDBOX_NUMBER, url=app.url + "/voice/answer", timeout=0
        )
    assert (error.value.status, error.value.code) == (400, 21208)


def test_simulator_page_offers_call_buttons(
    client: Client, sandbox: SandboxServer, app: FakeApp
) -> None:
    call = place_call(client, app)
    status, _headers, page = http(sandbox.url + "/?refresh=0")
    assert status == 200
    assert f"/_sandbox/calls/{call.sid}/answer" in page and "Voicemail" in page
    assert f"/_sandbox/calls/{call.sid}/unanswered" in page and "Busy" in page
    code, location = submit_form(
        sandbox, f"/_sandbox/calls/{call.sid}/unanswered", {"status": "busy", "redirect": "1"}
    )
    assert (code, location) == (303, "/")
