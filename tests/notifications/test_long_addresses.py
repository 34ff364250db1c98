"""Email addresses as long as a User may hold (254 characters) on every path that pages by email:
the last step of the default urgent plan, and an undelivered SMS under "SMS, then email" (a
step paging someone whose first channel is email is in tests/oncall/test_escalation.py)."""

from datetime import timedelta

import pytest
from django.core import mail

from notifications import services
from notifications.models import AttemptStatus, Channel
from staff.models import Role
from tests.conftest import make_person
from tests.notifications.test_paging import attempts, page, rule
from tests.notifications.test_webhooks import (
    STATUS_PATH,
    _twilio_settings,  # noqa: F401 (autouse: signed webhooks)
    post,
    sign,
)

# An ordinary work address, longer than a phone number.
LONG = "firstname.lastname@example-care-trust.org.uk"
# The longest address a User's email holds: 64 characters, "@", 189 characters.
LONGEST = "f" * 64 + "@" + ".".join(["a" * 63, "b" * 63, "c" * 58]) + ".uk"


@pytest.mark.parametrize("address", [LONG, LONGEST], ids=["45", "254"])
def test_the_last_step_of_the_default_urgent_plan_emails_a_long_address(
    db, outbox, settings, address, django_capture_on_commit_callbacks
):
    assert len(LONGEST) == 254
    person = make_person(address, Role.MANAGER, "+447700900160")
    request = page(person, django_capture_on_commit_callbacks)
    for _step in ("call again", "email"):
        request.refresh_from_db()
        later = request.next_step_at + timedelta(seconds=settings.ALERT_SWEEP_GRACE_SECONDS + 1)
        with django_capture_on_commit_callbacks(execute=True):
            services.sweep_notification_attempts(now=later)

    request.refresh_from_db()
    assert request.step == 2
    [email_attempt] = attempts(request, Channel.EMAIL)
    assert (email_attempt.to, email_attempt.status) == (address, AttemptStatus.SENT)
    [email] = mail.outbox
    assert email.to == [address] and "C-2026-0007" in email.subject


def test_an_undelivered_sms_moves_on_to_email_at_a_long_address(
    db, client, outbox, django_capture_on_commit_callbacks
):
    person = make_person(LONG, Role.MANAGER, "+447700900160")
    rule(person, important="sms_then_email")
    request = page(person, django_capture_on_commit_callbacks)
    [sms] = attempts(request)
    params = {"MessageSid": sms.provider_sid, "MessageStatus": "undelivered", "ErrorCode": "30003"}

    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, STATUS_PATH, params, sign(STATUS_PATH, params))

    assert response.status_code == 204
    sms.refresh_from_db()
    assert sms.status == AttemptStatus.UNDELIVERED
    request.refresh_from_db()
    assert request.step == 1
    [email_attempt] = attempts(request, Channel.EMAIL)
    assert (email_attempt.to, email_attempt.status) == (LONG, AttemptStatus.SENT)
    assert [email.to for email in mail.outbox] == [[LONG]]
