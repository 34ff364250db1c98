"""notifications turns staff's reminders into email and SMS, with nothing confidential in them."""

import pytest

from staff import services

from ..conftest import make_person
from ..staff.guidance_helpers import in_days, levels, organise, publish

pytestmark = pytest.mark.django_db


@pytest.fixture
def org(people):
    organise(people)
    return people


def test_training_reminder_goes_by_email_and_sms(
    org, outbox, mailoutbox, settings, django_capture_on_commit_callbacks
):
    settings.TRAINING_REMINDER_DAYS = [14]
    care = levels()[1]
    assignment = services.set_training(
        actor=org["manager"], user_id=org["worker"].pk, level_id=care.pk, due_on=in_days(5)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert services.send_training_reminders() == 1

    due = f"{assignment.due_on.day} {assignment.due_on:%b}"
    assert [m["to"] for m in outbox] == [str(org["worker"].phone)]
    assert outbox[0]["body"] == f"Concernline: Your confidentiality training is due on {due}."
    assert len(mailoutbox) == 1
    email = mailoutbox[0]
    assert email.to == [org["worker"].email]
    assert f"Your confidentiality training is due on {due}." in email.body
    assert "/staff/guidance/" in email.body

    # Run again: nothing more is sent.
    with django_capture_on_commit_callbacks(execute=True):
        assert services.send_training_reminders() == 0
    assert len(outbox) == 1 and len(mailoutbox) == 1


def test_overdue_reminder_and_no_phone_means_email_only(
    org, outbox, mailoutbox, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    person = make_person("nophone@example.org", team=org["worker"].team)
    care = levels()[1]
    services.set_training(
        actor=org["manager"], user_id=person.pk, level_id=care.pk, due_on=in_days(0)
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.send_training_reminders(today=timezone.localdate() + timedelta(days=2))
    assert outbox == []
    assert len(mailoutbox) == 1 and "was due on" in mailoutbox[0].body


def test_question_tells_the_line_manager_without_the_question(
    org, mailoutbox, outbox, django_capture_on_commit_callbacks
):
    document = publish(org["admin"])
    secret = "Mrs Smith at 4 High St told me something"
    with django_capture_on_commit_callbacks(execute=True):
        services.ask_guidance_question(
            actor=org["worker"], document_id=document.pk, question=secret
        )
    assert [m.to for m in mailoutbox] == [[org["manager"].email]]
    body = mailoutbox[0].subject + mailoutbox[0].body
    assert "question about the confidentiality guidance" in body
    assert "/staff/team/#questions" in body
    assert "Smith" not in body and org["worker"].full_name not in body
    assert outbox == []


def test_question_from_someone_without_a_manager_tells_hr(
    org, mailoutbox, django_capture_on_commit_callbacks
):
    document = publish(org["admin"])
    with django_capture_on_commit_callbacks(execute=True):
        services.ask_guidance_question(actor=org["dpo"], document_id=document.pk, question="?")
    assert [m.to for m in mailoutbox] == [[org["hr"].email]]
