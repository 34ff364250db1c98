"""The Twilio webhooks (notifications.views over notifications.webhooks): every request must carry
an X-Twilio-Signature over PUBLIC_BASE_URL + path, made with one of our auth tokens."""

from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from notifications import services
from notifications.models import AttemptStatus, InboundMessage

BASE_URL = "https://concernline.example"
INBOUND_PATH = "/twilio/sms/inbound/"
STATUS_PATH = "/twilio/sms/status/"
TOKEN = "primary-auth-token"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture(autouse=True)
def _twilio_settings(settings):
    settings.PUBLIC_BASE_URL = BASE_URL
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.TWILIO_AUTH_TOKEN_SECONDARY = ""


def sign(path, params, token=TOKEN, base_url=BASE_URL):
    return RequestValidator(token).compute_signature(base_url + path, params)


def post(client, path, params, signature):
    headers = {} if signature is None else {"HTTP_X_TWILIO_SIGNATURE": signature}
    return client.post(path, urlencode(params), content_type=FORM, **headers)


def inbound_params(body="HELP", sid="SM" + "a" * 32, sender="+447700900101"):
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": "AC" + "1" * 32,
        "From": sender,
        "To": "+447700900000",
        "Body": body,
        "NumMedia": "0",
    }


class TestSmsInbound:
    def test_valid_signature_gets_a_twiml_reply(self, client, people):
        params = inbound_params()

        response = post(client, INBOUND_PATH, params, sign(INBOUND_PATH, params))

        assert response.status_code == 200
        assert response["Content-Type"].startswith("application/xml")
        content = response.content.decode()
        assert "<Response><Message>Concernline: reply with the code in the page" in content
        assert content.endswith("</Message></Response>")
        message = InboundMessage.objects.get()
        assert (message.provider_sid, message.sender, message.body) == (
            params["MessageSid"],
            people["manager"],
            "HELP",
        )

    def test_bad_signature_is_refused_and_nothing_is_stored(self, client, people):
        params = inbound_params()

        response = post(client, INBOUND_PATH, params, sign(INBOUND_PATH, params, token="wrong"))

        assert response.status_code == 403
        assert not InboundMessage.objects.exists()

    def test_tampered_parameters_are_refused(self, client, people):
        params = inbound_params()
        signature = sign(INBOUND_PATH, params)

        response = post(client, INBOUND_PATH, {**params, "Body": "ACK"}, signature)

        assert response.status_code == 403
        assert not InboundMessage.objects.exists()

    def test_signature_over_another_host_is_refused(self, client, people):
        """The URL signed is our public one, not whatever Host the request names."""
        params = inbound_params()
        signature = sign(INBOUND_PATH, params, base_url="http://testserver")

        response = post(client, INBOUND_PATH, params, signature)

        assert response.status_code == 403

    def test_missing_signature_header_is_refused(self, client, people):
        response = post(client, INBOUND_PATH, inbound_params(), None)

        assert response.status_code == 403
        assert not InboundMessage.objects.exists()

    def test_without_an_auth_token_everything_is_refused(self, client, people, settings):
        settings.TWILIO_AUTH_TOKEN = ""
        params = inbound_params()

        response = post(client, INBOUND_PATH, params, sign(INBOUND_PATH, params, token=""))

        assert response.status_code == 403
        assert not InboundMessage.objects.exists()

    def test_the_secondary_token_is_accepted_during_rotation(self, client, people, settings):
        settings.TWILIO_AUTH_TOKEN = "new-token"
        settings.TWILIO_AUTH_TOKEN_SECONDARY = TOKEN
        params = inbound_params()

        response = post(client, INBOUND_PATH, params, sign(INBOUND_PATH, params, token=TOKEN))

        assert response.status_code == 200
        assert InboundMessage.objects.count() == 1

    def test_get_is_not_allowed(self, client, db):
        assert client.get(INBOUND_PATH).status_code == 405

    def test_missing_message_sid_is_a_bad_request(self, client, people):
        params = inbound_params()
        del params["MessageSid"]

        response = post(client, INBOUND_PATH, params, sign(INBOUND_PATH, params))

        assert response.status_code == 400
        assert not InboundMessage.objects.exists()

    def test_a_replayed_request_gets_the_same_reply_and_is_stored_once(self, client, people):
        params = inbound_params(body="what?", sender="+447700900999")
        signature = sign(INBOUND_PATH, params)

        first = post(client, INBOUND_PATH, params, signature)
        second = post(client, INBOUND_PATH, params, signature)

        assert first.status_code == second.status_code == 200
        assert first.content == second.content
        assert b"not registered" in first.content
        assert InboundMessage.objects.count() == 1


@pytest.fixture
def attempt(people, outbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        attempt = services.queue_sms(recipient=people["manager"], body="Case C-1", topic="test:1")
    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.QUEUED
    return attempt


def status_params(attempt, status="delivered", **extra):
    return {
        "MessageSid": attempt.provider_sid,
        "SmsSid": attempt.provider_sid,
        "MessageStatus": status,
        "SmsStatus": status,
        "AccountSid": "AC" + "1" * 32,
        "To": attempt.to,
        **extra,
    }


class TestSmsStatus:
    def test_valid_callback_updates_the_attempt(self, client, attempt):
        params = status_params(attempt, "undelivered", ErrorCode="30003")

        response = post(client, STATUS_PATH, params, sign(STATUS_PATH, params))

        assert response.status_code == 204
        attempt.refresh_from_db()
        assert (attempt.status, attempt.error_code) == (AttemptStatus.UNDELIVERED, "30003")

    def test_forged_callback_is_refused_and_changes_nothing(self, client, attempt):
        params = status_params(attempt)

        response = post(client, STATUS_PATH, params, sign(STATUS_PATH, params, token="forged"))

        assert response.status_code == 403
        attempt.refresh_from_db()
        assert attempt.status == AttemptStatus.QUEUED
        assert not attempt.status_changes.filter(status=AttemptStatus.DELIVERED).exists()

    def test_unknown_sid_is_accepted_quietly(self, client, db):
        params = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered"}

        response = post(client, STATUS_PATH, params, sign(STATUS_PATH, params))

        assert response.status_code == 204

    def test_missing_status_is_a_bad_request(self, client, attempt):
        params = {"MessageSid": attempt.provider_sid}

        response = post(client, STATUS_PATH, params, sign(STATUS_PATH, params))

        assert response.status_code == 400
        attempt.refresh_from_db()
        assert attempt.status == AttemptStatus.QUEUED

    def test_get_is_not_allowed(self, client, db):
        assert client.get(STATUS_PATH).status_code == 405
