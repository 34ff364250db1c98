"""Every write in notifications. Providers are called only outside a transaction, on an attempt
row that was committed first (see models.NotificationAttempt).

A page to a person (`page_person`) is a PageRequest with a channel plan: a list of steps, each
the channels tried at once. A step whose every attempt failed (failed or undelivered SMS, a
busy, unanswered or voicemail call, an email refused) moves to the next step at once; an
important page that nobody acknowledged also moves on after PAGING_CALL_RETRY_SECONDS. When
every attempt failed and no step is left, `page_exhausted` tells the apps above."""

import logging
import re
import smtplib
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from staff.models import User

from .exceptions import PermanentProviderError, TransientProviderError, UnknownOutcomeError
from .messages import PageMessage, email_text, sms_text, voice_text
from .models import (
    CHANNEL_RULES,
    DEFAULT_RULES,
    FINAL_STATUSES,
    STATUS_RANK,
    AttemptStatus,
    Channel,
    ContactPreferences,
    EarlyCallback,
    Importance,
    InboundMessage,
    NotificationAttempt,
    PageRequest,
    StatusChange,
)
from .providers import get_sms_provider
from .signals import attempt_status_changed, inbound_command, page_exhausted

logger = logging.getLogger(__name__)

# Transient provider failures are tried this many times, backing off, before giving up.
MAX_TRIES = 5
BACKOFF_SECONDS = (2, 5, 15, 30, 60)
# An attempt left "sending" this long by a worker that died is of unknown outcome.
SENDING_STUCK_AFTER = timedelta(seconds=60)
# Statuses after which an attempt will never reach its person.
FAILED_STATUSES = {AttemptStatus.FAILED, AttemptStatus.UNDELIVERED, AttemptStatus.UNKNOWN}
EARLY_CALLBACK_KEPT = timedelta(days=1)
# Twilio's error for an SMS to a phone that has replied STOP.
UNSUBSCRIBED = "21610"
MACHINE_ANSWERS = ("machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other")


def _new_attempt(*, recipient, channel: str, to: str, body: str, topic: str, page=None, step=0):
    return _new_attempts(
        [
            NotificationAttempt(
                recipient=recipient,
                channel=channel,
                to=to,
                body=body,
                topic=topic,
                page=page,
                step=step,
            )
        ]
    )[0]


# Pending attempts and their first status change in one statement (every page step does it).
NEW_ATTEMPTS = """
WITH made AS (
    INSERT INTO notifications_notificationattempt (
        recipient_id, channel, "to", body, topic, page_id, step, status, error_code,
        error_message, answered_by, digits, tries, next_try_at, created_at, updated_at
    )
    SELECT recipient_id, channel, "to", body, topic, page_id, step, %(pending)s, '', '', '', '',
        0, %(now)s, %(now)s, %(now)s
    FROM unnest(
        %(recipient_ids)s::bigint[], %(channels)s::text[], %(tos)s::text[], %(bodies)s::text[],
        %(topics)s::text[], %(page_ids)s::bigint[], %(steps)s::integer[]
    ) WITH ORDINALITY AS given (recipient_id, channel, "to", body, topic, page_id, step, n)
    ORDER BY n
    RETURNING id
), noted AS (
    INSERT INTO notifications_statuschange (attempt_id, status, error_code, detail, at)
    SELECT id, %(pending)s, '', '', %(now)s FROM made
)
SELECT id FROM made ORDER BY id
"""


def _new_attempts(attempts: list[NotificationAttempt]) -> list[NotificationAttempt]:
    """Insert pending attempts and their first status change: one statement on PostgreSQL
    (ids given in list order), two queries elsewhere, however many attempts."""
    now = timezone.now()
    for attempt in attempts:
        attempt.status, attempt.tries, attempt.next_try_at = AttemptStatus.PENDING, 0, now
    if connection.vendor != "postgresql":
        NotificationAttempt.objects.bulk_create(attempts)
        StatusChange.objects.bulk_create(
            [StatusChange(attempt=attempt, status=AttemptStatus.PENDING) for attempt in attempts]
        )
        return attempts
    with connection.cursor() as cursor:
        cursor.execute(
            NEW_ATTEMPTS,
            {
                "pending": AttemptStatus.PENDING.value,
                "now": now,
                "recipient_ids": [a.recipient_id for a in attempts],
                "channels": [a.channel for a in attempts],
                "tos": [a.to for a in attempts],
                "bodies": [a.body for a in attempts],
                "topics": [a.topic for a in attempts],
                "page_ids": [a.page_id for a in attempts],
                "steps": [a.step for a in attempts],
            },
        )
        ids = [row[0] for row in cursor.fetchall()]
    for attempt, attempt_id in zip(attempts, ids, strict=True):
        attempt.id, attempt.created_at, attempt.updated_at = attempt_id, now, now
        attempt._state.adding, attempt._state.db = False, connection.alias
    return attempts


def _send_or_fail(attempt: NotificationAttempt, *, enqueue: bool = True) -> None:
    """Send a new attempt on commit (or leave it to the caller, `enqueue=False`); one with no
    address fails at once, so the gap is visible and the page moves on."""
    if attempt.to:
        if enqueue:
            _enqueue_send(attempt.id)
        return
    missing = (
        "No email address on record"
        if attempt.channel == Channel.EMAIL
        else "No mobile number on record"
    )
    _move(attempt, AttemptStatus.FAILED, error_message=missing)


def queue_sms(*, recipient, body: str, topic: str) -> NotificationAttempt:
    """Record an SMS to `recipient` and send it once the caller's transaction commits.

    A person with no mobile number gets a failed attempt, so the gap is visible and escalation
    can move on, instead of nothing at all.
    """
    attempt = _new_attempt(
        recipient=recipient,
        channel=Channel.SMS,
        to=str(recipient.phone or ""),
        body=body,
        topic=topic,
    )
    _send_or_fail(attempt)
    return attempt


