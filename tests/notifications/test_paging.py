"""notifications.services.page_person and what follows it: channel rules, falling back to the
next channel, retry calls, page_exhausted, voice outcomes, the per-phone throttle, early
callbacks, polling, email, and inbound SMS commands in English and Welsh.

SMS and calls go to the in-memory outbox provider (tests/conftest.py); the flows through
the real SDK and the sandbox are in tests/integration/test_phone_paths.py."""

import smtplib
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from notifications import services
from notifications.messages import PageMessage
from notifications.models import (
    AttemptStatus,
    Channel,
    ContactPreferences,
    EarlyCallback,
    InboundMessage,
    NotificationAttempt,
    PageRequest,
)
from notifications.providers import outbox as sms_outbox
from notifications.providers.base import ProviderStatus
from notifications.providers.outbox import OutboxProvider
from notifications.selectors import page_timings
from notifications.signals import inbound_command, page_exhausted
from staff.models import Role
from tests.conftest import make_person

MESSAGE = PageMessage(reference="C-2026-0007", urgency="urgent", title="urgent disclosure")
NORMAL = PageMessage(reference="C-2026-0008", urgency="normal", title="concern about a colleague")
# What a report holds and no page may carry.
NARRATIVE = "Mrs Example at 4 Secret Lane told me her son hits her"
SERVICE_USER = "SU-55501"


@pytest.fixture(autouse=True)
def _base_url(settings):
    settings.PUBLIC_BASE_URL = "https://concernline.example"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def calls():
    return sms_outbox.calls


@pytest.fixture
def commands(monkeypatch):
    """inbound_command with only a recorder connected (not oncall's receivers)."""
    monkeypatch.setattr(inbound_command, "receivers", [])
    monkeypatch.setattr(inbound_command, "sender_receivers_cache", {})
    received = []

    def recorder(sender, **kwargs):
        received.append(kwargs)
        return received.answer if hasattr(received, "answer") else ""

    received = type("Received", (list,), {})()
    inbound_command.connect(recorder, weak=False, dispatch_uid="test-commands")
    yield received
    inbound_command.disconnect(dispatch_uid="test-commands")


@pytest.fixture
def exhausted():
    events = []

    def receiver(sender, **kwargs):
        events.append(kwargs)

    page_exhausted.connect(receiver, weak=False, dispatch_uid="test-exhausted")
    yield events
    page_exhausted.disconnect(dispatch_uid="test-exhausted")


def page(person, capture, *, importance="important", message=MESSAGE, topic="test.page:1"):
    with capture(execute=True):
        services.page_person(recipient=person, importance=importance, message=message, topic=topic)
    return PageRequest.objects.filter(recipient=person, topic=topic).latest("id")


def attempts(page_request, channel=None):
    qs = NotificationAttempt.objects.filter(page=page_request).order_by("id")
    return list(qs.filter(channel=channel) if channel else qs)


def status(capture, sid, value, error_code=""):
    with capture(execute=True):
        services.record_sms_status(provider_sid=sid, status=value, error_code=error_code)


def call_status(capture, sid, value, answered_by=""):
    with capture(execute=True):
        services.record_call_status(call_sid=sid, call_status=value, answered_by=answered_by)


def rule(person, important=None, normal=None):
    prefs, _ = ContactPreferences.objects.get_or_create(user=person)
    prefs.important_rule = important or prefs.important_rule
    prefs.normal_rule = normal or prefs.normal_rule
    prefs.save()


class TestChannelPlan:
    def test_safe_defaults_without_preferences(self, people):
        plan = services.channel_plan(recipient=people["manager"], importance="important")
        assert plan == [["sms", "call"], ["call"], ["email"]]
        assert services.channel_plan(recipient=people["manager"], importance="normal") == [
            ["sms"],
            ["email"],
        ]

    def test_a_persons_own_rule_is_used(self, people):
        rule(people["manager"], important="call_then_sms", normal="email")
        assert services.channel_plan(recipient=people["manager"], importance="important")[0] == [
            "call"
        ]
        assert services.channel_plan(recipient=people["manager"], importance="normal") == [
            ["email"]
        ]

    def test_sms_is_left_out_after_stop(self, people):
        ContactPreferences.objects.create(user=people["manager"], sms_opted_out=True)
        plan = services.channel_plan(recipient=people["manager"], importance="important")
        assert plan == [["call"], ["call"], ["email"]]


