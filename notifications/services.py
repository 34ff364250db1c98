"""Every write in notifications. Providers are called only outside a transaction, on an attempt
row that was committed first (see models.NotificationAttempt)."""

import logging
import re
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from staff.models import User

from .exceptions import PermanentProviderError, TransientProviderError, UnknownOutcomeError
from .messages import PageMessage, sms_text
from .models import (
    FINAL_STATUSES,
    STATUS_RANK,
    AttemptStatus,
    Channel,
    InboundMessage,
    NotificationAttempt,
    StatusChange,
)
from .providers import get_sms_provider
from .signals import attempt_status_changed, inbound_command

logger = logging.getLogger(__name__)

# Transient provider failures are tried this many times, backing off, before giving up.
MAX_TRIES = 5
BACKOFF_SECONDS = (2, 5, 15, 30, 60)
# An attempt left "sending" this long by a worker that died is of unknown outcome.
SENDING_STUCK_AFTER = timedelta(seconds=60)


def queue_sms(*, recipient, body: str, topic: str) -> NotificationAttempt:
    """Record an SMS to `recipient` and send it once the caller's transaction commits.

    A person with no mobile number gets a failed attempt, so the gap is visible and escalation
    can move on, instead of nothing at all.
    """
    attempt = NotificationAttempt.objects.create(
        recipient=recipient,
        channel=Channel.SMS,
        to=str(recipient.phone or ""),
        body=body,
        topic=topic,
        next_try_at=timezone.now(),
    )
    StatusChange.objects.create(attempt=attempt, status=AttemptStatus.PENDING)
    if not attempt.to:
        _move(attempt, AttemptStatus.FAILED, error_message="No mobile number on record")
        return attempt
    _enqueue_send(attempt.id)
    return attempt


class Importance:
    IMPORTANT = "important"
    NORMAL = "normal"


def page_person(
    *, recipient: User, importance: str, message: PageMessage, topic: str
) -> list[NotificationAttempt]:
    """Page one person about `topic`, by their channels for pages of this `importance`, in
    their language. Sent once the caller's transaction commits. Today: one SMS."""
    body = sms_text(message, language=recipient.language)
    return [queue_sms(recipient=recipient, body=body, topic=topic)]


def _enqueue_send(attempt_id: int, *, countdown: float = 0) -> None:
    from .tasks import send_notification_attempt

    transaction.on_commit(
        lambda: send_notification_attempt.apply_async((attempt_id,), countdown=countdown)
    )


def _move(
    attempt: NotificationAttempt,
    status: str,
    *,
    error_code: str = "",
    error_message: str = "",
    provider_sid: str | None = None,
) -> None:
    """Set a new status, record the change and tell the apps above on commit.
    The caller holds the attempt's row lock (or has just created it)."""
    attempt.status = status
    if error_code:
        attempt.error_code = error_code
    if error_message:
        attempt.error_message = error_message[:255]
    if provider_sid:
        attempt.provider_sid = provider_sid
    attempt.save()
    StatusChange.objects.get_or_create(
        attempt=attempt, status=status, defaults={"error_code": error_code}
    )
    payload = {
        "attempt_id": attempt.id,
        "topic": attempt.topic,
        "status": status,
        "recipient_id": attempt.recipient_id,
        "channel": attempt.channel,
        "provider_sid": attempt.provider_sid or "",
        "error_code": attempt.error_code,
        "at": timezone.now(),
    }
    transaction.on_commit(
        lambda: attempt_status_changed.send(sender=NotificationAttempt, **payload)
    )


def send_notification_attempt(*, attempt_id: int) -> None:
    """Send one pending attempt. A duplicate or late task finds it no longer pending and does
    nothing, so a task delivered twice pages once."""
    with transaction.atomic():
        attempt = NotificationAttempt.objects.select_for_update().filter(pk=attempt_id).first()
        if attempt is None or attempt.status != AttemptStatus.PENDING:
            return
        attempt.tries += 1
        attempt.save(update_fields=["tries", "updated_at"])
        _move(attempt, AttemptStatus.SENDING)

    status_callback = settings.PUBLIC_BASE_URL + reverse("notifications:sms-status")
    try:
        sent = get_sms_provider().send_sms(
            to=attempt.to, body=attempt.body, status_callback=status_callback
        )
    except TransientProviderError as exc:
        _after_transient_failure(attempt_id, exc)
        return
    except PermanentProviderError as exc:
        _finish(attempt_id, AttemptStatus.FAILED, error_code=exc.code, error_message=exc.message)
        return
    except UnknownOutcomeError as exc:
        _finish(attempt_id, AttemptStatus.UNKNOWN, error_message=exc.message)
        return
    status = AttemptStatus.SENT if sent.status == "sent" else AttemptStatus.QUEUED
    _finish(attempt_id, status, provider_sid=sent.sid)