def channel_plan(*, recipient: User, importance: str) -> list[list[str]]:
    """The steps of channels `recipient` is paged by for pages of this importance: their
    own rule, or the safe default; SMS left out while they have replied STOP."""
    prefs = ContactPreferences.objects.filter(user=recipient).first()
    if prefs is None:
        rule = DEFAULT_RULES[importance]
    elif importance == Importance.IMPORTANT:
        rule = prefs.important_rule
    else:
        rule = prefs.normal_rule
    plan = [
        list(step) for step in CHANNEL_RULES.get(rule, CHANNEL_RULES[DEFAULT_RULES[importance]])
    ]
    if prefs is not None and prefs.sms_opted_out:
        plan = [[c for c in step if c != Channel.SMS] for step in plan]
        plan = [step for step in plan if step] or [[Channel.CALL], [Channel.EMAIL]]
    return plan


def page_person(
    *,
    recipient: User,
    importance: str,
    message: PageMessage,
    topic: str,
    send_on_commit: bool = True,
) -> list[NotificationAttempt]:
    """Page one person about `topic`, by their channel rule for pages of this `importance`,
    in their language. The first step's attempts are returned; they are sent once the caller's
    transaction commits, and later steps follow on failure (or, for important pages, when
    nobody acknowledged in time).

    With `send_on_commit=False` no send task is queued for the first step's attempts: the
    caller sends them itself (`send_notification_attempt`) right after its commit, sparing the
    page a trip through the broker. The attempts are committed as pending either way, so if
    the caller dies first the attempt sweeper sends them."""
    if importance not in (Importance.IMPORTANT, Importance.NORMAL):
        raise ValueError(f"importance must be 'important' or 'normal', not {importance!r}")
    page = PageRequest(
        recipient=recipient,
        topic=topic,
        importance=importance,
        reference=message.reference[:32],
        urgency=message.urgency[:16],
        title=message.title[:80],
        link=message.link if len(message.link) <= 200 else "",
        plan=channel_plan(recipient=recipient, importance=importance),
    )
    page.next_step_at = _next_step_timer(page)
    page.save(force_insert=True)
    return _start_step(page, enqueue=send_on_commit, timer_set=True)


def _page_message(page: PageRequest) -> PageMessage:
    return PageMessage(
        reference=page.reference, urgency=page.urgency, title=page.title, link=page.link
    )


def _next_step_timer(page: PageRequest):
    """When an important page nobody acknowledged moves to its next step (None: never)."""
    has_next = page.step + 1 < len(page.plan)
    if page.importance == Importance.IMPORTANT and has_next and page.closed_at is None:
        return timezone.now() + timedelta(seconds=settings.PAGING_CALL_RETRY_SECONDS)
    return None


def _start_step(
    page: PageRequest, *, enqueue: bool = True, timer_set: bool = False
) -> list[NotificationAttempt]:
    """Create the attempts of the page's current step. Caller holds the page's row lock (or
    has just created it, with `timer_set`: its next_step_at already saved)."""
    recipient = page.recipient
    language = recipient.language
    message = _page_message(page)
    attempts = []
    for channel in page.plan[page.step]:
        if channel == Channel.SMS:
            to, body = (
                str(recipient.phone or ""),
                sms_text(message, language=language, code=page.code),
            )
        elif channel == Channel.CALL:
            to, body = str(recipient.phone or ""), voice_text(message, language=language)
        else:
            subject, text = email_text(
                message, language=language, link=settings.PUBLIC_BASE_URL + (message.link or "/")
            )
            to, body = recipient.email or "", f"{subject}\n\n{text}"
        attempts.append(
            NotificationAttempt(
                recipient=recipient,
                channel=channel,
                to=to,
                body=body,
                topic=page.topic,
                page=page,
                step=page.step,
            )
        )
    _new_attempts(attempts)
    if not timer_set:
        page.next_step_at = _next_step_timer(page)
        page.save(update_fields=["next_step_at"])
    if page.next_step_at is not None:
        _enqueue_advance(page.id, page.step, countdown=settings.PAGING_CALL_RETRY_SECONDS)
    # Only once the whole step exists: a failure at once (no address) may move the page on.
    for attempt in attempts:
        _send_or_fail(attempt, enqueue=enqueue)
    return attempts


def _enqueue_send(attempt_id: int, *, countdown: float = 0) -> None:
    from .tasks import send_notification_attempt

    transaction.on_commit(
        lambda: send_notification_attempt.apply_async((attempt_id,), countdown=countdown)
    )


def _enqueue_advance(page_id: int, step: int, *, countdown: float) -> None:
    from .tasks import advance_page

    transaction.on_commit(lambda: advance_page.apply_async((page_id, step), countdown=countdown))


def advance_page(*, page_id: int, step: int, now=None) -> bool:
    """Run the next step of an important page nobody acknowledged in time (or of any page
    whose next step could not be started when its last one failed: _start_next_step). `step`
    is the step the task was scheduled from: a late or duplicate task finds the page moved on,
    and does nothing. Returns whether a step was started."""
    now = now or timezone.now()
    with transaction.atomic():
        page = PageRequest.objects.select_for_update().filter(pk=page_id).first()
        if page is None or page.step != step or page.closed_at or page.next_step_at is None:
            return False
        if page.next_step_at > now:
            return False  # early: the countdown task ran before its time (clock skew)
        if page.step + 1 >= len(page.plan):
            page.next_step_at = None
            page.save(update_fields=["next_step_at"])
            return False
        page.step += 1
        page.save(update_fields=["step"])
        _start_step(page)
    return True