class TestPagePerson:
    def test_important_page_sends_an_sms_and_a_call_at_once(
        self, people, outbox, calls, django_capture_on_commit_callbacks
    ):
        request = page(people["manager"], django_capture_on_commit_callbacks)

        [sms] = outbox
        assert sms["to"] == "+447700900101"
        body = sms["body"]
        assert f"Reply {request.code}A to acknowledge, {request.code}E to escalate" in body
        assert "C-2026-0007" in body and "URGENT" in body
        assert len(body) <= 160 and body.isascii()
        [call] = calls
        sms_attempt, call_attempt = attempts(request)
        assert call["url"] == (
            f"https://concernline.example/twilio/voice/answer/?attempt={call_attempt.id}"
        )
        assert call["status_callback"] == "https://concernline.example/twilio/voice/status/"
        assert (sms_attempt.status, call_attempt.status) == ("queued", "queued")
        assert request.next_step_at is not None and request.first_sent_at is not None

    def test_no_page_text_carries_case_content(
        self, people, outbox, calls, django_capture_on_commit_callbacks
    ):
        rule(people["manager"], important="sms_and_call")
        request = page(people["manager"], django_capture_on_commit_callbacks)
        texts = [a.body for a in attempts(request)] + [m["body"] for m in outbox]
        for text in texts:
            assert NARRATIVE not in text and SERVICE_USER not in text
            assert "Secret Lane" not in text

    def test_normal_page_sends_one_sms_and_no_timer(
        self, people, outbox, calls, django_capture_on_commit_callbacks
    ):
        request = page(people["manager"], django_capture_on_commit_callbacks, importance="normal")

        assert len(outbox) == 1 and calls == []
        assert request.next_step_at is None

    def test_an_unknown_importance_is_refused(self, people):
        with pytest.raises(ValueError, match="importance"):
            services.page_person(
                recipient=people["manager"], importance="loud", message=MESSAGE, topic="t:1"
            )

    def test_welsh_speaker_gets_welsh_sms_that_still_fits_one_segment(
        self, db, outbox, django_capture_on_commit_callbacks
    ):
        person = make_person("cymraeg@example.org", Role.MANAGER, "+447700900150", language="cy")
        page(person, django_capture_on_commit_callbacks, importance="normal")
        body = outbox[0]["body"]
        assert "Atebwch" in body and "C-2026-0007" in body
        assert len(body) <= 160 and body.isascii()

    def test_a_long_title_is_shortened_so_the_codes_always_fit(self, db):
        from notifications.messages import sms_text

        long = PageMessage(reference="C-2026-9999", urgency="urgent", title="y" * 80)
        body = sms_text(long, language="en", code="123456")
        assert len(body) <= 160 and "123456A" in body and "123456E" in body


