"""notifications.services: the paging outbox, its sender, sweeper, status callbacks and inbound SMS.

SMS go to the in-memory outbox provider (see tests/conftest.py) unless a test picks
`FlakyProvider` below, which fails as scripted and then behaves like the outbox.
"""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone, translation

from notifications import services
from notifications.exceptions import (
    PermanentProviderError,
    TransientProviderError,
    UnknownOutcomeError,
)
from notifications.models import AttemptStatus, InboundMessage, NotificationAttempt, StatusChange
from notifications.providers import get_sms_provider
from notifications.providers.outbox import OutboxProvider
from notifications.signals import attempt_status_changed, inbound_command
from staff.models import Role
from tests.conftest import make_person

FLAKY = "tests.notifications.test_services.FlakyProvider"
TOPIC = "test.topic:1"
STATUS_URL = "https://concernline.example/twilio/sms/status/"


class FlakyProvider(OutboxProvider):
    """Raises the scripted errors one per call, then sends to the outbox like OutboxProvider."""

    script: list[Exception] = []
    calls = 0

    def send_sms(self, *, to, body, status_callback):
        type(self).calls += 1
        if type(self).script:
            raise type(self).script.pop(0)
        return super().send_sms(to=to, body=body, status_callback=status_callback)


class SweptMidSendProvider(OutboxProvider):
    """Sends, but first lets the sweeper give the attempt up as stuck."""

    def send_sms(self, *, to, body, status_callback):
        NotificationAttempt.objects.filter(to=to, status=AttemptStatus.SENDING).update(
            status=AttemptStatus.UNKNOWN
        )
        return super().send_sms(to=to, body=body, status_callback=status_callback)


@pytest.fixture(autouse=True)
def _base_url(settings):
    settings.PUBLIC_BASE_URL = "https://concernline.example"


@pytest.fixture
def flaky(settings):
    """Select FlakyProvider; the test fills `flaky.script`."""
    settings.SMS_BACKEND = FLAKY
    FlakyProvider.script = []
    FlakyProvider.calls = 0
    assert isinstance(get_sms_provider(), FlakyProvider)
    yield FlakyProvider
    FlakyProvider.script = []


@pytest.fixture
def status_events():
    """Every attempt_status_changed the signal sends, as its kwargs."""
    events = []

    def receiver(sender, **kwargs):
        events.append({"sender": sender, **kwargs})

    attempt_status_changed.connect(receiver, weak=False, dispatch_uid="test-status-events")
    yield events
    attempt_status_changed.disconnect(dispatch_uid="test-status-events")


@pytest.fixture
def commands(monkeypatch):
    """inbound_command with only the receivers a test connects (not oncall's)."""
    monkeypatch.setattr(inbound_command, "receivers", [])
    monkeypatch.setattr(inbound_command, "sender_receivers_cache", {})
    return inbound_command


def queue(person, django_capture_on_commit_callbacks, *, body="Case C-1 needs you"):
    """Queue an SMS whose send task is never run (as if the broker lost it)."""
    with django_capture_on_commit_callbacks() as callbacks:
        attempt = services.queue_sms(recipient=person, body=body, topic=TOPIC)
    return attempt, callbacks


def history(attempt):
    return list(attempt.status_changes.values_list("status", flat=True))