def _after_attempt_failed(attempt: NotificationAttempt) -> None:
    """A failed attempt of a page: when its whole step failed, move to the next step at once;
    when nothing is left to try and nothing got through, the page is exhausted. Caller holds
    the attempt's row lock; this takes the page's."""
    page = PageRequest.objects.select_for_update().get(pk=attempt.page_id)
    if page.closed_at is not None or attempt.step != page.step:
        return
    step_statuses = set(
        NotificationAttempt.objects.filter(page=page, step=page.step)
        .exclude(pk=attempt.pk)
        .values_list("status", flat=True)
    ) | {attempt.status}
    if not step_statuses <= FAILED_STATUSES:
        return
    if page.step + 1 < len(page.plan):
        _start_next_step(page)
        return
    others = set(
        NotificationAttempt.objects.filter(page=page)
        .exclude(pk=attempt.pk)
        .values_list("status", flat=True)
    )
    if others <= FAILED_STATUSES:
        now = timezone.now()
        page.exhausted_at = page.closed_at = now
        page.next_step_at = None
        page.save(update_fields=["exhausted_at", "closed_at", "next_step_at"])
        payload = {"topic": page.topic, "recipient_id": page.recipient_id}
        logger.warning("page %s: every channel failed", page.id)
        transaction.on_commit(lambda: page_exhausted.send(sender=PageRequest, **payload))


def _start_next_step(page: PageRequest) -> None:
    """Move a locked page on to its next step at once. A step that cannot be started (an
    error nobody foresaw) is logged and left to the attempt sweeper, which runs it with
    advance_page as the page is now due, and again each sweep until it starts: the status
    that called for the step (often a provider's callback, which is never sent twice) is
    recorded all the same."""
    step = page.step + 1
    try:
        with transaction.atomic():
            page.step = step
            page.save(update_fields=["step"])
            _start_step(page)
    except Exception:  # noqa: BLE001  (the sweeper starts the step; the status must stand)
        logger.exception("page %s: could not start step %s; the sweeper will", page.id, step)
        PageRequest.objects.filter(pk=page.pk).update(next_step_at=timezone.now())
        page.refresh_from_db(fields=["step", "next_step_at"])


def close_pages(*, topics: list[str], acknowledged_by_id: int | None = None, via: str = "") -> int:
    """Stop paging about these topics (the alert was acknowledged, or passed on): no retry
    call follows. The acknowledging person's page records when and how. Returns pages closed."""
    now = timezone.now()
    with transaction.atomic():
        pages = PageRequest.objects.select_for_update().filter(
            topic__in=topics, closed_at__isnull=True
        )
        closed = 0
        for page in pages:
            if acknowledged_by_id is not None and page.recipient_id == acknowledged_by_id:
                page.acknowledged_at = page.acknowledged_at or now
                page.acknowledged_via = page.acknowledged_via or via[:16]
            page.closed_at = now
            page.next_step_at = None
            page.save()
            closed += 1
    return closed


# What _move writes of an attempt.
MOVED_FIELDS = ("status", "error_code", "error_message", "provider_sid", "updated_at")


def _record_change(attempt, status: str, *, error_code: str = "", detail: str = "") -> None:
    """Note that `attempt` reached `status`, once: a repeat (a callback Twilio sends again)
    leaves the first record as it is. One query, no savepoint."""
    StatusChange.objects.bulk_create(
        [
            StatusChange(
                attempt=attempt, status=status, error_code=error_code[:16], detail=detail[:32]
            )
        ],
        ignore_conflicts=True,
    )


def _move(
    attempt: NotificationAttempt,
    status: str,
    *,
    error_code: str = "",
    error_message: str = "",
    provider_sid: str | None = None,
    detail: str = "",
    also: tuple[str, ...] = (),
) -> None:
    """Set a new status, record the change and tell the apps above on commit. `also` names
    other fields the caller changed, saved in the same update.
    The caller holds the attempt's row lock (or has just created it)."""
    attempt.status = status
    if error_code:
        attempt.error_code = error_code[:16]
    if error_message:
        attempt.error_message = error_message[:255]
    if provider_sid:
        attempt.provider_sid = provider_sid
    attempt.save(update_fields=[*MOVED_FIELDS, *also])
    _record_change(attempt, status, error_code=error_code, detail=detail)
    if attempt.page_id:
        now = timezone.now()
        if status in (AttemptStatus.QUEUED, AttemptStatus.SENT, AttemptStatus.DELIVERED):
            PageRequest.objects.filter(pk=attempt.page_id, first_sent_at__isnull=True).update(
                first_sent_at=now
            )
        if status == AttemptStatus.DELIVERED:
            PageRequest.objects.filter(pk=attempt.page_id, first_delivered_at__isnull=True).update(
                first_delivered_at=now
            )
        if status in FAILED_STATUSES:
            _after_attempt_failed(attempt)
    _tell_status(attempt, status, at=timezone.now())


def _tell_status(attempt: NotificationAttempt, status: str, *, at) -> None:
    """Tell the apps above that `attempt` reached `status`, once the change is committed (at
    once when no transaction is open). A receiver that fails (the case's timeline) is logged,
    never raised: the status is stored on the attempt whatever the news, so neither the pages
    still to send nor a provider's status callback (answered 2xx) fail with it."""
    payload = {
        "attempt_id": attempt.id,
        "topic": attempt.topic,
        "status": status,
        "recipient_id": attempt.recipient_id,
        "channel": attempt.channel,
        "provider_sid": attempt.provider_sid or "",
        "error_code": attempt.error_code,
        "at": at,
    }
    # Robust: news that fails to reach the record is logged, and never stops what follows.
    transaction.on_commit(
        lambda: attempt_status_changed.send(sender=NotificationAttempt, **payload), robust=True
    )


def _parse_rate(text: str) -> tuple[int, int]:
    count, _sep, seconds = str(text).partition("/")
    return int(count), int(seconds or 60)


