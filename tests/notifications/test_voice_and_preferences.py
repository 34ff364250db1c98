"""The voice webhooks (answer, key press, call status) and the "my paging preferences" page.
Every webhook is signed over PUBLIC_BASE_URL + path + query, like Twilio's."""

from urllib.parse import urlencode

import pytest
from django.http import QueryDict
from twilio.request_validator import RequestValidator

from notifications import services
from notifications.messages import PageMessage
from notifications.models import AttemptStatus, Channel, ContactPreferences, NotificationAttempt
from notifications.providers import outbox as sms_outbox
from notifications.signals import inbound_command
from staff.models import Role
from tests.conftest import make_person

BASE_URL = "https://concernline.example"
TOKEN = "voice-auth-token"
FORM = "application/x-www-form-urlencoded"
MESSAGE = PageMessage(reference="C-2026-0031", urgency="urgent", title="urgent disclosure")


@pytest.fixture(autouse=True)
def _twilio_settings(settings):
    settings.PUBLIC_BASE_URL = BASE_URL
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.TWILIO_AUTH_TOKEN_SECONDARY = ""


@pytest.fixture
def commands(monkeypatch):
    monkeypatch.setattr(inbound_command, "receivers", [])
    monkeypatch.setattr(inbound_command, "sender_receivers_cache", {})
    received = []
    inbound_command.connect(
        lambda sender, **kw: received.append(kw), weak=False, dispatch_uid="test-voice-commands"
    )
    yield received
    inbound_command.disconnect(dispatch_uid="test-voice-commands")


def post(client, path, params, *, token=TOKEN, signed=True):
    headers = {}
    if signed:
        signature = RequestValidator(token).compute_signature(BASE_URL + path, params)
        headers["HTTP_X_TWILIO_SIGNATURE"] = signature
    body = params.urlencode() if isinstance(params, QueryDict) else urlencode(params)
    return client.post(path, body, content_type=FORM, **headers)


def call_to(person, capture) -> NotificationAttempt:
    ContactPreferences.objects.update_or_create(
        user=person, defaults={"important_rule": "call_then_sms"}
    )
    with capture(execute=True):
        services.page_person(
            recipient=person, importance="important", message=MESSAGE, topic="test.call:1"
        )
    return NotificationAttempt.objects.get(recipient=person, channel=Channel.CALL)


def call_params(attempt, **extra):
    return {
        "CallSid": attempt.provider_sid,
        "AccountSid": "AC" + "1" * 32,
        "From": "+447700900000",
        "To": attempt.to,
        "CallStatus": "in-progress",
        **extra,
    }


class TestVoiceAnswer:
    def test_a_person_hears_the_page_and_the_key_choices(
        self, client, people, django_capture_on_commit_callbacks
    ):
        attempt = call_to(people["manager"], django_capture_on_commit_callbacks)
        path = f"/twilio/voice/answer/?attempt={attempt.id}"

        response = post(client, path, call_params(attempt, AnsweredBy="human"))

        twiml = response.content.decode()
        assert response.status_code == 200 and response["Content-Type"] == "application/xml"
        assert '<Gather action="/twilio/voice/gather/?attempt=' in twiml
        assert 'numDigits="1"' in twiml and "Press 1 to acknowledge" in twiml
        assert 'language="en-GB"' in twiml and "C 0 2 6" not in twiml
        assert "urgent disclosure" in twiml and "<Redirect" in twiml
        attempt.refresh_from_db()
        assert (attempt.status, attempt.answered_by) == (AttemptStatus.SENT, "human")

    def test_an_answering_machine_hears_no_choices(
        self, client, people, django_capture_on_commit_callbacks
    ):
        attempt = call_to(people["manager"], django_capture_on_commit_callbacks)
        path = f"/twilio/voice/answer/?attempt={attempt.id}"

        twiml = post(client, path, call_params(attempt, AnsweredBy="machine_end_beep")).content

        assert b"<Gather" not in twiml and b"<Hangup />" in twiml

    def test_a_welsh_speaker_hears_welsh(self, client, db, django_capture_on_commit_callbacks):
        person = make_person("cy@example.org", Role.MANAGER, "+447700900160", language="cy")
        attempt = call_to(person, django_capture_on_commit_callbacks)
        path = f"/twilio/voice/answer/?attempt={attempt.id}"

        twiml = post(client, path, call_params(attempt)).content.decode()

        assert 'language="cy-GB"' in twiml and "Pwyswch 1 i gydnabod" in twiml

    @pytest.mark.parametrize("path", ["answer", "gather", "status"])
    def test_forged_and_unsigned_requests_are_refused(
        self, client, people, commands, django_capture_on_commit_callbacks, path
    ):
        attempt = call_to(people["manager"], django_capture_on_commit_callbacks)
        url = f"/twilio/voice/{path}/?attempt={attempt.id}"
        params = call_params(attempt, Digits="1", CallStatus="completed")

        assert post(client, url, params, token="forged").status_code == 403
        assert post(client, url, params, signed=False).status_code == 403
        attempt.refresh_from_db()
        assert attempt.status == AttemptStatus.QUEUED and commands == []

    def test_without_a_token_every_webhook_is_refused(
        self, client, people, settings, django_capture_on_commit_callbacks
    ):
        attempt = call_to(people["manager"], django_capture_on_commit_callbacks)
        settings.TWILIO_AUTH_TOKEN = ""
        url = f"/twilio/voice/answer/?attempt={attempt.id}"
        assert post(client, url, call_params(attempt), token="").status_code == 403


