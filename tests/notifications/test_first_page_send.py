"""Sending a page step's attempts right after the step commits (send_first_page_attempts): the
first try of an important page is claimed and answered in one statement each; anything else
goes the general way, and nothing is sent twice."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from notifications import services
from notifications.messages import PageMessage
from notifications.models import (
    AttemptStatus,
    EarlyCallback,
    NotificationAttempt,
    PageRequest,
    StatusChange,
)
from notifications.providers import outbox as sms_outbox
from notifications.providers.outbox import OutboxProvider
from notifications.signals import attempt_status_changed

# The claim must be committed before the provider is called, so these tests commit for real.
pytestmark = pytest.mark.django_db(transaction=True)

TOPIC = "tests.page:1"


def committed_page(person, importance=services.Importance.IMPORTANT) -> list[int]:
    """A page's first step as an escalation step commits it: pending, no send task queued."""
    with transaction.atomic():
        attempts = services.page_person(
            recipient=person,
            importance=importance,
            message=PageMessage(reference="C-2026-0042", urgency="urgent", title="disclosure"),
            topic=TOPIC,
            send_on_commit=False,
        )
    return [attempt.id for attempt in attempts]


@pytest.fixture
def news():
    told = []

    def listen(sender, *, attempt_id, status, provider_sid, **kwargs):
        told.append((attempt_id, status, provider_sid))

    attempt_status_changed.connect(listen, weak=False, dispatch_uid="test_first_page_send")
    yield told
    attempt_status_changed.disconnect(dispatch_uid="test_first_page_send")


def test_each_first_try_is_claimed_then_answered_in_one_statement_each(
    people, outbox, news, django_assert_num_queries
):
    sms_id, call_id = committed_page(people["manager"])

    with django_assert_num_queries(4):  # claim, answer; claim, answer
        services.send_first_page_attempts(attempt_ids=[sms_id, call_id])

    assert [m["to"] for m in outbox] == ["+447700900101"]
    assert [c["to"] for c in sms_outbox.calls] == ["+447700900101"]
    sms = NotificationAttempt.objects.get(pk=sms_id)
    assert (sms.status, sms.tries, sms.provider_sid) == ("queued", 1, outbox[0]["sid"])
    history = StatusChange.objects.filter(attempt_id=sms_id).order_by("id")
    assert [change.status for change in history] == ["pending", "sending", "queued"]
    assert PageRequest.objects.get(pk=sms.page_id).first_sent_at is not None
    assert news == [
        (sms_id, "sending", ""),
        (sms_id, "queued", outbox[0]["sid"]),
        (call_id, "sending", ""),
        (call_id, "queued", sms_outbox.calls[0]["sid"]),
    ]


def test_an_attempt_sent_already_is_not_sent_again(people, outbox):
    ids = committed_page(people["manager"])
    services.send_first_page_attempts(attempt_ids=ids)
    services.send_first_page_attempts(attempt_ids=ids)  # a repeat, or the sweeper's own send
    services.send_notification_attempt(attempt_id=ids[0])
    assert len(outbox) == 1 and len(sms_outbox.calls) == 1


def test_a_first_try_whose_page_was_closed_is_not_sent(people, outbox):
    """Acknowledged (or the case taken into review) between the step's commit and its send:
    the claim leaves it, and the general way records why it was not sent."""
    ids = committed_page(people["manager"])
    services.close_pages(topics=[TOPIC])

    services.send_first_page_attempts(attempt_ids=ids)

    assert outbox == [] and sms_outbox.calls == []
    assert (
        list(NotificationAttempt.objects.values_list("status", "error_message"))
        == [(AttemptStatus.FAILED, "Not sent: the page was closed")] * 2
    )


def test_a_normal_page_goes_the_general_way_and_keeps_the_per_phone_limit(
    people, outbox, settings, monkeypatch
):
    """Only an important page's first try is never held back; a normal page's SMS still
    waits for the phone's limit (send_notification_attempt's check), and is sent again when
    the limit's window has passed. (The retry is recorded, not run: in-process it would run at
    once and be held again, over and over, until the window passed.)"""
    settings.PAGING_THROTTLE_SMS = "1/60"
    retries = []
    monkeypatch.setattr(
        services, "_enqueue_send", lambda attempt_id, countdown=0: retries.append(countdown)
    )
    (earlier,) = committed_page(people["manager"], services.Importance.NORMAL)
    services.send_first_page_attempts(attempt_ids=[earlier])
    (later,) = committed_page(people["manager"], services.Importance.NORMAL)

    services.send_first_page_attempts(attempt_ids=[later])

    assert len(outbox) == 1
    held = NotificationAttempt.objects.get(pk=later)
    assert held.status == AttemptStatus.PENDING
    sent = StatusChange.objects.get(attempt_id=earlier, status=AttemptStatus.SENDING).at
    assert abs(held.next_try_at - (sent + timedelta(seconds=60))) < timedelta(milliseconds=5)
    [countdown] = retries
    assert 0 < countdown <= 60