def _throttle_delay(attempt: NotificationAttempt, now) -> float:
    """Seconds this attempt must wait so its phone gets no more than the channel's limit
    (PAGING_THROTTLE_SMS / PAGING_THROTTLE_CALL, "count/seconds", over a rolling window):
    carriers block bursts of calls as spam. The first step of an important page is never held
    back. Caller is inside a transaction: the phone's advisory lock serialises this check."""
    setting = {Channel.SMS: "PAGING_THROTTLE_SMS", Channel.CALL: "PAGING_THROTTLE_CALL"}.get(
        attempt.channel
    )
    if setting is None:
        return 0
    try:
        limit, window = _parse_rate(getattr(settings, setting))
    except ValueError:
        # A page is worth more than a limit: a malformed setting (system check E003) sends.
        logger.error("%s is not 'count/seconds'; not throttling", setting)
        return 0
    if attempt.page_id and attempt.step == 0 and attempt.page.importance == Importance.IMPORTANT:
        return 0  # no count to check, so no need to queue behind other sends to this phone
    if connection.vendor == "postgresql":  # the embedded SQLite default runs one worker
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", [f"{attempt.channel}:{attempt.to}"]
            )
    since = now - timedelta(seconds=window)
    recent = list(
        StatusChange.objects.filter(
            status=AttemptStatus.SENDING,
            at__gte=since,
            attempt__to=attempt.to,
            attempt__channel=attempt.channel,
        )
        .exclude(attempt=attempt)
        .order_by("-at")
        .values_list("at", flat=True)[:limit]
    )
    if len(recent) < limit:
        return 0
    return max(1.0, (recent[-1] + timedelta(seconds=window) - now).total_seconds())


def send_notification_attempt(*, attempt_id: int) -> None:
    """Send one pending attempt. A duplicate or late task finds it no longer pending and does
    nothing, so a task delivered twice pages once."""
    now = timezone.now()
    with transaction.atomic():
        attempt = (
            NotificationAttempt.objects.select_for_update(of=("self",))
            .select_related("page")
            .filter(pk=attempt_id)
            .first()
        )
        if attempt is None or attempt.status != AttemptStatus.PENDING:
            return
        if attempt.page_id and attempt.page.closed_at:
            _move(attempt, AttemptStatus.FAILED, error_message="Not sent: the page was closed")
            return
        delay = _throttle_delay(attempt, now)
        if delay:
            attempt.next_try_at = now + timedelta(seconds=delay)
            attempt.save(update_fields=["next_try_at", "updated_at"])
            logger.info("attempt %s: held back %.0fs by the per-phone limit", attempt_id, delay)
            _enqueue_send(attempt_id, countdown=delay)
            return
        attempt.tries += 1
        _move(attempt, AttemptStatus.SENDING, also=("tries",))

    if attempt.channel == Channel.EMAIL:
        _send_email(attempt)
        return
    _deliver(attempt)


def send_first_page_attempts(*, attempt_ids: list[int]) -> None:
    """Send the attempts a page step has just committed, one after another, right away: what
    an escalation step does after its commit. Each is claimed just before its provider call
    (so a crash leaves the rest pending, for the sweeper), exactly as send_notification_attempt
    would; the first try of an important page's first step, which no per-phone limit holds
    back, is claimed (unless its page was closed) and answered in one statement each on
    PostgreSQL. Anything else goes through send_notification_attempt. An error is logged, not
    raised: the attempt sweeper sends whatever is still pending."""
    for attempt_id in attempt_ids:
        try:
            attempt = _claim_first_try(attempt_id)
            if attempt is None:
                send_notification_attempt(attempt_id=attempt_id)
            else:
                _deliver(attempt, quick=True)
        except Exception:  # noqa: BLE001  (the attempt sweeper still has it)
            logger.exception("attempt %s: sending at once failed; the sweeper will", attempt_id)


def _deliver(attempt: NotificationAttempt, *, quick: bool = False) -> None:
    """Call the provider for an attempt claimed as "sending", and record its answer."""
    try:
        if attempt.channel == Channel.CALL:
            url = settings.PUBLIC_BASE_URL + reverse("notifications:voice-answer")
            sent = get_sms_provider().make_call(
                to=attempt.to,
                url=f"{url}?attempt={attempt.id}",
                status_callback=settings.PUBLIC_BASE_URL + reverse("notifications:voice-status"),
            )
        else:
            sent = get_sms_provider().send_sms(
                to=attempt.to,
                body=attempt.body,
                status_callback=settings.PUBLIC_BASE_URL + reverse("notifications:sms-status"),
            )
    except TransientProviderError as exc:
        _after_transient_failure(attempt.id, exc)
        return
    except PermanentProviderError as exc:
        if exc.code == UNSUBSCRIBED and attempt.channel == Channel.SMS:
            # The phone replied STOP and Twilio blocks SMS to it, though we missed the reply:
            # its preferences say so now, so later pages go by call and email at once.
            try:
                _set_sms_opt_out(attempt.recipient_id, opted_out=True)
                logger.warning("attempt %s: the phone has opted out of SMS", attempt.id)
            except Exception:  # noqa: BLE001  (the attempt's failure is recorded all the same)
                logger.exception("attempt %s: could not record the SMS opt-out", attempt.id)
        _finish(attempt.id, AttemptStatus.FAILED, error_code=exc.code, error_message=exc.message)
        return
    except UnknownOutcomeError as exc:
        _finish(attempt.id, AttemptStatus.UNKNOWN, error_message=exc.message)
        return
    status = AttemptStatus.SENT if sent.status == "sent" else AttemptStatus.QUEUED
    if quick and _record_accepted(attempt, status, provider_sid=sent.sid):
        return
    _finish(attempt.id, status, provider_sid=sent.sid)


