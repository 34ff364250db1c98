"""notifications.providers.twilio through the real twilio SDK, against the local sandbox.

Each test drives the services (queue_sms, send_notification_attempt) with SMS_BACKEND="twilio",
so request encoding, auth and the SDK's error parsing are all real.
"""

import socket
import time

import pytest

from notifications import services
from notifications.models import AttemptStatus, ContactPreferences, NotificationAttempt
from notifications.sandbox import start_sandbox

ACCOUNT_SID = "AC" + "2" * 32
AUTH_TOKEN = "provider-test-token"
FROM_NUMBER = "+447700900000"
BASE_URL = "https://concernline.example"


@pytest.fixture
def sandbox(settings):
    server, _thread = start_sandbox(
        host="127.0.0.1",
        port=0,
        app_url=BASE_URL,
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        auto_deliver=False,
    )
    settings.SMS_BACKEND = "twilio"
    settings.TWILIO_API_URL = server.url
    settings.TWILIO_ACCOUNT_SID = ACCOUNT_SID
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.TWILIO_FROM_NUMBER = FROM_NUMBER
    settings.TWILIO_TIMEOUT_SECONDS = 5
    settings.PUBLIC_BASE_URL = BASE_URL
    yield server
    server.stop()


@pytest.fixture
def queued(people, django_capture_on_commit_callbacks):
    """An attempt to the manager whose send task has not run yet."""
    with django_capture_on_commit_callbacks():
        attempt = services.queue_sms(
            recipient=people["manager"], body="Concernline: case C-1 needs you", topic="test:1"
        )
    return attempt


def send(attempt):
    services.send_notification_attempt(attempt_id=attempt.id)
    attempt.refresh_from_db()
    return attempt


