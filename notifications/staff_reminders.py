"""Turns staff's reminders into messages: training due or overdue (email and SMS to the person)
and a guidance question waiting (email to the line manager). Connected in apps.ready().

Bodies carry no confidential content: no question text, no case, only what to do and when.
Each receiver runs after staff's transaction committed; email goes out with no transaction
open, and an SMS is an outbox row sent by the usual worker."""

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import formats, translation
from django.utils.translation import gettext as _

from staff.models import Role, User

from .services import queue_sms

logger = logging.getLogger(__name__)


def _email(user: User, subject: str, body: str) -> None:
    if not user.email:
        return
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email])
    except Exception:  # a mail server down must not stop the SMS or the other reminders
        logger.exception("reminder email to user %s failed", user.pk)


def on_training_reminder_due(sender, *, user_id, assignment_id, period, due_date, **kwargs):
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return
    link = settings.PUBLIC_BASE_URL + reverse("staff:guidance")
    with translation.override(user.language):
        when = formats.date_format(due_date, "j M")
        if period == "overdue":
            text = _(
                "Your confidentiality training was due on %(date)s. Please speak to your "
                "line manager."
            ) % {"date": when}
        else:
            text = _("Your confidentiality training is due on %(date)s.") % {"date": when}
        _email(user, _("Concernline: confidentiality training"), f"{text}\n\n{link}\n")
        if user.phone:
            with transaction.atomic():
                queue_sms(
                    recipient=user,
                    body=f"Concernline: {text}",
                    topic=f"staff.training:{assignment_id}:{period}",
                )


def on_guidance_question_asked(sender, *, question_id, asked_by_id, manager_id, **kwargs):
    """Tells the line manager (or, for someone with none, HR) that a question is waiting on
    their team page. The question itself stays there."""
    if manager_id is not None:
        recipients = list(User.objects.filter(pk=manager_id, is_active=True))
    else:
        recipients = list(User.objects.filter(role=Role.HR, is_active=True))
    link = settings.PUBLIC_BASE_URL + reverse("staff:team") + "#questions"
    for recipient in recipients:
        with translation.override(recipient.language):
            _email(
                recipient,
                _("Concernline: a question about the confidentiality guidance"),
                _(
                    "Someone in your team has a question about the confidentiality guidance. "
                    "See it and arrange to discuss it:"
                )
                + f"\n\n{link}\n",
            )