def test_the_sid_is_kept_when_the_sweeper_gave_the_attempt_up_meanwhile(
    people, outbox, monkeypatch
):
    """The provider took the message, but so slowly that the sweeper marked the attempt of
    unknown outcome first: it stays unknown (never resent), and its SID is stored so later
    status callbacks still find it."""
    sms_id, call_id = committed_page(people["manager"])
    send = OutboxProvider.send_sms

    def slow_send(provider, **kwargs):
        NotificationAttempt.objects.filter(pk=sms_id).update(status=AttemptStatus.UNKNOWN)
        return send(provider, **kwargs)

    monkeypatch.setattr(OutboxProvider, "send_sms", slow_send)
    services.send_first_page_attempts(attempt_ids=[sms_id])

    sms = NotificationAttempt.objects.get(pk=sms_id)
    assert (sms.status, sms.provider_sid) == (AttemptStatus.UNKNOWN, outbox[0]["sid"])


def test_a_status_callback_that_came_before_the_answer_is_applied(people, outbox, monkeypatch):
    sms_id, call_id = committed_page(people["manager"])
    send = OutboxProvider.send_sms

    def send_and_deliver_at_once(provider, **kwargs):
        sent = send(provider, **kwargs)
        EarlyCallback.objects.create(provider_sid=sent.sid, status=AttemptStatus.DELIVERED)
        return sent

    monkeypatch.setattr(OutboxProvider, "send_sms", send_and_deliver_at_once)
    services.send_first_page_attempts(attempt_ids=[sms_id])

    sms = NotificationAttempt.objects.get(pk=sms_id)
    assert sms.status == AttemptStatus.DELIVERED
    assert PageRequest.objects.get(pk=sms.page_id).first_delivered_at is not None
    assert not EarlyCallback.objects.exists()


def test_a_failing_send_is_logged_and_leaves_the_rest_to_go(people, outbox, monkeypatch, caplog):
    """One attempt's error does not stop the step's other pages; the sweeper has it."""
    sms_id, call_id = committed_page(people["manager"])

    def broken(provider, **kwargs):
        raise RuntimeError("network stack gone")

    monkeypatch.setattr(OutboxProvider, "send_sms", broken)
    services.send_first_page_attempts(attempt_ids=[sms_id, call_id])

    assert len(sms_outbox.calls) == 1
    assert NotificationAttempt.objects.get(pk=call_id).status == AttemptStatus.QUEUED
    assert f"attempt {sms_id}: sending at once failed" in caplog.text


def test_new_attempts_get_their_ids_in_order_and_a_first_status_each(people):
    bodies = ["first", "second", "third", "fourth"]
    with transaction.atomic():
        made = services._new_attempts(
            [
                NotificationAttempt(
                    recipient=people["manager"], channel=channel, to="x", body=body, topic=TOPIC
                )
                for channel, body in zip(["sms", "call", "email", "sms"], bodies, strict=True)
            ]
        )
    stored = list(NotificationAttempt.objects.order_by("id"))
    assert [(a.id, a.body) for a in made] == [(s.id, s.body) for s in stored]
    assert [s.body for s in stored] == bodies
    assert all(s.status == AttemptStatus.PENDING and s.next_try_at for s in stored)
    history = StatusChange.objects.values_list("attempt_id", "status").order_by("attempt_id")
    assert list(history) == [(s.id, "pending") for s in stored]
    made[0].save(update_fields=["error_message"])  # an instance that saves as the stored row
    assert NotificationAttempt.objects.count() == 4


def test_the_claim_reads_its_page_by_primary_key_however_many_pages_there_are(people):
    """As a join, PostgreSQL could plan the claim as a scan of every page ever sent (it did,
    on tables too new to have statistics): a first page's cost grew with the history of
    paging. A scalar subquery is never made a join: one probe of the page's primary key."""
    attempt_id = committed_page(people["manager"])[0]
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO notifications_pagerequest (recipient_id, topic, importance, "
            "reference, urgency, title, plan, step, created_at, acknowledged_via) "
            "SELECT %s, 'old', 'important', '', '', '', '[]', 0, now(), '' "
            "FROM generate_series(1, 5000)",
            [people["manager"].id],
        )
        cursor.execute(
            "EXPLAIN " + services.CLAIM_FIRST_TRY,
            services._claim_parameters(attempt_id, timezone.now()),
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "SubPlan" in plan, plan
    assert "Join" not in plan and "Nested Loop" not in plan, plan
    assert "Seq Scan on notifications_pagerequest" not in plan, plan