class TestTwilioProviderSendSms:
    def test_sends_one_message_with_our_status_callback(
        self, sandbox, people, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            attempt = services.queue_sms(
                recipient=people["manager"], body="Concernline: case C-1 needs you", topic="t:1"
            )

        [message] = sandbox.sandbox.list_messages()
        assert (message["to"], message["from"], message["body"]) == (
            "+447700900101",
            FROM_NUMBER,
            "Concernline: case C-1 needs you",
        )
        assert message["status_callback"] == BASE_URL + "/twilio/sms/status/"
        assert message["account_sid"] == ACCOUNT_SID
        attempt.refresh_from_db()
        assert attempt.status == AttemptStatus.QUEUED
        assert attempt.provider_sid == message["sid"]

    def test_a_server_error_is_retried_and_sends_exactly_once(self, sandbox, queued):
        sandbox.sandbox.set_faults(messages=[500])

        attempt = send(queued)

        assert (attempt.status, attempt.tries, attempt.error_code) == ("pending", 1, "20500")
        assert sandbox.sandbox.list_messages() == []

        attempt = send(attempt)

        [message] = sandbox.sandbox.list_messages()
        assert (attempt.status, attempt.tries) == (AttemptStatus.QUEUED, 2)
        assert attempt.provider_sid == message["sid"]

    def test_rate_limiting_is_transient(self, sandbox, queued):
        sandbox.sandbox.set_faults(messages=[429])

        attempt = send(queued)

        assert (attempt.status, attempt.tries) == (AttemptStatus.PENDING, 1)

    def test_an_invalid_number_fails_permanently(self, sandbox, queued):
        NotificationAttempt.objects.filter(pk=queued.pk).update(to="+1")

        attempt = send(queued)

        assert attempt.status == AttemptStatus.FAILED
        assert attempt.error_code == "21211"
        assert "+1" in attempt.error_message
        assert sandbox.sandbox.list_messages() == []

    def test_a_phone_that_replied_stop_is_opted_out_of_sms_pages(self, sandbox, queued, people):
        """Twilio refuses SMS to a phone that replied STOP (21610), even when its reply never
        reached us: the attempt fails for good and the person's preferences follow, so later
        pages leave SMS out."""
        manager = people["manager"]
        sandbox.sandbox.send_inbound(from_=str(manager.phone), body="STOP")

        attempt = send(queued)

        assert (attempt.status, attempt.error_code) == (AttemptStatus.FAILED, "21610")
        assert ContactPreferences.objects.get(user=manager).sms_opted_out
        assert services.channel_plan(recipient=manager, importance="important")[0] == ["call"]
        assert sandbox.sandbox.list_messages() == []

    def test_a_wrong_auth_token_fails_permanently(self, sandbox, queued, settings):
        settings.TWILIO_AUTH_TOKEN = "not-the-token"

        attempt = send(queued)

        assert (attempt.status, attempt.error_code) == (AttemptStatus.FAILED, "20003")
        assert sandbox.sandbox.list_messages() == []

    def test_an_unreachable_server_is_transient(self, sandbox, queued, settings):
        with socket.socket() as probe:  # a port nothing listens on
            probe.bind(("127.0.0.1", 0))
            closed_port = probe.getsockname()[1]
        settings.TWILIO_API_URL = f"http://127.0.0.1:{closed_port}"

        attempt = send(queued)

        assert (attempt.status, attempt.tries) == (AttemptStatus.PENDING, 1)
        assert attempt.next_try_at is not None

    def test_a_stopped_sandbox_is_transient(self, sandbox, queued):
        sandbox.stop()

        attempt = send(queued)

        assert (attempt.status, attempt.tries) == (AttemptStatus.PENDING, 1)

    def test_a_read_timeout_is_of_unknown_outcome_and_never_resent(self, sandbox, queued, settings):
        settings.TWILIO_TIMEOUT_SECONDS = 0.2
        sandbox.sandbox.set_faults(delay=0.5)

        attempt = send(queued)

        assert attempt.status == AttemptStatus.UNKNOWN
        deadline = time.monotonic() + 3
        while not sandbox.sandbox.list_messages() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(sandbox.sandbox.list_messages()) == 1  # it did go: resending would page twice
        sandbox.sandbox.set_faults(delay=0)

        attempt = send(attempt)

        assert attempt.status == AttemptStatus.UNKNOWN
        assert len(sandbox.sandbox.list_messages()) == 1


class TestTwilioProviderCalls:
    def page_by_call(self, person, capture):
        from notifications.messages import PageMessage
        from notifications.models import ContactPreferences

        ContactPreferences.objects.create(user=person, important_rule="call_then_sms")
        with capture():
            services.page_person(
                recipient=person,
                importance="important",
                message=PageMessage(reference="C-1", urgency="urgent", title="urgent disclosure"),
                topic="t:call",
            )
        return NotificationAttempt.objects.get(recipient=person, channel="call")

    def test_a_call_asks_for_machine_detection_and_our_callbacks(
        self, sandbox, people, settings, django_capture_on_commit_callbacks
    ):
        settings.PAGING_CALL_RING_SECONDS = 25
        attempt = send(self.page_by_call(people["manager"], django_capture_on_commit_callbacks))

        [call] = sandbox.sandbox.list_calls()
        assert call["url"] == f"{BASE_URL}/twilio/voice/answer/?attempt={attempt.id}"
        assert call["status_callback"] == f"{BASE_URL}/twilio/voice/status/"
        assert call["machine_detection"] == "Enable"
        assert call["timeout"] == 25  # rings this long, then Twilio tells us "no-answer"
        assert set(call["status_callback_event"]) == {
            "initiated",
            "ringing",
            "answered",
            "completed",
        }
        assert (attempt.status, attempt.provider_sid) == (AttemptStatus.QUEUED, call["sid"])

    def test_a_server_error_on_a_call_is_retried_and_calls_once(
        self, sandbox, people, django_capture_on_commit_callbacks
    ):
        sandbox.sandbox.set_faults(calls=[503])
        attempt = send(self.page_by_call(people["manager"], django_capture_on_commit_callbacks))
        assert attempt.status == AttemptStatus.PENDING and sandbox.sandbox.list_calls() == []

        attempt = send(attempt)
        send(attempt)

        assert len(sandbox.sandbox.list_calls()) == 1

    def test_stuck_messages_are_polled_through_the_sdk(
        self, sandbox, queued, settings, django_capture_on_commit_callbacks
    ):
        from datetime import timedelta

        from django.utils import timezone

        attempt = send(queued)
        # Delivered at the provider, but its callback never reached us (set without sending one).
        with sandbox.sandbox._lock:
            sandbox.sandbox._messages[attempt.provider_sid].status = "delivered"
        later = timezone.now() + timedelta(seconds=settings.PAGING_POLL_AFTER_SECONDS + 1)

        with django_capture_on_commit_callbacks(execute=True):
            assert services.poll_stuck_attempts(now=later) == 1

        attempt.refresh_from_db()
        assert attempt.status == AttemptStatus.DELIVERED