class TestVoiceGather:
    def test_key_1_acknowledges_once_even_when_replayed(
        self, client, people, commands, django_capture_on_commit_callbacks
    ):
        attempt = call_to(people["manager"], django_capture_on_commit_callbacks)
        path = f"/twilio/voice/gather/?attempt={attempt.id}"
        params = call_params(attempt, Digits="1")

        first = post(client, path, params).content.decode()
        again = post(client, path, params).content.decode()

        assert "You pressed 1" in first and "<Hangup />" in first and first == again
        assert [(c["command"], c["channel"], c["topic"]) for c in commands] == [
            ("ack", "call", "test.call:1")
        ]

    def test_another_key_repeats_the_choices(
        self, client, people, commands, django_capture_on_commit_callbacks
    ):
        attempt = call_to(people["manager"], django_capture_on_commit_callbacks)
        path = f"/twilio/voice/gather/?attempt={attempt.id}"

        twiml = post(client, path, call_params(attempt, Digits="5")).content.decode()

        assert "That key does nothing" in twiml
        assert f"<Redirect>/twilio/voice/answer/?attempt={attempt.id}</Redirect>" in twiml
        assert commands == []


class TestVoiceStatus:
    def test_a_replayed_callback_is_recorded_once(
        self, client, people, django_capture_on_commit_callbacks
    ):
        attempt = call_to(people["manager"], django_capture_on_commit_callbacks)
        params = call_params(attempt, CallStatus="no-answer")

        with django_capture_on_commit_callbacks(execute=True):
            assert post(client, "/twilio/voice/status/", params).status_code == 204
            assert post(client, "/twilio/voice/status/", params).status_code == 204

        attempt.refresh_from_db()
        assert (attempt.status, attempt.error_code) == (AttemptStatus.UNDELIVERED, "no-answer")
        assert attempt.status_changes.filter(status=AttemptStatus.UNDELIVERED).count() == 1
        assert len(sms_outbox.outbox) == 1  # the next channel, once

    def test_repeated_keys_are_part_of_the_signature(
        self, client, people, django_capture_on_commit_callbacks
    ):
        attempt = call_to(people["manager"], django_capture_on_commit_callbacks)
        params = QueryDict(mutable=True)
        params.update(call_params(attempt, CallStatus="ringing"))
        params.setlist("StatusCallbackEvent", ["ringing", "answered"])
        # Signed over both values; dropping one (as .dict() would) no longer matches.
        partial = QueryDict(mutable=True)
        partial.update(call_params(attempt, CallStatus="ringing", StatusCallbackEvent="answered"))
        signature = RequestValidator(TOKEN).compute_signature(
            BASE_URL + "/twilio/voice/status/", params
        )
        assert signature != RequestValidator(TOKEN).compute_signature(
            BASE_URL + "/twilio/voice/status/", partial
        )

        assert post(client, "/twilio/voice/status/", params).status_code == 204
        attempt.refresh_from_db()
        assert attempt.status == AttemptStatus.SENT


ROLES = ["worker", "manager", "hr", "dpo", "safeguarding", "admin"]


class TestPagingPreferencesPage:
    @pytest.mark.parametrize("role", ROLES)
    def test_every_signed_in_person_edits_only_their_own(self, client, people, role):
        person = people[role]
        client.force_login(person)

        page = client.get("/me/paging/")
        saved = client.post(
            "/me/paging/", {"important_rule": "sms_then_call", "normal_rule": "email"}
        )

        assert page.status_code == 200 and "My paging preferences" in page.content.decode()
        assert "SMS and a call at once" in page.content.decode()
        assert saved.status_code == 302
        assert list(ContactPreferences.objects.values_list("user", "important_rule")) == [
            (person.id, "sms_then_call")
        ]

    def test_an_unknown_rule_is_refused_by_the_field(self, client, people):
        client.force_login(people["manager"])
        response = client.post("/me/paging/", {"important_rule": "pigeon", "normal_rule": "email"})
        assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
        assert not ContactPreferences.objects.exists()

    def test_anonymous_is_sent_to_sign_in(self, client, db):
        response = client.get("/me/paging/")
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
        assert client.post("/me/paging/", {"normal_rule": "email"}).status_code == 302
        assert not ContactPreferences.objects.exists()