class TestQueueSms:
    def test_records_a_pending_attempt_and_sends_it_only_on_commit(
        self, people, outbox, django_capture_on_commit_callbacks
    ):
        attempt, callbacks = queue(people["manager"], django_capture_on_commit_callbacks)

        attempt.refresh_from_db()
        assert attempt.status == AttemptStatus.PENDING
        assert (attempt.to, attempt.body, attempt.topic) == (
            "+447700900101",
            "Case C-1 needs you",
            TOPIC,
        )
        assert attempt.next_try_at is not None
        assert history(attempt) == [AttemptStatus.PENDING]
        assert len(callbacks) == 1
        assert outbox == []

        callbacks[0]()

        assert [m["to"] for m in outbox] == ["+447700900101"]
        attempt.refresh_from_db()
        assert attempt.status == AttemptStatus.QUEUED

    def test_person_without_a_mobile_number_gets_a_failed_attempt(
        self, db, outbox, django_capture_on_commit_callbacks
    ):
        person = make_person("nophone@example.org", Role.MANAGER)

        with django_capture_on_commit_callbacks(execute=True):
            attempt = services.queue_sms(recipient=person, body="Case C-1", topic=TOPIC)

        attempt.refresh_from_db()
        assert attempt.status == AttemptStatus.FAILED
        assert "No mobile number" in attempt.error_message
        assert attempt.to == ""
        assert history(attempt) == [AttemptStatus.PENDING, AttemptStatus.FAILED]
        assert outbox == []


class TestSendNotificationAttempt:
    def test_sends_once_even_when_the_task_runs_twice(
        self, people, outbox, django_capture_on_commit_callbacks
    ):
        attempt, _ = queue(people["manager"], django_capture_on_commit_callbacks)

        services.send_notification_attempt(attempt_id=attempt.id)
        services.send_notification_attempt(attempt_id=attempt.id)

        assert len(outbox) == 1
        assert outbox[0]["status_callback"] == STATUS_URL
        assert outbox[0]["body"] == "Case C-1 needs you"
        attempt.refresh_from_db()
        assert (attempt.status, attempt.tries) == (AttemptStatus.QUEUED, 1)
        assert attempt.provider_sid == outbox[0]["sid"]
        assert history(attempt) == ["pending", "sending", "queued"]

    def test_missing_attempt_is_ignored(self, db, outbox):
        services.send_notification_attempt(attempt_id=999_999)

        assert outbox == []

    def test_transient_failure_puts_it_back_to_pending_and_retries_later(
        self, people, outbox, flaky, django_capture_on_commit_callbacks
    ):
        flaky.script = [TransientProviderError("Twilio answered 503", code="503")]
        attempt, _ = queue(people["manager"], django_capture_on_commit_callbacks)
        before = timezone.now()

        with django_capture_on_commit_callbacks() as retry:
            services.send_notification_attempt(attempt_id=attempt.id)

        attempt.refresh_from_db()
        assert (attempt.status, attempt.tries, attempt.error_code) == ("pending", 1, "503")
        assert attempt.next_try_at > before + timedelta(seconds=1)
        assert outbox == []

        with django_capture_on_commit_callbacks(execute=True):
            for callback in retry:
                callback()

        assert len(outbox) == 1
        attempt.refresh_from_db()
        assert (attempt.status, attempt.tries) == (AttemptStatus.QUEUED, 2)
        assert flaky.calls == 2

    def test_gives_up_after_max_tries_transient_failures(
        self, people, outbox, flaky, django_capture_on_commit_callbacks
    ):
        flaky.script = [
            TransientProviderError("Could not connect to Twilio") for _ in range(services.MAX_TRIES)
        ]

        with django_capture_on_commit_callbacks(execute=True):
            attempt = services.queue_sms(recipient=people["manager"], body="Case C-1", topic=TOPIC)

        attempt.refresh_from_db()
        assert attempt.status == AttemptStatus.FAILED
        assert attempt.tries == services.MAX_TRIES
        assert attempt.error_message.startswith(f"Gave up after {services.MAX_TRIES} tries")
        assert flaky.calls == services.MAX_TRIES
        assert outbox == []

    def test_permanent_failure_fails_with_the_providers_code(
        self, people, outbox, flaky, django_capture_on_commit_callbacks
    ):
        flaky.script = [PermanentProviderError("The 'To' number is not valid", code="21211")]

        with django_capture_on_commit_callbacks(execute=True):
            attempt = services.queue_sms(recipient=people["manager"], body="Case C-1", topic=TOPIC)
        services.send_notification_attempt(attempt_id=attempt.id)

        attempt.refresh_from_db()
        assert attempt.status == AttemptStatus.FAILED
        assert (attempt.error_code, attempt.error_message) == (
            "21211",
            "The 'To' number is not valid",
        )
        assert attempt.status_changes.get(status=AttemptStatus.FAILED).error_code == "21211"
        assert (flaky.calls, outbox) == (1, [])

    def test_unknown_outcome_is_never_resent(
        self, people, outbox, flaky, django_capture_on_commit_callbacks
    ):
        flaky.script = [UnknownOutcomeError("Twilio did not answer in time")]

        with django_capture_on_commit_callbacks(execute=True):
            attempt = services.queue_sms(recipient=people["manager"], body="Case C-1", topic=TOPIC)
            services.send_notification_attempt(attempt_id=attempt.id)
            services.sweep_notification_attempts(now=timezone.now() + timedelta(hours=1))

        attempt.refresh_from_db()
        assert attempt.status == AttemptStatus.UNKNOWN
        assert attempt.error_message == "Twilio did not answer in time"
        assert (flaky.calls, outbox) == (1, [])

    def test_a_send_that_finishes_after_the_sweeper_gave_up_keeps_its_sid(
        self, people, outbox, settings, django_capture_on_commit_callbacks
    ):
        """The sweeper marked the attempt unknown while the provider call was still running;
        the attempt stays unknown but learns its SID, so later status callbacks still land."""
        settings.SMS_BACKEND = "tests.notifications.test_services.SweptMidSendProvider"
        attempt, _ = queue(people["manager"], django_capture_on_commit_callbacks)

        services.send_notification_attempt(attempt_id=attempt.id)

        attempt.refresh_from_db()
        assert attempt.status == AttemptStatus.UNKNOWN
        assert attempt.provider_sid == outbox[0]["sid"]
        assert services.record_sms_status(provider_sid=attempt.provider_sid, status="delivered")
        attempt.refresh_from_db()
        assert attempt.status == AttemptStatus.DELIVERED