# The claim of send_notification_attempt for the one case that needs no check but "still
# pending" and "its page still open": the first try of an important page's first step by SMS
# or call. The status change is written by the same statement, so the claim is whole or
# absent. The page is read by its primary key in a scalar subquery, which PostgreSQL cannot
# turn into a join: as a join it was planned, while the tables' statistics were young, as a
# scan of every page ever sent.
CLAIM_FIRST_TRY = """
WITH claimed AS (
    UPDATE notifications_notificationattempt AS a
    SET status = %(sending)s, tries = 1, updated_at = %(now)s
    WHERE a.id = %(id)s AND a.status = %(pending)s AND a.tries = 0 AND a.step = 0
        AND a.channel IN (%(sms)s, %(call)s)
        AND (
            SELECT p.step = 0 AND p.importance = %(important)s AND p.closed_at IS NULL
            FROM notifications_pagerequest AS p WHERE p.id = a.page_id
        )
    RETURNING a.id, a.recipient_id, a.channel, a."to", a.body, a.topic, a.page_id
), noted AS (
    INSERT INTO notifications_statuschange (attempt_id, status, error_code, detail, at)
    SELECT id, %(sending)s, '', '', %(now)s FROM claimed
    ON CONFLICT DO NOTHING
)
SELECT id, recipient_id, channel, "to", body, topic, page_id FROM claimed
"""

# _finish for a provider's acceptance of an attempt still "sending": the status, its change and
# the page's first-sent time in one statement, and whether an early callback awaits the SID.
RECORD_ACCEPTED = """
WITH moved AS (
    UPDATE notifications_notificationattempt
    SET status = %(status)s, provider_sid = %(sid)s, updated_at = %(now)s
    WHERE id = %(id)s AND status = %(sending)s
    RETURNING id, page_id, error_code
), noted AS (
    INSERT INTO notifications_statuschange (attempt_id, status, error_code, detail, at)
    SELECT id, %(status)s, '', '', %(now)s FROM moved
    ON CONFLICT DO NOTHING
), first_sent AS (
    UPDATE notifications_pagerequest SET first_sent_at = %(now)s
    WHERE id = (SELECT page_id FROM moved) AND first_sent_at IS NULL
)
SELECT error_code, EXISTS (
    SELECT 1 FROM notifications_earlycallback WHERE provider_sid = %(sid)s
) FROM moved
"""


def _claim_parameters(attempt_id: int, now) -> dict:
    return {
        "id": attempt_id,
        "now": now,
        "sending": AttemptStatus.SENDING.value,
        "pending": AttemptStatus.PENDING.value,
        "sms": Channel.SMS.value,
        "call": Channel.CALL.value,
        "important": Importance.IMPORTANT.value,
    }


def _claim_first_try(attempt_id: int) -> NotificationAttempt | None:
    """Claim a pending first try of an important page's first step (see CLAIM_FIRST_TRY), or
    None: not such an attempt, no longer pending, or not PostgreSQL."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return None
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(CLAIM_FIRST_TRY, _claim_parameters(attempt_id, now))
        row = cursor.fetchone()
    if row is None:
        return None
    attempt = NotificationAttempt(
        id=row[0],
        recipient_id=row[1],
        channel=row[2],
        to=row[3],
        body=row[4],
        topic=row[5],
        page_id=row[6],
        status=AttemptStatus.SENDING,
        tries=1,
    )
    _tell_status(attempt, AttemptStatus.SENDING, at=now)
    return attempt


def _record_accepted(attempt: NotificationAttempt, status: str, *, provider_sid: str) -> bool:
    """Record the provider's acceptance of an attempt claimed by _claim_first_try. False when
    it is no longer "sending" (the sweeper gave it up): _finish then keeps the SID."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            RECORD_ACCEPTED,
            {
                "id": attempt.id,
                "now": now,
                "status": status,
                "sid": provider_sid,
                "sending": AttemptStatus.SENDING.value,
            },
        )
        row = cursor.fetchone()
    if row is None:
        return False
    attempt.status, attempt.provider_sid, attempt.error_code = status, provider_sid, row[0]
    _tell_status(attempt, status, at=now)
    if row[1]:
        with transaction.atomic():
            locked = NotificationAttempt.objects.select_for_update().get(pk=attempt.id)
            _apply_early_callbacks(locked)
    return True


def _send_email(attempt: NotificationAttempt) -> None:
    subject, _sep, body = attempt.body.partition("\n\n")
    email = EmailMessage(
        subject=subject, body=body, from_email=settings.PAGING_EMAIL_FROM, to=[attempt.to]
    )
    try:
        email.send(fail_silently=False)
    except smtplib.SMTPRecipientsRefused as exc:
        _finish(attempt.id, AttemptStatus.FAILED, error_message=f"Address refused: {exc}")
        return
    except (smtplib.SMTPException, OSError) as exc:
        _after_transient_failure(attempt.id, TransientProviderError(f"Email failed: {exc}"))
        return
    # The mail server took it; email has no delivery receipt, so "sent" is as far as it goes.
    _finish(attempt.id, AttemptStatus.SENT)


def _finish(attempt_id: int, status: str, **fields) -> None:
    with transaction.atomic():
        attempt = NotificationAttempt.objects.select_for_update().get(pk=attempt_id)
        sid = fields.get("provider_sid")
        if attempt.status != AttemptStatus.SENDING:
            # The sweeper gave it up meanwhile; keep the SID so later callbacks still match.
            if sid and not attempt.provider_sid:
                attempt.provider_sid = sid
                attempt.save(update_fields=["provider_sid", "updated_at"])
        else:
            _move(attempt, status, **fields)
        if sid:
            _apply_early_callbacks(attempt)