def _finish(attempt_id: int, status: str, **fields) -> None:
    with transaction.atomic():
        attempt = NotificationAttempt.objects.select_for_update().get(pk=attempt_id)
        if attempt.status != AttemptStatus.SENDING:
            # A status callback outran us; it already moved the attempt on.
            if fields.get("provider_sid") and not attempt.provider_sid:
                attempt.provider_sid = fields["provider_sid"]
                attempt.save(update_fields=["provider_sid", "updated_at"])
            return
        _move(attempt, status, **fields)


def _after_transient_failure(attempt_id: int, exc: TransientProviderError) -> None:
    with transaction.atomic():
        attempt = NotificationAttempt.objects.select_for_update().get(pk=attempt_id)
        if attempt.status != AttemptStatus.SENDING:
            return
        if attempt.tries >= MAX_TRIES:
            _move(
                attempt,
                AttemptStatus.FAILED,
                error_code=exc.code,
                error_message=f"Gave up after {attempt.tries} tries: {exc.message}",
            )
            return
        delay = BACKOFF_SECONDS[min(attempt.tries, len(BACKOFF_SECONDS)) - 1]
        attempt.status = AttemptStatus.PENDING
        attempt.error_code = exc.code
        attempt.error_message = exc.message[:255]
        attempt.next_try_at = timezone.now() + timedelta(seconds=delay)
        attempt.save()
        logger.warning("attempt %s: transient failure, retrying in %ss", attempt_id, delay)
        _enqueue_send(attempt_id, countdown=delay)


def sweep_notification_attempts(*, now=None) -> int:
    """Re-enqueue pending attempts whose send task was lost (a broker flush, a report saved while
    the broker was down), and mark attempts a dead worker left "sending" as unknown.
    Returns how many attempts were re-enqueued."""
    now = now or timezone.now()
    grace = timedelta(seconds=settings.ALERT_SWEEP_GRACE_SECONDS)
    with transaction.atomic():
        stuck = NotificationAttempt.objects.select_for_update(skip_locked=True).filter(
            status=AttemptStatus.SENDING, updated_at__lt=now - SENDING_STUCK_AFTER
        )
        for attempt in stuck:
            _move(attempt, AttemptStatus.UNKNOWN, error_message="The sending worker stopped")
        due = list(
            NotificationAttempt.objects.select_for_update(skip_locked=True)
            .filter(status=AttemptStatus.PENDING, next_try_at__lt=now - grace)
            .values_list("id", flat=True)
        )
        for attempt_id in due:
            _enqueue_send(attempt_id)
    return len(due)


def record_sms_status(*, provider_sid: str, status: str, error_code: str = "") -> bool:
    """Apply a provider's status callback. Repeated or out-of-order callbacks change nothing.
    Returns False when no attempt has that SID."""
    if status not in STATUS_RANK:
        return True  # "accepted", "scheduled"...: nothing we track
    with transaction.atomic():
        attempt = (
            NotificationAttempt.objects.select_for_update()
            .filter(provider_sid=provider_sid)
            .first()
        )
        if attempt is None:
            return False
        if attempt.status in FINAL_STATUSES or STATUS_RANK[status] <= STATUS_RANK[attempt.status]:
            StatusChange.objects.get_or_create(
                attempt=attempt, status=status, defaults={"error_code": error_code}
            )
            return True
        _move(attempt, status, error_code=error_code)
    return True


ACK_PATTERN = re.compile(r"^\s*(ACK|1)\b\s*([A-Z0-9-]*)\s*$", re.IGNORECASE)
HELP_PATTERN = re.compile(r"^\s*(HELP|HELO|CYMORTH)\s*$", re.IGNORECASE)


def handle_inbound_sms(*, provider_sid: str, from_number: str, to_number: str, body: str) -> str:
    """Answer an SMS sent to our number. Acts once per provider SID: a webhook retried by the
    provider gets the answer it got the first time."""
    existing = InboundMessage.objects.filter(provider_sid=provider_sid).first()
    if existing is not None:
        return existing.reply
    sender = User.objects.filter(phone=from_number, is_active=True).first()
    try:
        with transaction.atomic():
            message = InboundMessage.objects.create(
                provider_sid=provider_sid,
                from_number=from_number,
                to_number=to_number,
                body=body[:1600],
                sender=sender,
            )
            message.reply = _answer(sender=sender, body=body)
            message.save(update_fields=["reply"])
    except IntegrityError:
        # The same SID arrived twice at once; the other request answers it.
        return InboundMessage.objects.get(provider_sid=provider_sid).reply
    return message.reply


def _answer(*, sender, body: str) -> str:
    if sender is None:
        logger.info("inbound SMS from an unknown number")
        return _("This number is not registered with Concernline.")
    with translation.override(sender.language):
        if HELP_PATTERN.match(body):
            return _("Concernline: reply ACK and the case reference to acknowledge a page.")
        match = ACK_PATTERN.match(body)
        if match is None:
            return _("Concernline did not understand. Reply ACK to acknowledge, HELP for help.")
        responses = inbound_command.send(
            sender=InboundMessage,
            user=sender,
            command="ack",
            argument=match.group(2).upper(),
            channel=Channel.SMS,
        )
        for _receiver, answer in responses:
            if answer:
                return str(answer)
        return _("Concernline: there is no open page for you to acknowledge.")
