"""One page, attempt or status that fails for a reason nobody foresaw (here PostgreSQL refusing
its rows, as it refused an email address too long for its column) is logged and left for the
next sweep; the other pages still move on, the rest of the sweep still runs, and a provider's
status is never lost with it."""

from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from notifications import services
from notifications.models import (
    AttemptStatus,
    Channel,
    EarlyCallback,
    NotificationAttempt,
    PageRequest,
)
from staff.models import Role
from tests.conftest import make_person, refused
from tests.notifications.test_paging import attempts, page, rule
from tests.notifications.test_webhooks import (
    STATUS_PATH,
    _twilio_settings,  # noqa: F401 (autouse: signed webhooks)
    post,
    sign,
)


@pytest.fixture
def two(db):
    return (
        make_person("first@example.org", Role.MANAGER, "+447700900161"),
        make_person("second@example.org", Role.MANAGER, "+447700900162"),
    )


def attempts_of(person):
    return refused("notifications_notificationattempt", f"NEW.recipient_id = {person.id}")


def status_changes_of(attempt):
    return refused("notifications_statuschange", f"NEW.attempt_id = {attempt.id}")


def test_a_page_whose_next_step_fails_holds_back_no_other_page(
    two, outbox, settings, caplog, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    first, second = two
    stuck = page(first, capture, topic="t:first")
    other = page(second, capture, topic="t:second")
    settings.SMS_BACKEND = "tests.notifications.test_paging.StuckThenDeliveredProvider"
    EarlyCallback.objects.create(provider_sid="SM" + "0" * 32, status=AttemptStatus.DELIVERED)
    EarlyCallback.objects.update(received_at=timezone.now() - timedelta(days=2))
    later = timezone.now() + timedelta(
        seconds=max(settings.PAGING_CALL_RETRY_SECONDS, settings.PAGING_POLL_AFTER_SECONDS)
        + settings.ALERT_SWEEP_GRACE_SECONDS
        + 1
    )

    with attempts_of(first), capture(execute=True):
        services.sweep_notification_attempts(now=later)

    stuck.refresh_from_db()
    other.refresh_from_db()
    assert stuck.step == 0 and f"page {stuck.id}: step 0 failed" in caplog.text
    assert other.step == 1
    assert [a.status for a in attempts(other, Channel.CALL)] == ["queued", "queued"]
    # The later parts of the sweep ran: the messages sat at the provider were asked about...
    [sms] = attempts(other, Channel.SMS)
    assert sms.status == AttemptStatus.DELIVERED
    # ...and the callbacks kept for a SID never stored were cleared.
    assert not EarlyCallback.objects.exists()

    # Nothing was lost: the next sweep starts the failed page's step.
    with capture(execute=True):
        services.sweep_notification_attempts(now=later)
    stuck.refresh_from_db()
    assert stuck.step == 1 and len(attempts(stuck, Channel.CALL)) == 2


def test_an_attempt_left_sending_that_cannot_be_marked_unknown_holds_back_no_other(
    two, outbox, caplog, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):  # their send tasks never run
        lost = services.queue_sms(recipient=two[0], body="Case C-1", topic="t:1")
        other = services.queue_sms(recipient=two[1], body="Case C-2", topic="t:2")
    NotificationAttempt.objects.update(
        status=AttemptStatus.SENDING, updated_at=timezone.now() - timedelta(minutes=5)
    )

    with status_changes_of(lost), django_capture_on_commit_callbacks(execute=True):
        services.sweep_notification_attempts()

    lost.refresh_from_db()
    other.refresh_from_db()
    assert (lost.status, other.status) == (AttemptStatus.SENDING, AttemptStatus.UNKNOWN)
    assert f"attempt {lost.id}: could not mark it unknown" in caplog.text
    assert outbox == []  # an attempt that may have gone is never sent again


def test_an_undelivered_sms_stands_when_the_email_after_it_cannot_start(
    two, client, outbox, settings, caplog, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    person = two[0]
    rule(person, important="sms_then_email")
    request = page(person, capture)
    [sms] = attempts(request)
    params = {"MessageSid": sms.provider_sid, "MessageStatus": "undelivered", "ErrorCode": "30003"}

    with attempts_of(person), capture(execute=True):
        response = post(client, STATUS_PATH, params, sign(STATUS_PATH, params))

    # Twilio never sends a status callback twice: the status is kept though the email failed.
    assert response.status_code == 204
    sms.refresh_from_db()
    assert (sms.status, sms.error_code) == (AttemptStatus.UNDELIVERED, "30003")
    request.refresh_from_db()
    assert request.step == 0 and request.next_step_at <= timezone.now()
    assert f"page {request.id}: could not start step 1" in caplog.text
    assert mail.outbox == []

    # The attempt sweeper starts the email step.
    later = timezone.now() + timedelta(seconds=settings.ALERT_SWEEP_GRACE_SECONDS + 1)
    with capture(execute=True):
        services.sweep_notification_attempts(now=later)
    request.refresh_from_db()
    assert request.step == 1
    [email] = attempts(request, Channel.EMAIL)
    assert email.status == AttemptStatus.SENT and [m.to for m in mail.outbox] == [[person.email]]


def test_a_status_that_cannot_be_recorded_is_asked_for_again_and_holds_back_no_other(
    two, outbox, settings, caplog, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    with capture(execute=True):
        lost = services.queue_sms(recipient=two[0], body="Case C-1", topic="t:1")
        other = services.queue_sms(recipient=two[1], body="Case C-2", topic="t:2")
    lost.refresh_from_db()
    settings.SMS_BACKEND = "tests.notifications.test_paging.StuckThenDeliveredProvider"
    later = timezone.now() + timedelta(seconds=settings.PAGING_POLL_AFTER_SECONDS + 1)

    with status_changes_of(lost):
        # The callback fails (500) and is rolled back; Twilio does not send it again.
        params = {"MessageSid": lost.provider_sid, "MessageStatus": "delivered"}
        response = post(
            Client(raise_request_exception=False), STATUS_PATH, params, sign(STATUS_PATH, params)
        )
        assert response.status_code == 500
        # Polling asks about both; the one that still cannot be recorded holds back nothing.
        with capture(execute=True):
            assert services.poll_stuck_attempts(now=later) == 2

    lost.refresh_from_db()
    other.refresh_from_db()
    assert lost.status == AttemptStatus.QUEUED and other.status == AttemptStatus.DELIVERED
    assert "could not record the polled status of SM" in caplog.text

    # Asked again a while later, the status the callback could not record is recorded.
    again = later + timedelta(seconds=settings.PAGING_POLL_AFTER_SECONDS + 1)
    with capture(execute=True):
        assert services.poll_stuck_attempts(now=again) == 1
    lost.refresh_from_db()
    assert lost.status == AttemptStatus.DELIVERED
    assert PageRequest.objects.count() == 0