def _apply_early_callbacks(attempt: NotificationAttempt) -> None:
    """Status callbacks that arrived before the SID was stored, applied now in order."""
    early = list(EarlyCallback.objects.filter(provider_sid=attempt.provider_sid))
    for callback in sorted(early, key=lambda c: STATUS_RANK.get(c.status, 0)):
        _apply_status(
            attempt, callback.status, error_code=callback.error_code, detail=callback.detail
        )
    EarlyCallback.objects.filter(pk__in=[c.pk for c in early]).delete()


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
    the broker was down), mark attempts a dead worker left "sending" as unknown (never resent:
    they may have gone), re-drive page steps whose timer task was lost, and ask the provider
    about attempts stuck at it. One attempt or page that fails is logged and left for the next
    sweep; the rest of the sweep still runs. Returns how many attempts were re-enqueued."""
    now = now or timezone.now()
    grace = timedelta(seconds=settings.ALERT_SWEEP_GRACE_SECONDS)
    with transaction.atomic():
        stuck = NotificationAttempt.objects.select_for_update(skip_locked=True).filter(
            status=AttemptStatus.SENDING, updated_at__lt=now - SENDING_STUCK_AFTER
        )
        for attempt in stuck:
            try:
                # A savepoint: the row lock taken above outlives a rollback to it.
                with transaction.atomic():
                    _move(
                        attempt, AttemptStatus.UNKNOWN, error_message="The sending worker stopped"
                    )
            except Exception:  # noqa: BLE001  (one attempt must not stop the sweep)
                logger.exception("attempt %s: could not mark it unknown", attempt.id)
        due = list(
            NotificationAttempt.objects.select_for_update(skip_locked=True)
            .filter(status=AttemptStatus.PENDING, next_try_at__lt=now - grace)
            .values_list("id", flat=True)
        )
        for attempt_id in due:
            _enqueue_send(attempt_id)
        overdue_pages = list(
            PageRequest.objects.filter(
                closed_at__isnull=True, next_step_at__lt=now - grace
            ).values_list("id", "step")
        )
    for page_id, step in overdue_pages:
        try:
            advance_page(page_id=page_id, step=step, now=now)
        except Exception:  # noqa: BLE001  (one page must not hold back the others)
            logger.exception("page %s: step %s failed; the next sweep tries again", page_id, step)
    poll_stuck_attempts(now=now)
    # Callbacks whose SID never got stored (an attempt of unknown outcome) are kept a day.
    EarlyCallback.objects.filter(received_at__lt=now - EARLY_CALLBACK_KEPT).delete()
    return len(due)


def poll_stuck_attempts(*, now=None) -> int:
    """Ask the provider for the status of messages and calls that have sat at it (queued or
    sent) longer than PAGING_POLL_AFTER_SECONDS with no final callback. Returns how many
    were asked about."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.PAGING_POLL_AFTER_SECONDS)
    waiting = list(
        NotificationAttempt.objects.filter(
            status__in=[AttemptStatus.QUEUED, AttemptStatus.SENT],
            channel__in=[Channel.SMS, Channel.CALL],
            provider_sid__isnull=False,
            updated_at__lt=cutoff,
        ).values_list("provider_sid", "channel")[:50]
    )
    asked = 0
    provider = get_sms_provider()
    for sid, channel in waiting:
        try:
            found = provider.fetch_status(sid=sid, channel=channel)
        except (TransientProviderError, PermanentProviderError) as exc:
            logger.warning("could not poll %s: %s", sid, exc.message)
            continue
        asked += 1
        try:
            if channel == Channel.CALL:
                record_call_status(
                    call_sid=sid, call_status=found.status, answered_by=found.answered_by
                )
            else:
                record_sms_status(
                    provider_sid=sid, status=found.status, error_code=found.error_code
                )
        except Exception:  # noqa: BLE001  (one message must not stop the others)
            logger.exception("could not record the polled status of %s", sid)
        # Touch it, so an attempt the provider still holds (or whose status could not be
        # recorded) is asked again only after a while.
        NotificationAttempt.objects.filter(
            provider_sid=sid, status__in=[AttemptStatus.QUEUED, AttemptStatus.SENT]
        ).update(updated_at=now)
    return asked


def _apply_status(attempt, status: str, *, error_code: str = "", detail: str = "") -> bool:
    """Move a locked attempt to a provider-reported status unless it is already at or past it
    (callbacks repeat and arrive out of order). Returns whether it moved."""
    if attempt.status in FINAL_STATUSES or STATUS_RANK[status] <= STATUS_RANK[attempt.status]:
        _record_change(attempt, status, error_code=error_code, detail=detail)
        return False
    error_message = ""
    if status in (AttemptStatus.UNDELIVERED, AttemptStatus.FAILED) and detail:
        error_message = detail
    _move(attempt, status, error_code=error_code, error_message=error_message, detail=detail)
    return True


def _record_status(
    *, provider_sid: str, status: str, error_code: str = "", detail: str = ""
) -> bool:
    with transaction.atomic():
        attempt = (
            NotificationAttempt.objects.select_for_update()
            .filter(provider_sid=provider_sid)
            .first()
        )
        if attempt is None:
            # The send task has not stored this SID yet: keep the news for when it does.
            EarlyCallback.objects.get_or_create(
                provider_sid=provider_sid,
                status=status,
                defaults={"error_code": error_code[:16], "detail": detail[:32]},
            )
            return False
        _apply_status(attempt, status, error_code=error_code, detail=detail)
        return True


def record_sms_status(*, provider_sid: str, status: str, error_code: str = "") -> bool:
    """Apply a provider's SMS status callback. Repeated or out-of-order callbacks change
    nothing; one for a SID not stored yet is kept and applied when it is.
    Returns False when no attempt has that SID (yet)."""
    if status not in STATUS_RANK:
        return True  # "accepted", "scheduled"...: nothing we track
    return _record_status(provider_sid=provider_sid, status=status, error_code=error_code)