class TestFallingBack:
    def test_undelivered_sms_moves_to_the_call_at_once(
        self, people, outbox, calls, django_capture_on_commit_callbacks
    ):
        rule(people["manager"], important="sms_then_call")
        request = page(people["manager"], django_capture_on_commit_callbacks)
        assert calls == []

        status(django_capture_on_commit_callbacks, outbox[0]["sid"], "undelivered", "30003")

        assert len(calls) == 1
        request.refresh_from_db()
        assert request.step == 1
        [call_attempt] = attempts(request, Channel.CALL)
        assert (call_attempt.step, call_attempt.status) == (1, AttemptStatus.QUEUED)

    @pytest.mark.parametrize("outcome", ["busy", "no-answer", "failed"])
    def test_an_unanswered_call_moves_to_the_next_channel(
        self, people, outbox, calls, django_capture_on_commit_callbacks, outcome
    ):
        rule(people["manager"], important="call_then_sms")
        request = page(people["manager"], django_capture_on_commit_callbacks)

        call_status(django_capture_on_commit_callbacks, calls[0]["sid"], outcome)

        [call_attempt] = attempts(request, Channel.CALL)
        assert call_attempt.error_code == outcome
        assert call_attempt.status_changes.last().detail == outcome
        assert len(outbox) == 1  # the SMS of step 1

    def test_every_channel_failing_exhausts_the_page_once(
        self, people, outbox, calls, exhausted, settings, django_capture_on_commit_callbacks
    ):
        settings.EMAIL_BACKEND = "tests.notifications.test_paging.RefusingEmailBackend"
        rule(people["manager"], important="sms_then_call")
        request = page(people["manager"], django_capture_on_commit_callbacks)

        status(django_capture_on_commit_callbacks, outbox[0]["sid"], "failed", "30008")
        assert exhausted == []
        call_status(
            django_capture_on_commit_callbacks, calls[0]["sid"], "completed", "machine_end_beep"
        )
        # Then the last channel, email, is refused by the mail server.

        assert exhausted == [
            {"signal": page_exhausted, "topic": "test.page:1", "recipient_id": people["manager"].id}
        ]
        request.refresh_from_db()
        assert request.exhausted_at is not None and request.closed_at is not None
        email_attempt = attempts(request, Channel.EMAIL)[0]
        assert email_attempt.status == AttemptStatus.FAILED
        assert "refused" in email_attempt.error_message
        assert attempts(request, Channel.CALL)[0].error_code == "voicemail"

    def test_a_delivered_sms_means_the_page_is_not_exhausted(
        self, people, outbox, calls, exhausted, django_capture_on_commit_callbacks
    ):
        request = page(people["manager"], django_capture_on_commit_callbacks)
        status(django_capture_on_commit_callbacks, outbox[0]["sid"], "delivered")
        call_status(django_capture_on_commit_callbacks, calls[0]["sid"], "busy")

        assert exhausted == []
        request.refresh_from_db()
        assert request.step == 0  # the SMS got through: the step did not fail
        assert request.first_delivered_at is not None


class RefusingEmailBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise smtplib.SMTPRecipientsRefused({"x@example.org": (550, b"no such user")})


class TestRetryCall:
    def test_an_unacknowledged_important_page_calls_again_after_the_interval(
        self, people, outbox, calls, settings, django_capture_on_commit_callbacks
    ):
        request = page(people["manager"], django_capture_on_commit_callbacks)
        assert len(calls) == 1
        early = request.next_step_at - timedelta(seconds=1)

        with django_capture_on_commit_callbacks(execute=True):
            assert services.advance_page(page_id=request.id, step=0, now=early) is False
            assert services.advance_page(page_id=request.id, step=0, now=request.next_step_at)
            assert (
                services.advance_page(page_id=request.id, step=0, now=request.next_step_at) is False
            )

        assert len(calls) == 2
        request.refresh_from_db()
        assert request.step == 1

    def test_an_acknowledged_page_is_not_called_again(
        self, people, outbox, calls, django_capture_on_commit_callbacks
    ):
        request = page(people["manager"], django_capture_on_commit_callbacks)
        services.close_pages(
            topics=[request.topic], acknowledged_by_id=people["manager"].id, via="web"
        )

        with django_capture_on_commit_callbacks(execute=True):
            assert (
                services.advance_page(page_id=request.id, step=0, now=request.next_step_at) is False
            )

        assert len(calls) == 1
        request.refresh_from_db()
        assert request.acknowledged_via == "web" and request.acknowledged_at is not None

    def test_the_sweeper_runs_a_retry_whose_task_was_lost(
        self, people, outbox, calls, settings, django_capture_on_commit_callbacks
    ):
        request = page(people["manager"], django_capture_on_commit_callbacks)
        later = request.next_step_at + timedelta(seconds=settings.ALERT_SWEEP_GRACE_SECONDS + 1)

        with django_capture_on_commit_callbacks(execute=True):
            services.sweep_notification_attempts(now=later)

        assert len(calls) == 2


