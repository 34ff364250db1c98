"""Paging by phone end to end: a real worker pages through the real Twilio SDK to the sandbox,
and the sandbox answers as the phone would (key presses, voicemail, undelivered SMS), sending
signed webhooks to the live app. The alert belongs to no case, so these stay lean."""

import pytest
from django.db import transaction

from notifications.models import AttemptStatus, Channel, ContactPreferences, NotificationAttempt
from oncall.models import Alert, AlertState
from oncall.services import raise_alert

from .conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

REF = "C-2026-0042"
NARRATIVE_WORDS = ("locks him in", "Hidden Road", "SU-77812")


def raise_test_alert(rota) -> Alert:
    with transaction.atomic():
        return raise_alert(
            title="urgent disclosure",
            reference=REF,
            link=f"/cases/{REF}/",
            owner_type="tests.thing",
            owner_id=42,
            rota=rota,
        )


def wait_for_call(sandbox, phone: str) -> dict:
    """A ringing call whose SID the worker has stored (the sandbox may ring first)."""

    def ringing():
        return [
            c
            for c in sandbox.sandbox.list_calls(to=phone)
            if c["status"] == "ringing"
            and NotificationAttempt.objects.filter(provider_sid=c["sid"]).exists()
        ]

    return wait_for(ringing, what=f"a ringing call to {phone}")[0]


def call_attempt(sid: str) -> NotificationAttempt:
    return NotificationAttempt.objects.get(provider_sid=sid)


def test_an_undelivered_sms_falls_back_to_a_call_at_once(
    people, rota, twilio_settings, sandbox, start_worker
):
    manager = people["manager"]
    ContactPreferences.objects.create(user=manager, important_rule="sms_then_call")
    sandbox.sandbox.set_faults(unreachable=[str(manager.phone)])
    start_worker()

    raise_test_alert(rota)

    call = wait_for_call(sandbox, str(manager.phone))
    sms = NotificationAttempt.objects.get(channel=Channel.SMS, recipient=manager)
    assert (sms.status, sms.error_code) == (AttemptStatus.UNDELIVERED, "30003")
    assert call_attempt(call["sid"]).step == 1
    assert call["machine_detection"] == "Enable"
    [message] = sandbox.sandbox.list_messages(to=str(manager.phone))
    assert REF in message["body"] and len(message["body"]) <= 160


def test_key_1_on_the_call_acknowledges_the_alert(
    people, rota, twilio_settings, sandbox, start_worker
):
    start_worker()
    alert = raise_test_alert(rota)
    phone = str(people["manager"].phone)
    call = wait_for_call(sandbox, phone)  # the default rule: SMS and call at once

    answered = sandbox.sandbox.answer_call(sid=call["sid"], digits="1")

    said = " ".join(answered["said"])
    assert "C, 2 0 2 6, 0 0 4 2" in said and "Press 1 to acknowledge" in said
    assert "acknowledged" in said
    for secret in NARRATIVE_WORDS:
        assert secret not in said
    alert.refresh_from_db()
    assert alert.state == AlertState.ACKNOWLEDGED
    assert (alert.acknowledged_by, alert.acknowledged_via) == (people["manager"], "call")
    attempt = wait_for(
        lambda: (
            call_attempt(call["sid"]).status == AttemptStatus.DELIVERED
            and call_attempt(call["sid"])
        ),
        what="the call recorded as delivered",
    )
    assert attempt.digits == "1"
    assert attempt.page.acknowledged_via == "call" and attempt.page.closed_at is not None


def test_key_2_on_the_call_passes_the_alert_to_the_next_step(
    people, rota, twilio_settings, sandbox, start_worker
):
    start_worker()
    alert = raise_test_alert(rota)
    call = wait_for_call(sandbox, str(people["manager"].phone))

    answered = sandbox.sandbox.answer_call(sid=call["sid"], digits="2")

    assert "passed to the next person" in " ".join(answered["said"])
    alert.refresh_from_db()
    assert alert.state == AlertState.TRIGGERED and alert.current_step == 2
    # With no policy configured, the next level after the on-call manager is the built-in
    # fallback: every manager, paged at once.
    later = alert.pages.filter(step=1)
    assert {p.recipient for p in later} == {people["manager"], people["manager2"]}
    assert {p.reason for p in later} == {"fallback"}
    wait_for(
        lambda: sandbox.sandbox.list_calls(to=str(people["manager2"].phone)),
        what="the next step's call to the other manager",
    )


def test_voicemail_does_not_acknowledge(people, rota, twilio_settings, sandbox, start_worker):
    start_worker()
    alert = raise_test_alert(rota)
    call = wait_for_call(sandbox, str(people["manager"].phone))

    answered = sandbox.sandbox.answer_call(sid=call["sid"], machine=True)

    assert answered["answered_by"] == "machine_end_beep" and answered["digits"] == ""
    attempt = wait_for(
        lambda: (
            call_attempt(call["sid"]).status == AttemptStatus.UNDELIVERED
            and call_attempt(call["sid"])
        ),
        what="the voicemail call recorded as undelivered",
    )
    assert attempt.error_code == "voicemail" and attempt.answered_by == "machine_end_beep"
    alert.refresh_from_db()
    assert alert.state == AlertState.TRIGGERED and alert.acknowledged_by is None