def _call_outcome(attempt: NotificationAttempt | None, call_status: str, answered_by: str):
    """(status, detail) of a call's provider status. Only a key press delivers a page: a call
    that completed with no key (voicemail, or a person who hung up) did not reach anyone."""
    if call_status in ("queued", "initiated"):
        return AttemptStatus.QUEUED, call_status
    if call_status in ("ringing", "in-progress", "answered"):
        return AttemptStatus.SENT, call_status
    if call_status == "completed":
        if attempt is not None and attempt.digits in ("1", "2"):
            return AttemptStatus.DELIVERED, "completed"
        machine = answered_by.startswith("machine") or (
            attempt is not None and attempt.answered_by.startswith("machine")
        )
        return AttemptStatus.UNDELIVERED, "voicemail" if machine else "no key pressed"
    if call_status in ("busy", "no-answer"):
        return AttemptStatus.UNDELIVERED, call_status
    if call_status in ("failed", "canceled"):
        return AttemptStatus.FAILED, call_status
    return None, ""


def record_call_status(
    *, call_sid: str, call_status: str, answered_by: str = "", error_code: str = ""
) -> bool:
    """Apply a call status callback (queued, ringing, in-progress, completed, busy, no-answer,
    failed). Idempotent on (SID, status). Returns False when no attempt has that SID (yet)."""
    with transaction.atomic():
        attempt = (
            NotificationAttempt.objects.select_for_update().filter(provider_sid=call_sid).first()
        )
        if attempt is not None and answered_by and not attempt.answered_by:
            attempt.answered_by = answered_by[:32]
            attempt.save(update_fields=["answered_by", "updated_at"])
        status, detail = _call_outcome(attempt, call_status, answered_by)
        if status is None:
            return False
        code = error_code or (
            detail if status in (AttemptStatus.UNDELIVERED, AttemptStatus.FAILED) else ""
        )
        if attempt is None:
            EarlyCallback.objects.get_or_create(
                provider_sid=call_sid,
                status=status,
                defaults={"error_code": code[:16], "detail": detail[:32]},
            )
            return False
        _apply_status(attempt, status, error_code=code, detail=detail)
        return True


def call_answered(*, attempt_id: int, call_sid: str, answered_by: str):
    """Note who or what answered a call. Returns (attempt, PageMessage or None, is_machine);
    attempt is None when there is no such call attempt."""
    with transaction.atomic():
        attempt = (
            NotificationAttempt.objects.select_for_update(of=("self",))
            .select_related("page", "recipient")
            .filter(pk=attempt_id, channel=Channel.CALL)
            .first()
        )
        if attempt is None or (attempt.provider_sid and attempt.provider_sid != call_sid):
            return None, None, False
        if answered_by and not attempt.answered_by:
            attempt.answered_by = answered_by[:32]
            attempt.save(update_fields=["answered_by", "updated_at"])
        if attempt.status in (AttemptStatus.QUEUED, AttemptStatus.SENDING):
            _move(attempt, AttemptStatus.SENT, detail="in-progress")
    message = _page_message(attempt.page) if attempt.page_id else None
    return attempt, message, answered_by in MACHINE_ANSWERS


def call_key_pressed(*, attempt_id: int, call_sid: str, digits: str) -> str | None:
    """Act on a key pressed during a page call: 1 acknowledges, 2 passes the page on, as an
    `inbound_command` from the person called. Returns what to say back, or None for a key
    that means nothing (the caller repeats the choices). A repeated webhook acts once."""
    command = {"1": "ack", "2": "escalate"}.get(digits)
    if command is None:
        return None
    with transaction.atomic():
        attempt = (
            NotificationAttempt.objects.select_for_update(of=("self",))
            .select_related("recipient", "page")
            .filter(pk=attempt_id, channel=Channel.CALL)
            .first()
        )
        if attempt is None or (attempt.provider_sid and attempt.provider_sid != call_sid):
            return ""
        repeated = attempt.digits in ("1", "2")
        if not repeated:
            attempt.digits = digits
            attempt.save(update_fields=["digits", "updated_at"])
            if attempt.status not in FINAL_STATUSES:
                _move(attempt, AttemptStatus.DELIVERED, detail=f"key {digits}")
    user = attempt.recipient
    with translation.override(user.language):
        if repeated:
            return _said_back(attempt.digits)
        answer = _dispatch_command(user=user, command=command, topic=attempt.topic, channel="call")
        return answer or _said_back(digits)


def _said_back(digits: str) -> str:
    if digits == "1":
        return _("You pressed 1: the page is acknowledged.")
    return _("You pressed 2: the page is passed to the next person.")


def _dispatch_command(*, user, command: str, topic: str, channel: str, argument: str = "") -> str:
    """Tell the apps above what a person asked for; the first non-empty answer wins. Their
    page about `topic` stops (acknowledged, or passed on)."""
    responses = inbound_command.send(
        sender=InboundMessage,
        user=user,
        command=command,
        argument=argument,
        channel=channel,
        topic=topic,
    )
    if topic:
        close_pages(
            topics=[topic],
            acknowledged_by_id=user.id if command == "ack" else None,
            via=channel,
        )
    for _receiver, answer in responses:
        if answer:
            return str(answer)
    return ""


# Inbound SMS commands, matched case-insensitively, English and Welsh (see README).
CODE_PATTERN = re.compile(r"^(\d{1,9})\s*([AE])$")
ACK_WORDS = ("ACK", "1", "DERBYN", "CYDNABOD", "OK")
HELP_WORDS = ("HELP", "HELO", "CYMORTH", "INFO")
ESCALATE_WORDS = ("ESCALATE", "UWCHGYFEIRIO")
# Twilio's own opt-out and opt-in words (it blocks or unblocks the phone itself), and Welsh ones,
# which Twilio honours only once they are added to the number's Advanced Opt-Out (README).
STOP_WORDS = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "STOPIO", "DIWEDD")
START_WORDS = ("START", "UNSTOP", "YES", "DECHRAU", "AILDDECHRAU")