class TestSweepNotificationAttempts:
    def test_resends_overdue_pending_and_gives_up_on_stuck_sending(
        self, people, outbox, django_capture_on_commit_callbacks
    ):
        now = timezone.now()
        lost, _ = queue(people["manager"], django_capture_on_commit_callbacks)
        fresh, _ = queue(people["manager2"], django_capture_on_commit_callbacks)
        stuck, _ = queue(people["hr"], django_capture_on_commit_callbacks)
        busy, _ = queue(people["dpo"], django_capture_on_commit_callbacks)
        NotificationAttempt.objects.filter(pk=lost.pk).update(
            next_try_at=now - timedelta(minutes=5)
        )
        NotificationAttempt.objects.filter(pk=stuck.pk).update(
            status=AttemptStatus.SENDING, updated_at=now - timedelta(seconds=120)
        )
        NotificationAttempt.objects.filter(pk=busy.pk).update(
            status=AttemptStatus.SENDING, updated_at=now - timedelta(seconds=5)
        )

        with django_capture_on_commit_callbacks(execute=True):
            resent = services.sweep_notification_attempts(now=now)

        assert resent == 1
        assert [m["to"] for m in outbox] == ["+447700900101"]
        statuses = {
            a.pk: a.status
            for a in NotificationAttempt.objects.filter(
                pk__in=[lost.pk, fresh.pk, stuck.pk, busy.pk]
            )
        }
        assert statuses == {
            lost.pk: AttemptStatus.QUEUED,
            fresh.pk: AttemptStatus.PENDING,
            stuck.pk: AttemptStatus.UNKNOWN,
            busy.pk: AttemptStatus.SENDING,
        }
        stuck.refresh_from_db()
        assert stuck.error_message == "The sending worker stopped"

    def test_the_celery_task_runs_the_sweep(
        self, people, outbox, django_capture_on_commit_callbacks
    ):
        from notifications.tasks import sweep_notification_attempts

        lost, _ = queue(people["manager"], django_capture_on_commit_callbacks)
        NotificationAttempt.objects.filter(pk=lost.pk).update(
            next_try_at=timezone.now() - timedelta(minutes=5)
        )

        with django_capture_on_commit_callbacks(execute=True):
            assert sweep_notification_attempts.delay().get() == 1

        assert len(outbox) == 1