class TestCallOutcomes:
    def sent_call(self, people, calls, capture):
        rule(people["manager"], important="call_then_sms")
        request = page(people["manager"], capture)
        return request, attempts(request, Channel.CALL)[0]

    def test_completed_with_no_key_is_not_delivered(
        self, people, outbox, calls, django_capture_on_commit_callbacks
    ):
        _, attempt = self.sent_call(people, calls, django_capture_on_commit_callbacks)
        call_status(django_capture_on_commit_callbacks, attempt.provider_sid, "in-progress")
        call_status(django_capture_on_commit_callbacks, attempt.provider_sid, "completed")

        attempt.refresh_from_db()
        assert (attempt.status, attempt.error_code) == ("undelivered", "no key pressed")
        assert len(outbox) == 1  # moved on to SMS

    def test_key_1_delivers_and_acknowledges_by_the_page_topic(
        self, people, outbox, calls, commands, django_capture_on_commit_callbacks
    ):
        request, attempt = self.sent_call(people, calls, django_capture_on_commit_callbacks)
        with django_capture_on_commit_callbacks(execute=True):
            said = services.call_key_pressed(
                attempt_id=attempt.id, call_sid=attempt.provider_sid, digits="1"
            )
            again = services.call_key_pressed(
                attempt_id=attempt.id, call_sid=attempt.provider_sid, digits="1"
            )
        call_status(django_capture_on_commit_callbacks, attempt.provider_sid, "completed")

        assert "pressed 1" in said and "pressed 1" in again
        assert [(c["command"], c["channel"], c["topic"]) for c in commands] == [
            ("ack", "call", "test.page:1")
        ]
        attempt.refresh_from_db()
        assert (attempt.status, attempt.digits) == ("delivered", "1")
        request.refresh_from_db()
        assert request.acknowledged_via == "call" and request.closed_at is not None

    def test_key_2_escalates_and_other_keys_mean_nothing(
        self, people, outbox, calls, commands, django_capture_on_commit_callbacks
    ):
        _, attempt = self.sent_call(people, calls, django_capture_on_commit_callbacks)
        sid = attempt.provider_sid
        assert services.call_key_pressed(attempt_id=attempt.id, call_sid=sid, digits="7") is None
        said = services.call_key_pressed(attempt_id=attempt.id, call_sid=sid, digits="2")

        assert "next person" in said
        assert [c["command"] for c in commands] == ["escalate"]

    def test_a_key_for_another_calls_sid_does_nothing(
        self, people, outbox, calls, commands, django_capture_on_commit_callbacks
    ):
        _, attempt = self.sent_call(people, calls, django_capture_on_commit_callbacks)
        said = services.call_key_pressed(
            attempt_id=attempt.id, call_sid="CA" + "9" * 32, digits="1"
        )
        assert said == "" and commands == []


class EarlyCallbackProvider(OutboxProvider):
    """Twilio's callbacks can outrun our own commit of the SID: deliver before returning."""

    def send_sms(self, *, to, body, status_callback):
        sent = super().send_sms(to=to, body=body, status_callback=status_callback)
        assert services.record_sms_status(provider_sid=sent.sid, status="sent") is False
        assert services.record_sms_status(provider_sid=sent.sid, status="delivered") is False
        return sent


class StuckThenDeliveredProvider(OutboxProvider):
    def fetch_status(self, *, sid, channel):
        return ProviderStatus(status="delivered")