def handle_inbound_sms(*, provider_sid: str, from_number: str, to_number: str, body: str) -> str:
    """Answer an SMS sent to our number. Acts once per provider SID: a webhook retried by the
    provider gets the answer it got the first time. A number that keeps texting (an
    auto-responder answering our answers) gets no more answers past the limit, though its
    commands are still carried out."""
    existing = InboundMessage.objects.filter(provider_sid=provider_sid).first()
    if existing is not None:
        return existing.reply
    # Usually one person; more when a team shares an on-call handset.
    senders = list(User.objects.filter(phone=from_number, is_active=True).order_by("pk"))
    window = timezone.now() - timedelta(seconds=settings.PAGING_INBOUND_WINDOW_SECONDS)
    recent = InboundMessage.objects.filter(from_number=from_number, received_at__gte=window)
    flooding = recent.count() >= settings.PAGING_INBOUND_LIMIT
    try:
        with transaction.atomic():
            message = InboundMessage.objects.create(
                provider_sid=provider_sid,
                from_number=from_number[:32],
                to_number=to_number[:32],
                body=body[:1600],
            )
            # Past the limit nothing is answered, which ends a loop with an auto-responder;
            # what the texts ask for (an acknowledgement among them) is still done.
            reply, message.sender = _answer(senders=senders, body=body)
            if flooding:
                logger.warning("inbound SMS: too many from one number; not answering")
                reply = ""
            message.reply = reply[: InboundMessage.REPLY_MAX_LENGTH]
            message.save(update_fields=["reply", "sender"])
    except IntegrityError:
        # The same SID arrived twice at once; the other request answers it.
        return InboundMessage.objects.get(provider_sid=provider_sid).reply
    return message.reply


def _answer(*, senders: list, body: str) -> tuple[str, User | None]:
    """The reply to an SMS from the phone of `senders`, and which of them it was from (None
    when that cannot be told)."""
    if not senders:
        logger.info("inbound SMS from an unknown number")
        reply = "Concernline: this number is not registered. / Nid yw'r rhif hwn wedi'i gofrestru."
        return reply, None
    words = body.strip().upper().split()
    first = words[0] if words else ""
    rest = " ".join(words[1:])
    sender = senders[0] if len(senders) == 1 else None
    with translation.override(senders[0].language):
        if first in HELP_WORDS and not rest:
            return _(
                "Concernline: reply with the code in the page (e.g. 12A to acknowledge, "
                "12E to escalate), or ACK when one page is open. STOP ends SMS pages."
            ), sender
        if first in STOP_WORDS and not rest:
            # The provider blocks the phone itself, whoever it belongs to.
            for person in senders:
                _set_sms_opt_out(person.id, opted_out=True)
            return _(
                "Concernline: no more SMS pages; you will be paged by call and email. "
                "Reply START to have them again."
            ), sender
        if first in START_WORDS and not rest:
            for person in senders:
                _set_sms_opt_out(person.id, opted_out=False)
            return _("Concernline: SMS pages are on again."), sender
        code = CODE_PATTERN.match("".join(words))
        if code is not None:
            reply, answering = _answer_code(senders, code.group(1), code.group(2))
            return reply, answering or sender
        if sender is None:
            # A shared phone: only a page's own code says who is answering.
            logger.info("inbound SMS: a command without a code from a shared phone")
            return _(
                "Concernline: this phone is shared. Reply with the code from the page "
                "(e.g. 12A to acknowledge, 12E to escalate)."
            ), None
        return _answer_command(sender, words), sender


def _answer_command(sender, words: list[str]) -> str:
    first, rest = words[0] if words else "", " ".join(words[1:])
    with translation.override(sender.language):
        if first in ESCALATE_WORDS and len(words) <= 2:
            answer = _dispatch_command(
                user=sender, command="escalate", topic="", channel=Channel.SMS, argument=rest
            )
            return answer or _(
                "Concernline did not understand. Reply the code from the page, or HELP."
            )
        if first in ACK_WORDS and len(words) <= 2:
            answer = _dispatch_command(
                user=sender, command="ack", topic="", channel=Channel.SMS, argument=rest
            )
            return answer or _("Concernline: there is no open page for you to acknowledge.")
        logger.info("inbound SMS: command not understood")
        return _("Concernline did not understand. Reply the code from the page, or HELP.")


def _answer_code(senders: list, code: str, letter: str) -> tuple[str, User | None]:
    """A reply code names its page, and so which of the phone's people is answering (None for
    a code that is none of theirs)."""
    page = (
        PageRequest.objects.select_related("recipient")
        .filter(pk=int(code), recipient__in=senders)
        .first()
    )
    if page is None:
        logger.info("inbound SMS: reply code not sent to this phone")
        return _("Concernline: code %(code)s is not one of your pages.") % {"code": code}, None
    sender = page.recipient
    with translation.override(sender.language):
        command = "ack" if letter == "A" else "escalate"
        answer = _dispatch_command(
            user=sender, command=command, topic=page.topic, channel=Channel.SMS
        )
        if answer:
            return answer, sender
        values = {"ref": page.reference}
        if command == "ack":
            return _("Concernline: you have acknowledged case %(ref)s.") % values, sender
        return _("Concernline: case %(ref)s is passed to the next person.") % values, sender


def _set_sms_opt_out(user_id: int, *, opted_out: bool) -> None:
    with transaction.atomic():
        prefs, _created = ContactPreferences.objects.select_for_update().get_or_create(
            user_id=user_id
        )
        prefs.sms_opted_out = opted_out
        prefs.save()


def save_contact_preferences(*, actor: User, important_rule: str, normal_rule: str):
    """A person's own channel rules, from their profile page."""
    with transaction.atomic():
        prefs, _created = ContactPreferences.objects.select_for_update().get_or_create(user=actor)
        prefs.important_rule = important_rule
        prefs.normal_rule = normal_rule
        prefs.full_clean()
        prefs.save()
    return prefs