@pytest.fixture
def sent(people, outbox, django_capture_on_commit_callbacks):
    """An attempt the provider accepted (QUEUED, with a provider SID)."""
    with django_capture_on_commit_callbacks(execute=True):
        attempt = services.queue_sms(recipient=people["manager"], body="Case C-1", topic=TOPIC)
    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.QUEUED
    return attempt


class TestRecordSmsStatus:
    def record(self, attempt, status, capture, error_code=""):
        with capture(execute=True):
            return services.record_sms_status(
                provider_sid=attempt.provider_sid, status=status, error_code=error_code
            )

    def test_each_status_is_recorded_once_in_order(
        self, sent, status_events, django_capture_on_commit_callbacks
    ):
        for status in ("queued", "sent", "delivered"):
            assert self.record(sent, status, django_capture_on_commit_callbacks) is True

        sent.refresh_from_db()
        assert sent.status == AttemptStatus.DELIVERED
        assert history(sent) == ["pending", "sending", "queued", "sent", "delivered"]
        assert [e["status"] for e in status_events] == ["sent", "delivered"]

    def test_a_repeated_callback_records_nothing_new(
        self, sent, status_events, django_capture_on_commit_callbacks
    ):
        self.record(sent, "sent", django_capture_on_commit_callbacks)
        changes = StatusChange.objects.count()

        assert self.record(sent, "sent", django_capture_on_commit_callbacks) is True

        assert StatusChange.objects.count() == changes
        assert [e["status"] for e in status_events] == ["sent"]

    def test_a_late_callback_never_moves_the_status_back(
        self, sent, status_events, django_capture_on_commit_callbacks
    ):
        self.record(sent, "delivered", django_capture_on_commit_callbacks)
        self.record(sent, "sent", django_capture_on_commit_callbacks)
        self.record(sent, "queued", django_capture_on_commit_callbacks)

        sent.refresh_from_db()
        assert sent.status == AttemptStatus.DELIVERED
        assert [e["status"] for e in status_events] == ["delivered"]

    def test_a_final_status_is_not_overwritten_by_another_final_status(
        self, sent, django_capture_on_commit_callbacks
    ):
        self.record(sent, "undelivered", django_capture_on_commit_callbacks, error_code="30003")
        self.record(sent, "delivered", django_capture_on_commit_callbacks)

        sent.refresh_from_db()
        assert (sent.status, sent.error_code) == (AttemptStatus.UNDELIVERED, "30003")

    def test_statuses_we_do_not_track_change_nothing(
        self, sent, django_capture_on_commit_callbacks
    ):
        assert self.record(sent, "accepted", django_capture_on_commit_callbacks) is True

        sent.refresh_from_db()
        assert sent.status == AttemptStatus.QUEUED
        assert "accepted" not in history(sent)

    def test_unknown_sid_returns_false(self, db):
        assert services.record_sms_status(provider_sid="SM" + "0" * 32, status="delivered") is False


class TestAttemptStatusChangedSignal:
    def test_fires_on_commit_with_the_attempt_details(
        self, people, outbox, status_events, django_capture_on_commit_callbacks
    ):
        attempt, _ = queue(people["manager"], django_capture_on_commit_callbacks)

        with django_capture_on_commit_callbacks() as callbacks:
            services.send_notification_attempt(attempt_id=attempt.id)
        assert status_events == []

        for callback in callbacks:
            callback()

        assert [e["status"] for e in status_events] == ["sending", "queued"]
        event = status_events[-1]
        assert event["sender"] is NotificationAttempt
        assert isinstance(event.pop("at"), datetime)
        event.pop("signal")
        assert event == {
            "sender": NotificationAttempt,
            "attempt_id": attempt.id,
            "topic": TOPIC,
            "status": AttemptStatus.QUEUED,
            "recipient_id": people["manager"].id,
            "channel": "sms",
            "provider_sid": outbox[0]["sid"],
            "error_code": "",
        }

    def test_is_not_sent_when_the_transaction_rolls_back(
        self, db, status_events, django_capture_on_commit_callbacks
    ):
        from django.db import transaction

        person = make_person("nophone@example.org", Role.MANAGER)
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            try:
                with transaction.atomic():
                    services.queue_sms(recipient=person, body="Case C-1", topic=TOPIC)
                    raise RuntimeError("caller failed")
            except RuntimeError:
                pass

        assert callbacks == []
        assert status_events == []
        assert not NotificationAttempt.objects.filter(recipient=person).exists()