class TestCallbacksAndPolling:
    def test_a_callback_before_the_sid_is_stored_is_applied_when_it_is(
        self, people, outbox, settings, django_capture_on_commit_callbacks
    ):
        settings.SMS_BACKEND = "tests.notifications.test_paging.EarlyCallbackProvider"
        with django_capture_on_commit_callbacks(execute=True):
            attempt = services.queue_sms(recipient=people["manager"], body="Case C-1", topic="t:1")

        attempt.refresh_from_db()
        assert attempt.status == AttemptStatus.DELIVERED
        assert list(attempt.status_changes.values_list("status", flat=True)) == [
            "pending",
            "sending",
            "queued",
            "sent",
            "delivered",
        ]
        assert EarlyCallback.objects.count() == 0

    def test_out_of_order_call_callbacks_end_in_the_right_state(
        self, people, outbox, calls, django_capture_on_commit_callbacks
    ):
        rule(people["manager"], important="call_then_sms")
        request = page(people["manager"], django_capture_on_commit_callbacks)
        sid = calls[0]["sid"]
        for value in ("busy", "ringing", "initiated", "busy"):
            call_status(django_capture_on_commit_callbacks, sid, value)

        [attempt] = attempts(request, Channel.CALL)
        assert attempt.status == AttemptStatus.UNDELIVERED
        assert len(outbox) == 1  # moved on exactly once

    def test_messages_stuck_at_the_provider_are_polled(
        self, people, outbox, settings, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            attempt = services.queue_sms(recipient=people["manager"], body="Case C-1", topic="t:1")
        settings.SMS_BACKEND = "tests.notifications.test_paging.StuckThenDeliveredProvider"
        later = timezone.now() + timedelta(seconds=settings.PAGING_POLL_AFTER_SECONDS + 1)

        assert services.poll_stuck_attempts(now=timezone.now()) == 0
        with django_capture_on_commit_callbacks(execute=True):
            assert services.poll_stuck_attempts(now=later) == 1

        attempt.refresh_from_db()
        assert attempt.status == AttemptStatus.DELIVERED


class TestEmail:
    def test_a_normal_notice_by_email_carries_no_case_content(
        self, people, outbox, django_capture_on_commit_callbacks
    ):
        rule(people["manager"], normal="email")
        request = page(
            people["manager"],
            django_capture_on_commit_callbacks,
            importance="normal",
            message=NORMAL,
        )

        [email] = mail.outbox
        assert email.to == ["manager@example.org"] and "C-2026-0008" in email.subject
        assert "https://concernline.example/" in email.body
        assert NARRATIVE not in email.body and SERVICE_USER not in email.body
        assert attempts(request)[0].status == AttemptStatus.SENT
        assert outbox == []


class TestThrottle:
    def test_a_burst_of_50_respects_the_limit_but_every_first_urgent_page_goes(
        self, people, outbox, calls, settings, django_capture_on_commit_callbacks
    ):
        settings.PAGING_THROTTLE_SMS = "3/60"
        settings.PAGING_THROTTLE_CALL = "1/60"
        person = people["manager"]
        with django_capture_on_commit_callbacks():  # send tasks are run by hand below
            for n in range(45):
                services.page_person(
                    recipient=person, importance="normal", message=NORMAL, topic=f"n:{n}"
                )
            for n in range(5):
                services.page_person(
                    recipient=person, importance="important", message=MESSAGE, topic=f"u:{n}"
                )
        with django_capture_on_commit_callbacks():  # hold-back re-enqueues are not run
            for attempt in NotificationAttempt.objects.order_by("id"):
                services.send_notification_attempt(attempt_id=attempt.id)

        urgent = NotificationAttempt.objects.filter(page__importance="important")
        assert urgent.count() == 10  # SMS and call for each of the 5
        assert set(urgent.values_list("status", flat=True)) == {AttemptStatus.QUEUED}
        normal = NotificationAttempt.objects.filter(page__importance="normal")
        assert normal.filter(status=AttemptStatus.QUEUED).count() == 3
        held = normal.filter(status=AttemptStatus.PENDING)
        assert held.count() == 42
        assert all(a.next_try_at > timezone.now() for a in held)
        assert len(outbox) == 3 + 5 and len(calls) == 5


class TestInboundCommands:
    def sms(self, body, phone="+447700900101", sid=None):
        sid = sid or f"SM{InboundMessage.objects.count():032d}"
        return services.handle_inbound_sms(
            provider_sid=sid, from_number=phone, to_number="+447700900000", body=body
        )

    def test_reply_codes_acknowledge_and_escalate_case_insensitively(
        self, people, outbox, calls, commands, django_capture_on_commit_callbacks
    ):
        request = page(people["manager"], django_capture_on_commit_callbacks)

        ack = self.sms(f" {request.code}a ")
        esc = self.sms(f"{request.code} E")

        assert [(c["command"], c["topic"], c["channel"]) for c in commands] == [
            ("ack", "test.page:1", "sms"),
            ("escalate", "test.page:1", "sms"),
        ]
        assert "acknowledged case C-2026-0007" in ack and "next person" in esc

    def test_someone_elses_code_does_nothing(
        self, people, outbox, calls, commands, django_capture_on_commit_callbacks
    ):
        request = page(people["manager"], django_capture_on_commit_callbacks)
        reply = self.sms(f"{request.code}A", phone="+447700900102")
        assert "not one of your pages" in reply and commands == []

    @pytest.mark.parametrize("word", ["ACK", "ack", "1", "derbyn", "CYDNABOD"])
    def test_plain_acknowledgements_in_english_and_welsh(self, people, commands, word):
        self.sms(word)
        assert [(c["command"], c["topic"], c["argument"]) for c in commands] == [("ack", "", "")]

    def test_an_acknowledgement_with_a_reference(self, people, commands):
        self.sms("Derbyn c-2026-0007")
        assert commands[0]["argument"] == "C-2026-0007"

    def test_help_in_the_senders_language(self, db, commands):
        make_person("cy@example.org", Role.MANAGER, "+447700900151", language="cy")
        welsh = self.sms("cymorth", phone="+447700900151")
        english = self.sms("HELP", phone="+447700900151")
        assert "Atebwch" in welsh and welsh == english
        assert commands == []

    def test_stop_and_start(self, people, commands):
        assert "START" in self.sms("stop")
        assert ContactPreferences.objects.get(user=people["manager"]).sms_opted_out
        self.sms("Dechrau")
        assert not ContactPreferences.objects.get(user=people["manager"]).sms_opted_out

    @pytest.mark.parametrize(
        ("off", "on"), [("CANCEL", "YES"), ("quit", "unstop"), ("END", "START")]
    )
    def test_twilios_own_opt_out_and_opt_in_words(self, people, commands, off, on):
        """Twilio blocks or unblocks the phone on these words itself; the preferences follow."""
        self.sms(off)
        assert ContactPreferences.objects.get(user=people["manager"]).sms_opted_out
        self.sms(on)
        assert not ContactPreferences.objects.get(user=people["manager"]).sms_opted_out

    def test_a_code_from_a_shared_phone_answers_as_the_person_paged(
        self, people, outbox, calls, commands, django_capture_on_commit_callbacks
    ):
        """A team's on-call handset: the code names the page, so the person paged answers,
        not whoever else has the number (here someone listed before them)."""
        shared = str(people["manager"].phone)
        people["hr"].phone = shared
        people["hr"].save()
        request = page(people["manager"], django_capture_on_commit_callbacks)

        reply = self.sms(f"{request.code}A", phone=shared)

        assert "acknowledged case C-2026-0007" in reply
        assert [(c["user"], c["command"], c["topic"]) for c in commands] == [
            (people["manager"], "ack", "test.page:1")
        ]
        assert InboundMessage.objects.get().sender == people["manager"]

    def test_a_command_without_a_code_from_a_shared_phone_asks_for_the_code(self, people, commands):
        people["worker"].phone = people["manager"].phone
        people["worker"].save()
        for body in ("ACK", "ESCALATE C-2026-0007"):
            reply = self.sms(body)
            assert "shared" in reply and "code from the page" in reply and len(reply) <= 160
        assert commands == []
        assert {m.sender for m in InboundMessage.objects.all()} == {None}

    def test_stop_from_a_shared_phone_stops_sms_for_everyone_on_it(self, people, commands):
        """The provider blocks the phone itself, so nobody on it can be sent SMS pages."""
        people["worker"].phone = people["manager"].phone
        people["worker"].save()
        self.sms("STOP")
        assert ContactPreferences.objects.get(user=people["manager"]).sms_opted_out
        assert ContactPreferences.objects.get(user=people["worker"]).sms_opted_out
        self.sms("START")
        assert not ContactPreferences.objects.get(user=people["worker"]).sms_opted_out

    def test_unknown_sender_gets_a_short_answer_and_is_logged(self, db, commands, caplog):
        reply = self.sms("ACK", phone="+447700900999")
        assert "not registered" in reply and len(reply) <= 160
        assert commands == [] and InboundMessage.objects.get().sender is None
        assert "unknown number" in caplog.text

    def test_unknown_words_get_a_short_answer(self, people, commands):
        reply = self.sms("what is this")
        assert "did not understand" in reply and commands == []

    def test_an_auto_responder_loop_is_cut_off(self, people, settings, commands):
        settings.PAGING_INBOUND_LIMIT = 3
        replies = [self.sms("I am out of the office") for _ in range(5)]
        assert all(replies[:3]) and replies[3:] == ["", ""]
        assert InboundMessage.objects.count() == 5

    def test_an_acknowledgement_past_the_limit_still_counts_unanswered(
        self, people, settings, outbox, calls, commands, django_capture_on_commit_callbacks
    ):
        """A busy night's texts (or an auto-responder's) use up the limit; a manager's reply
        code after that still acknowledges: only the answer is held back."""
        settings.PAGING_INBOUND_LIMIT = 3
        request = page(people["manager"], django_capture_on_commit_callbacks)
        for _ in range(3):
            self.sms("HELP")
        assert self.sms(f"{request.code}A") == ""
        assert [(c["command"], c["topic"]) for c in commands] == [("ack", "test.page:1")]
        assert InboundMessage.objects.latest("id").sender == people["manager"]

    def test_an_over_long_answer_is_capped_not_a_crash(self, people, commands):
        commands.answer = "x" * 2000
        reply = self.sms("ACK")
        assert len(reply) == InboundMessage.REPLY_MAX_LENGTH


class TestTimings:
    def test_times_to_notification_delivery_and_acknowledgement_per_channel(
        self, people, outbox, calls, django_capture_on_commit_callbacks, django_assert_num_queries
    ):
        request = page(people["manager"], django_capture_on_commit_callbacks)
        status(django_capture_on_commit_callbacks, outbox[0]["sid"], "delivered")
        services.close_pages(
            topics=[request.topic], acknowledged_by_id=people["manager"].id, via="sms"
        )

        with django_assert_num_queries(3):
            [timing] = page_timings(topic=request.topic)

        assert timing["recipient_id"] == people["manager"].id
        assert 0 <= timing["to_first_notification"] <= timing["to_delivery"]
        assert timing["to_acknowledgement"] >= timing["to_delivery"]
        assert timing["acknowledged_via"] == "sms"
        assert timing["channels"]["sms"]["to_delivery"] is not None
        assert timing["channels"]["call"]["to_delivery"] is None


class TestThrottleSettings:
    def test_a_malformed_limit_is_a_system_check_error_and_never_stops_a_page(
        self, people, outbox, settings, django_capture_on_commit_callbacks
    ):
        from notifications.checks import check_paging_settings

        settings.PAGING_THROTTLE_SMS = "lots"
        assert [e.id for e in check_paging_settings(None)] == ["notifications.E003"]

        page(people["manager"], django_capture_on_commit_callbacks, importance="normal")

        assert len(outbox) == 1


class TestNoAddress:
    def test_a_person_without_a_phone_is_paged_by_email_at_once(
        self, db, outbox, calls, django_capture_on_commit_callbacks
    ):
        person = make_person("nophone@example.org", Role.MANAGER)
        request = page(person, django_capture_on_commit_callbacks)

        statuses = [(a.step, a.channel, a.status) for a in attempts(request)]
        assert statuses == [
            (0, "sms", "failed"),
            (0, "call", "failed"),
            (1, "call", "failed"),
            (2, "email", "sent"),
        ]
        assert len(mail.outbox) == 1 and outbox == [] and calls == []
        request.refresh_from_db()
        assert request.step == 2 and request.next_step_at is None