class TestHandleInboundSms:
    def inbound(self, body, *, sid="SM" + "1" * 32, from_number="+447700900101"):
        return services.handle_inbound_sms(
            provider_sid=sid, from_number=from_number, to_number="+447700900000", body=body
        )

    def test_unknown_sender_is_told_the_number_is_not_registered(self, people, commands):
        reply = self.inbound("ACK C-2026-0001", from_number="+447700900999")

        assert "not registered" in reply
        message = InboundMessage.objects.get()
        assert (message.sender, message.from_number, message.reply) == (
            None,
            "+447700900999",
            reply,
        )

    def test_help(self, people, commands):
        reply = self.inbound(" help ")

        assert "reply with the code in the page" in reply
        assert InboundMessage.objects.get().sender == people["manager"]

    def test_gibberish_gets_a_hint(self, people, commands):
        assert "did not understand" in self.inbound("what is this?")

    def test_ack_is_passed_up_as_a_command_and_the_receivers_answer_is_the_reply(
        self, people, commands
    ):
        calls = []

        def receiver(sender, **kwargs):
            calls.append(kwargs)
            return "OK"

        commands.connect(receiver, weak=False)

        reply = self.inbound("ack c-2026-0001")

        assert reply == "OK"
        assert [(c["user"], c["command"], c["argument"], c["channel"]) for c in calls] == [
            (people["manager"], "ack", "C-2026-0001", "sms")
        ]
        assert InboundMessage.objects.get().reply == "OK"

    def test_bare_ack_has_an_empty_argument(self, people, commands):
        arguments = []
        commands.connect(lambda sender, **kw: arguments.append(kw["argument"]), weak=False)

        self.inbound("1")

        assert arguments == [""]

    def test_no_answer_from_any_receiver_means_no_open_page(self, people, commands):
        commands.connect(lambda sender, **kw: None, weak=False)

        assert "no open page" in self.inbound("ACK")

    def test_the_same_sid_twice_acts_once_and_answers_the_same(self, people, commands):
        calls = []

        def receiver(sender, **kwargs):
            calls.append(kwargs["argument"])
            return f"Acknowledged {kwargs['argument']}"

        commands.connect(receiver, weak=False)

        first = self.inbound("ACK C-2026-0001")
        second = self.inbound("ACK C-2026-0002")

        assert first == second == "Acknowledged C-2026-0001"
        assert calls == ["C-2026-0001"]
        assert InboundMessage.objects.count() == 1

    def test_a_welsh_speaker_is_answered_in_welsh(self, db, commands):
        make_person("cymro@example.org", Role.MANAGER, "+447700900150", language="cy")
        languages = []

        def receiver(sender, **kwargs):
            languages.append(translation.get_language())

        commands.connect(receiver, weak=False)

        help_reply = self.inbound("CYMORTH", from_number="+447700900150")
        ack_reply = self.inbound("ACK", sid="SM" + "2" * 32, from_number="+447700900150")

        assert help_reply and ack_reply
        assert languages == ["cy"]

    def test_an_inactive_person_is_not_recognised(self, db, commands):
        make_person("left@example.org", Role.MANAGER, "+447700900151", is_active=False)

        reply = self.inbound("HELP", from_number="+447700900151")

        assert "not registered" in reply
        assert InboundMessage.objects.get().sender is None
