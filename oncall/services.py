"""Every write in oncall: raising, stepping, sweeping and acknowledging alerts.

The escalation engine keeps its state on the alert row. A step runs under the alert's row lock
and only for the token it was queued with, so a duplicate, late or redelivered task does nothing;
the sweeper re-drives any alert whose step is overdue, so a lost task never loses a page.
"""

import logging
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from config.errors import ConcernlineError
from notifications.messages import PageMessage
from notifications.models import NotificationAttempt
from notifications.services import (
    Importance,
    close_pages,
    page_person,
    queue_sms,
    send_first_page_attempts,
)
from staff.models import Role, User

from . import rotas
from .models import (
    Alert,
    AlertState,
    GapWarning,
    HandoffReminder,
    Heartbeat,
    Page,
    PersonalFeed,
    Rota,
    RotaOverride,
    StepKind,
    Urgency,
    new_feed_secret,
)
from .policies import (
    ROTA_KINDS,
    builtin_steps,
    fallback_people,
    minute_seconds,
    snapshot_for,
)
from .selectors import shifts_for_rotas
from .signals import alert_acknowledged, alert_event

logger = logging.getLogger(__name__)

# A step task may arrive this much before its due time (clocks differ between hosts).
EARLY_TOLERANCE = timedelta(seconds=1)
# Publishing a step: try briefly, then leave it to the sweeper (a report must not wait on Redis).
QUICK_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
# Steps one run may pass through without a wait (a guard; validation requires waits in loops).
MAX_STEPS_PER_RUN = 50


class AlertError(ConcernlineError):
    """An alert cannot do what was asked; the message says why in plain words."""

    code = "alert_refused"


def raise_alert(
    *,
    title: str,
    reference: str,
    link: str,
    owner_type: str,
    owner_id: int,
    urgency: str = Urgency.URGENT,
    rota: Rota | None,
    category: str = "",
    hints: dict | None = None,
) -> Alert:
    """Create an alert and run its first step as soon as the caller's transaction commits.

    Call it inside the transaction that saves what the alert is about, so the alert exists
    exactly when that does. The policy for `category` and `urgency` and who is on call now are
    copied onto the alert. `hints` are ids the policy may use, e.g. {"line_manager_id": 12}.
    """
    now = timezone.now()
    alert = Alert.objects.create(
        title=title,
        reference=reference,
        link=link,
        owner_type=owner_type,
        owner_id=owner_id,
        urgency=urgency,
        rota=rota,
        category=category,
        hints=hints or {},
        snapshot=snapshot_for(category=category, urgency=urgency, rota=rota, now=now),
        next_step_at=now,
    )
    _enqueue_step(alert)
    return alert


def _enqueue_step(alert: Alert) -> None:
    from .tasks import escalate_alert

    if alert.next_step_at is None:
        return
    alert_id, token, eta = alert.id, str(alert.active_token), alert.next_step_at
    if eta <= timezone.now():
        eta = None  # due now: straight to a worker, not through its ETA timer

    def enqueue() -> None:
        try:
            escalate_alert.apply_async(
                (alert_id, token), task_id=token, eta=eta, retry=True, retry_policy=QUICK_RETRY
            )
        except Exception:  # noqa: BLE001  (the broker is down: the alert row is the truth)
            # The caller's work is committed and must not fail now; the sweeper runs the step
            # once it is overdue, from any worker, when the broker is back.
            logger.exception("alert %s: could not queue its step; the sweeper will", alert_id)

    transaction.on_commit(enqueue)


def run_alert_step(*, alert_id: int, token: str) -> bool:
    """Run the step an alert is due for, if `token` is still its active token.
    Returns whether a step ran."""
    with transaction.atomic():
        alert = Alert.objects.select_for_update().filter(pk=alert_id).first()
        if (
            alert is None
            or alert.state == AlertState.RESOLVED
            or str(alert.active_token) != str(token)
        ):
            return False
        if alert.next_step_at is None:
            return False  # escalation has run to its end; nothing more is scheduled
        if alert.next_step_at > timezone.now() + EARLY_TOLERANCE:
            # Delivered before its time (clock skew, an eager test run): the token stays
            # valid, and the sweeper runs the step once it is due.
            return False
        # This worker sends the step's pages itself as soon as the step commits, sparing each
        # page a trip through the broker; no send task is queued for them. The attempts are
        # committed as pending with the step, so if this worker dies before sending one, the
        # attempt sweeper sends it. Registered before the step runs, so the pages leave first
        # after the commit; queueing what follows (the next step, a page's retry timer) comes
        # after them, and a sweeper makes it good if this worker dies sending.
        ids: list[int] = []
        transaction.on_commit(lambda: send_first_page_attempts(attempt_ids=ids))
        ids.extend(attempt.id for attempt in _run_due(alert, send_on_commit=False))
        return True


# What running a step may change on an alert: saved alone, not the snapshot and the rest.
STEP_STATE_FIELDS = (
    "state",
    "current_step",
    "next_step_at",
    "active_token",
    "loop",
    "step_tries",
    "fallback_reached_at",
    "acknowledged_by",
    "acknowledged_at",
    "acknowledged_via",
    "reminded_at",
)


def _run_due(alert: Alert, *, now=None, send_on_commit: bool = True) -> list[NotificationAttempt]:
    """What falls due on a locked alert: the next steps of a triggered one, or the review
    reminder (then the re-opening) of an acknowledged one. Returns the attempts created; with
    `send_on_commit=False` the caller sends them after its commit (see page_person)."""
    now = now or timezone.now()
    attempts: list[NotificationAttempt] = []
    paging = {"attempts": attempts, "send_on_commit": send_on_commit}
    if alert.state == AlertState.TRIGGERED:
        _advance(alert, now=now, **paging)
    elif alert.state == AlertState.ACKNOWLEDGED and settings.ESCALATION_REVIEW_MINUTES:
        _review_overdue(alert, now=now, **paging)
    else:
        alert.next_step_at = None
    alert.active_token = uuid.uuid4()  # the token that ran is spent
    alert.save(update_fields=STEP_STATE_FIELDS)
    _enqueue_step(alert)
    return attempts


def _steps(alert: Alert) -> list[dict]:
    return alert.snapshot.get("policy", {}).get("steps") or builtin_steps()


def _advance(
    alert: Alert, *, now, attempts: list | None = None, send_on_commit: bool = True
) -> None:
    """Run steps from `current_step` until one makes the alert wait, or the policy ends.
    Caller holds the row lock and saves."""
    steps = _steps(alert)
    due_at = alert.next_step_at
    alert.next_step_at = None
    paged: set[int] = set()  # one run never pages a person twice (e.g. step and fallback)
    for _guard in range(MAX_STEPS_PER_RUN):
        index = alert.current_step
        if index >= len(steps):
            return  # the fallback has been paged; the alert waits for a person
        step = steps[index]
        kind = step["kind"]
        if kind == StepKind.WAIT:
            alert.current_step = index + 1
            alert.next_step_at = now + _minutes(step["minutes"])
            return
        if kind == StepKind.REPEAT:
            if alert.loop < step["times"]:
                alert.loop += 1
                alert.current_step = step["repeat_from"] - 1
            else:
                alert.current_step = index + 1
            continue
        attempts_now = _notify(
            alert,
            index=index,
            step=step,
            paged=paged,
            due_at=due_at,
            send_on_commit=send_on_commit,
        )
        if attempts is not None:
            attempts.extend(attempts_now)
        if kind == StepKind.UNTIL_ACKNOWLEDGED:
            alert.step_tries += 1
            if alert.step_tries >= step["times"]:
                alert.step_tries = 0
                alert.current_step = index + 1
            # Give the last page its interval to be answered before moving on.
            alert.next_step_at = now + _minutes(step["minutes"])
            return
        if kind == StepKind.FALLBACK and alert.fallback_reached_at is None:
            alert.fallback_reached_at = now
            _tell(alert, "fallback_reached", step=index)
        alert.current_step = index + 1
    logger.error("alert %s: policy ran %s steps without a wait", alert.id, MAX_STEPS_PER_RUN)


def _minutes(minutes) -> timedelta:
    return timedelta(seconds=float(minutes) * minute_seconds())


def _resolve(alert: Alert, step: dict) -> tuple[list[User], str]:
    """Who a notify step reaches, and the page reason. Rotas come from the snapshot."""
    kind = step["kind"]
    if kind in (StepKind.NOTIFY_ON_CALL, StepKind.UNTIL_ACKNOWLEDGED):
        entry = alert.snapshot.get("on_call", {}).get(str(step.get("rota_id") or ""), {})
        ids = [p["id"] for p in entry.get("people", [])]
        return list(User.objects.filter(pk__in=ids).order_by("pk")), "on_call"
    if kind == StepKind.NOTIFY_LINE_MANAGER:
        manager_id = alert.hints.get("line_manager_id")
        return list(User.objects.filter(pk=manager_id)) if manager_id else [], "line_manager"
    if kind == StepKind.NOTIFY_PERSON:
        return list(User.objects.filter(pk=step["person_id"])), "named"
    if kind == StepKind.NOTIFY_ROLE:
        return list(User.objects.filter(role=step["role"]).order_by("pk")), "role"
    return fallback_people(step), "fallback"


def _reachable(person: User) -> bool:
    return person.is_active and bool(person.phone)


def _notify(
    alert: Alert,
    *,
    index: int,
    step: dict,
    paged: set[int],
    due_at=None,
    send_on_commit: bool = True,
) -> list[NotificationAttempt]:
    """Page everyone the step reaches. Anyone unreachable is a warning on the record; a step
    that reaches nobody pages the policy's fallback instead, never nothing."""
    found, reason = _resolve(alert, step)
    # Never the person whose report raised the alert (a manager on call who reports): they
    # know already, and must not be the one to answer for their own report.
    not_to_page = set(alert.hints.get("not_to_page", []))
    found = [p for p in found if p.id not in not_to_page]
    recipients = [p for p in found if _reachable(p)]
    unreachable = [p.id for p in found if not _reachable(p)]
    if not recipients:
        fallback = fallback_people(_steps(alert)[-1])
        # Them only if nobody else at all can be paged: never nothing.
        recipients = [p for p in fallback if p.id not in not_to_page] or fallback
        _tell(
            alert,
            "nobody_to_page",
            step=index,
            data={"step_kind": step["kind"], "unreachable": unreachable},
        )
        logger.warning("alert %s: step %s reaches nobody; paging the fallback", alert.id, index)
        reason = "no_one_on_call" if step["kind"] in ROTA_KINDS else "no_one_to_page"
        if not recipients:
            logger.error("alert %s: nobody can be paged, not even the fallback", alert.id)
    elif unreachable:
        _tell(alert, "nobody_to_page", step=index, data={"unreachable": unreachable})
    importance = step.get("importance") or Importance.IMPORTANT
    attempts: list[NotificationAttempt] = []
    recipients = [p for p in recipients if p.id not in paged]
    paged.update(p.id for p in recipients)
    for person in recipients:
        attempts += _page(
            alert,
            person,
            step=index,
            reason=reason,
            importance=importance,
            due_at=due_at,
            send_on_commit=send_on_commit,
        )
    _tell(
        alert,
        "step_started",
        step=index,
        data={"step_kind": step["kind"], "recipient_ids": [p.id for p in recipients]},
    )
    return attempts


def _page(
    alert: Alert,
    person: User,
    *,
    step: int,
    reason: str,
    importance: str = Importance.IMPORTANT,
    due_at=None,
    send_on_commit: bool = True,
) -> list[NotificationAttempt]:
    """Page one person for `alert`: the Page row (what the record shows afterwards) and its
    attempts in the outbox (reference, urgency and title only)."""
    page = Page.objects.create(
        alert=alert,
        step=step,
        recipient=person,
        reason=reason,
        importance=importance,
        due_at=due_at,
        run_token=alert.active_token,  # rotated by the caller once this run has paged
    )
    return page_person(
        recipient=person,
        importance=importance,
        message=PageMessage(
            reference=alert.reference, urgency=alert.urgency, title=alert.title, link=alert.link
        ),
        topic=page.topic,
        send_on_commit=send_on_commit,
    )


def _reopen(alert: Alert) -> None:
    """Back to triggered: the acknowledgement and its reminder no longer stand."""
    alert.state = AlertState.TRIGGERED
    alert.acknowledged_by = None
    alert.acknowledged_at = None
    alert.acknowledged_via = ""
    alert.reminded_at = None


def _tell(alert: Alert, kind: str, *, step: int | None = None, actor_id=None, data=None) -> None:
    """News for the apps above (the case timeline), told inside the caller's transaction, so
    the record commits with the alert's new state or not at all. Ids only. A receiver that
    fails is logged and never stops the escalation (receivers write in a savepoint of their
    own, so their failure leaves this transaction sound)."""
    payload = {
        "alert_id": alert.id,
        "owner_type": alert.owner_type,
        "owner_id": alert.owner_id,
        "kind": kind,
        "step": None if step is None else step + 1,  # people count steps from 1
        "actor_id": actor_id,
        "data": data or {},
        "at": timezone.now(),
    }
    # send_robust logs a receiver's error with its traceback; this says which alert it was.
    for _receiver, result in alert_event.send_robust(sender=Alert, **payload):
        if isinstance(result, Exception):
            logger.error("alert %s: %s news not recorded: %s", alert.id, kind, result)


def _review_overdue(alert: Alert, *, now, attempts: list, send_on_commit: bool = True) -> None:
    """An urgent alert acknowledged but not taken into review in time: remind the person who
    acknowledged it once, then re-open it and resume the escalation where it stopped."""
    if alert.reminded_at is None:
        alert.reminded_at = now
        person = alert.acknowledged_by
        attempts += _page(
            alert,
            person,
            step=alert.current_step,
            reason="review_reminder",
            send_on_commit=send_on_commit,
        )
        _tell(alert, "reminder", actor_id=None, data={"recipient_id": person.id})
        alert.next_step_at = now + _minutes(settings.ESCALATION_REVIEW_MINUTES)
        return
    _tell(alert, "reopened", data={"acknowledged_by_id": alert.acknowledged_by_id})
    _reopen(alert)
    _advance(alert, now=now, attempts=attempts, send_on_commit=send_on_commit)


def sweep_alerts(*, now=None) -> int:
    """Run every alert whose next step (or review reminder) is overdue by more than the grace
    period, whatever happened to its task. Locked rows are skipped: a worker is running them
    right now. Each alert runs in a savepoint of its own: one whose step fails is logged, left
    overdue for the next sweep (and for /health/), and the others still run. Records the
    sweeper's heartbeat for the health endpoint. Returns how many alerts ran."""
    now = now or timezone.now()
    grace = timedelta(seconds=settings.ALERT_SWEEP_GRACE_SECONDS)
    ran = 0
    with transaction.atomic():
        states = [AlertState.TRIGGERED]
        if settings.ESCALATION_REVIEW_MINUTES:
            states.append(AlertState.ACKNOWLEDGED)  # review reminders
        # In owner order: each step writes its news under its owner's (the case's) timeline
        # lock, held until this sweep commits, so two sweeps running at once take those locks
        # in the same order and never wait for each other.
        overdue = (
            Alert.objects.select_for_update(skip_locked=True)
            .filter(state__in=states, next_step_at__lt=now - grace)
            .order_by("owner_type", "owner_id", "id")
        )
        for alert in overdue:
            step = alert.current_step
            logger.warning("alert %s: step %s overdue, sweeper runs it", alert.id, step)
            try:
                # The row lock taken above outlives a rollback to this savepoint; the
                # failed step's writes, news and on-commit tasks do not.
                with transaction.atomic():
                    _run_due(alert, now=now)
            except Exception:  # noqa: BLE001  (one alert must not stop the others)
                logger.exception(
                    "alert %s: step %s failed; the next sweep tries again", alert.id, step
                )
                continue
            ran += 1
        record_heartbeat(name="sweeper", at=now)
    return ran


def record_heartbeat(*, name: str, at=None) -> None:
    Heartbeat.objects.update_or_create(name=name, defaults={"at": at or timezone.now()})


def acknowledge_alert(*, alert: Alert, actor: User, via: str) -> Alert:
    """Stop an alert's escalation and record who took it. Only someone paged for the alert may
    acknowledge it; acknowledging twice changes nothing. An urgent alert then waits
    ESCALATION_REVIEW_MINUTES to be resolved (taken into review) before the acknowledger is
    reminded, and as long again before it re-opens (0: never).

    Every page sent so far is closed in the same transaction, under the alert's lock (alert,
    then its pages, as resolve_alerts): no retry call or next channel follows, even if this
    process dies straight after the commit, and a page a reassignment sends afterwards is not
    one of them."""
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert.pk)
        if alert.state != AlertState.TRIGGERED:
            return alert
        pages = list(alert.pages.only("pk", "recipient_id"))
        if not any(page.recipient_id == actor.pk for page in pages):
            raise AlertError(_("Only a person paged for this alert can acknowledge it."))
        now = timezone.now()
        alert.state = AlertState.ACKNOWLEDGED
        alert.acknowledged_by = actor
        alert.acknowledged_at = now
        alert.acknowledged_via = via
        alert.active_token = uuid.uuid4()  # voids every step already queued
        alert.next_step_at = None
        alert.reminded_at = None
        if alert.urgency == Urgency.URGENT and settings.ESCALATION_REVIEW_MINUTES:
            alert.next_step_at = now + _minutes(settings.ESCALATION_REVIEW_MINUTES)
        alert.save(update_fields=STEP_STATE_FIELDS)
        close_pages(topics=[page.topic for page in pages], acknowledged_by_id=actor.id, via=via)
        _enqueue_step(alert)
        payload = {
            "alert_id": alert.id,
            "owner_type": alert.owner_type,
            "owner_id": alert.owner_id,
            "user_id": actor.id,
            "at": now,
            "via": via,
        }
        transaction.on_commit(lambda: alert_acknowledged.send(sender=Alert, **payload))
    return alert


def resolve_alerts(*, owner_type: str, owner_id: int, actor: User | None) -> int:
    """End every open alert of an owner (for a case: it went into review). Nothing more is
    sent for them, reminders included: their pages are closed in the same transaction, as an
    acknowledgement closes them, so no page's next channel (the retry call, the email) goes
    out. Returns how many were open."""
    with transaction.atomic():
        alerts = list(
            Alert.objects.select_for_update()
            .filter(owner_type=owner_type, owner_id=owner_id)
            .exclude(state=AlertState.RESOLVED)
        )
        for alert in alerts:
            taken_by = None
            if alert.state == AlertState.TRIGGERED and actor is not None:
                alert.acknowledged_by, alert.acknowledged_at = actor, timezone.now()
                alert.acknowledged_via = "resolved"
                taken_by = actor.id
            alert.state = AlertState.RESOLVED
            alert.active_token = uuid.uuid4()
            alert.next_step_at = None
            alert.save(update_fields=STEP_STATE_FIELDS)
            # Under the alert's lock, as when a reply acknowledges (alert, then its pages).
            close_pages(
                topics=[page.topic for page in alert.pages.only("pk")],
                acknowledged_by_id=taken_by,
                via="resolved",
            )
    return len(alerts)


def _may_steer(alert: Alert, actor: User) -> bool:
    """Someone paged for the alert, or any manager, may pass it on or reassign it."""
    return actor.is_active and (
        actor.role == Role.MANAGER or alert.pages.filter(recipient=actor).exists()
    )


def escalate_now(*, alert: Alert, actor: User, via: str) -> Alert:
    """Skip the wait and run the alert's next step at once (the web button "escalate now").
    Only someone paged for the alert, or a manager, may; an alert no longer triggered is left
    alone. A pass-on from a page (a reply code, a key press) goes through pass_on_page."""
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert.pk)
        if alert.state != AlertState.TRIGGERED:
            return alert
        _pass_on(alert, actor=actor, via=via)
    return alert


def pass_on_page(*, page: Page, actor: User, via: str) -> bool:
    """ "Pass it on" from a page (its reply code, a key press on its call, ESCALATE by SMS):
    run the step after the one that sent `page`, at once, as escalate_now does. It passes on
    that step only: once a later step has paged (this page's other channel or another person
    paged with it passed it on already, or the next step ran), nothing more is done, so the
    next person is never skipped. A step that pages the same person again and again (until
    acknowledged) is still that step: a reply to an earlier one of its pages passes it on.
    Returns whether the alert was passed on; False too for an alert no longer triggered."""
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=page.alert_id)
        if alert.state != AlertState.TRIGGERED:
            return False
        if alert.pages.filter(pk__gt=page.pk, step__gt=page.step).exists():
            logger.info("alert %s: page %s was passed on already; left alone", alert.id, page.pk)
            return False
        _pass_on(alert, actor=actor, via=via)
    return True


def _pass_on(alert: Alert, *, actor: User, via: str) -> None:
    """Run a triggered alert's next step now. Caller holds the row lock."""
    if not _may_steer(alert, actor):
        raise AlertError(_("Only a person paged for this alert can pass it on."))
    logger.info("alert %s: escalated now by %s via %s", alert.id, actor.id, via)
    steps = _steps(alert)
    index = alert.current_step
    if (
        index < len(steps)
        and alert.step_tries
        and steps[index]["kind"] == (StepKind.UNTIL_ACKNOWLEDGED)
    ):
        # Already paging this step's person: passing it on means the step after.
        alert.step_tries = 0
        alert.current_step = index + 1
    if alert.current_step >= len(steps):
        # Past the end: page the fallback again rather than do nothing.
        alert.current_step = len(steps) - 1
    _tell(alert, "escalated_now", actor_id=actor.id, data={"via": via})
    _run_due(alert)


# Rotas
#
# A rota is not case data: its name, who is on call and when may go by SMS and email.


class RotaError(ConcernlineError):
    """A rota change cannot be made; the message says why in plain words."""

    code = "rota_refused"


def can_manage_rotas(user) -> bool:
    """Managers and administrators see rota calendars and change cover."""
    return bool(
        user.is_authenticated
        and user.is_active
        and (user.role in (Role.MANAGER, Role.ADMIN) or user.is_superuser)
    )


def add_override(
    *,
    rota: Rota,
    person: User,
    starts_at: datetime,
    ends_at: datetime,
    actor: User,
    reason: str = "",
) -> RotaOverride:
    """Put `person` on call in `rota` from `starts_at` until `ends_at`, over every layer
    ("I'll cover", a swap). A manager or an administrator does it; a person covers only if
    active and able to be paged (a mobile number on record)."""
    fields: dict[str, str] = {}
    if not can_manage_rotas(actor):
        raise RotaError(_("Only a manager can change who is on call."))
    if not person.is_active:
        fields["person"] = _("This person's account is not active.")
    elif not person.phone:
        fields["person"] = _("This person has no mobile number, so they could not be paged.")
    if ends_at <= starts_at:
        fields["ends_at"] = _("The end must be after the start.")
    elif ends_at <= timezone.now():
        fields["ends_at"] = _("This time is already over.")
    if fields:
        raise RotaError(_("The cover was not added."), extra=fields)
    with transaction.atomic():
        override = RotaOverride(
            rota=rota,
            person=person,
            starts_at=starts_at,
            ends_at=ends_at,
            reason=reason[:120],
            created_by=actor,
        )
        override.full_clean()
        override.save()
    logger.info(
        "rota %s: override %s for person %s by %s", rota.id, override.id, person.id, actor.id
    )
    return override


def personal_feed(*, person: User) -> PersonalFeed:
    """The person's own calendar feed, made the first time it is asked for."""
    return PersonalFeed.objects.get_or_create(person=person)[0]


def rotate_feed_secret(*, actor: User, rota: Rota | None = None, person: User | None = None) -> str:
    """Give a rota's feed (a manager) or a person's own feed (that person) a new secret: the
    old address stops working at once. Returns the new secret."""
    if (rota is None) == (person is None):
        raise ValueError("Rotate the feed of one rota or one person.")
    with transaction.atomic():
        if rota is not None:
            if not can_manage_rotas(actor):
                raise RotaError(_("Only a manager can change a rota's calendar address."))
            rota.feed_secret = new_feed_secret()
            rota.save(update_fields=["feed_secret"])
            return rota.feed_secret
        if person.pk != actor.pk:
            raise RotaError(_("Only you can change your own calendar address."))
        feed = personal_feed(person=person)
        feed.secret = new_feed_secret()
        feed.save(update_fields=["secret"])
        return feed.secret


def _local(when: datetime) -> str:
    return formats.date_format(timezone.localtime(when, ZoneInfo(settings.TIME_ZONE)), "D j M H:i")


def _tell_person(*, person: User, subject: str, body: str, topic: str) -> None:
    """An SMS and an email to one person, both sent once the caller's transaction commits."""
    queue_sms(recipient=person, body=body, topic=topic)
    if person.email:
        address = person.email

        def send() -> None:
            try:
                send_mail(subject, body, None, [address])
            except Exception:  # one bad mailbox must not stop the other warnings
                logger.exception("rota email to person %s failed", person.id)

        transaction.on_commit(send)


# Gaps are looked for this far either side of the look-ahead, so a gap that began before now or
# runs past the look-ahead is known by its real start and end, not by where the search cut it.
GAP_MARGIN = timedelta(days=7)


def warn_of_rota_gaps(*, now: datetime | None = None) -> int:
    """Tell each rota's owners (every manager if it has none), by SMS and email, of each gap in
    cover that starts before ROTA_GAP_LOOKAHEAD_DAYS from now and has not ended. Each gap is told
    once: a gap overlapping one already told (the same gap, or what is left of it after cover
    was added) is not told again. Returns how many gaps were told."""
    now = now or timezone.now()
    horizon = now + timedelta(days=settings.ROTA_GAP_LOOKAHEAD_DAYS)
    search_start, search_end = now - GAP_MARGIN, horizon + GAP_MARGIN
    rota_list = list(Rota.objects.prefetch_related("owners"))
    shifts = shifts_for_rotas(rota_list, search_start, search_end)
    managers = None
    told = 0
    for rota in rota_list:
        for gap_start, gap_end in rotas.gaps(shifts[rota.id], search_start, search_end):
            if gap_end <= now or gap_start >= horizon:
                continue
            with transaction.atomic():
                # The rota's row lock makes two overlapping runs tell a gap once.
                Rota.objects.select_for_update().filter(pk=rota.pk).first()
                if GapWarning.objects.filter(
                    rota=rota, starts_at__lt=gap_end, ends_at__gt=gap_start
                ).exists():
                    continue
                warning = GapWarning.objects.create(rota=rota, starts_at=gap_start, ends_at=gap_end)
                owners = [o for o in rota.owners.all() if o.is_active]
                if not owners:
                    if managers is None:
                        managers = list(User.objects.filter(role=Role.MANAGER, is_active=True))
                    owners = managers
                for owner in owners:
                    with translation.override(owner.language):
                        body = _(
                            "Concernline: nobody is on call in rota %(rota)s from %(start)s "
                            "to %(end)s. Open the rota to cover it."
                        ) % {
                            "rota": rota.name,
                            "start": _local(max(gap_start, now)),
                            "end": _local(gap_end),
                        }
                        subject = _("Gap in the on-call rota %(rota)s") % {"rota": rota.name}
                    _tell_person(
                        person=owner, subject=subject, body=body, topic=f"oncall.gap:{warning.id}"
                    )
                told += 1
    return told


def send_handoff_reminders(*, now: datetime | None = None) -> int:
    """Remind whoever comes on call within ROTA_HANDOFF_REMINDER_MINUTES, by SMS and email,
    once for each shift start. Returns how many were reminded."""
    now = now or timezone.now()
    lead = timedelta(minutes=settings.ROTA_HANDOFF_REMINDER_MINUTES)
    rota_list = list(Rota.objects.all())
    # A day past the lead, so the reminder can say until when.
    shifts = shifts_for_rotas(rota_list, now, now + lead + timedelta(days=1))
    reminded = 0
    for rota in rota_list:
        for shift in shifts[rota.id]:
            # A shift that starts after `now` is a real handover, not one cut at the span.
            if not now < shift.start <= now + lead:
                continue
            with transaction.atomic():
                record, created = HandoffReminder.objects.get_or_create(
                    rota=rota, person=shift.person, starts_at=shift.start
                )
                if not created:
                    continue
                with translation.override(shift.person.language):
                    body = _(
                        "Concernline: you are on call for %(rota)s from %(start)s until %(end)s."
                    ) % {"rota": rota.name, "start": _local(shift.start), "end": _local(shift.end)}
                    subject = _("You are on call soon")
                _tell_person(
                    person=shift.person,
                    subject=subject,
                    body=body,
                    topic=f"oncall.handoff:{record.id}",
                )
                reminded += 1
    return reminded


# Policy minutes a reassigned alert waits for its new person before escalating again.
REASSIGN_WAIT_MINUTES = 5


def reassign_alert(*, alert: Alert, actor: User, to: User) -> Alert:
    """Page `to` now and make them the one to acknowledge: an acknowledged alert re-opens for
    them, and if they do not answer within REASSIGN_WAIT_MINUTES the policy carries on."""
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert.pk)
        if alert.state == AlertState.RESOLVED:
            raise AlertError(_("This alert is closed."))
        if not _may_steer(alert, actor):
            raise AlertError(_("Only a manager or a person paged for this alert can reassign it."))
        if not _reachable(to):
            raise AlertError(_("%(name)s has no mobile number to page.") % {"name": to})
        if to.id in alert.hints.get("not_to_page", []):
            raise AlertError(
                _("%(name)s made this report and cannot take it: choose someone else.")
                % {"name": to}
            )
        now = timezone.now()
        _reopen(alert)
        _page(alert, to, step=alert.current_step, reason="reassigned")
        _tell(alert, "reassigned", actor_id=actor.id, data={"to_id": to.id})
        alert.active_token = uuid.uuid4()
        alert.next_step_at = now + _minutes(REASSIGN_WAIT_MINUTES)
        alert.save(update_fields=STEP_STATE_FIELDS)
        _enqueue_step(alert)
    return alert


def move_on_after_exhausted_page(*, page_id: int) -> bool:
    """Every channel to a paged person failed: don't wait out the step, run the next now,
    once every page the step sent has failed. Only for the latest run's pages (see
    Page.run_token); returns whether the alert moved on."""
    with transaction.atomic():
        page = Page.objects.filter(pk=page_id).first()
        if page is None:
            return False
        alert = Alert.objects.select_for_update().get(pk=page.alert_id)
        Page.objects.filter(pk=page_id, exhausted_at__isnull=True).update(
            exhausted_at=timezone.now()
        )
        stale = alert.pages.filter(pk__gt=page.pk).exclude(run_token=page.run_token).exists()
        if alert.state != AlertState.TRIGGERED or alert.next_step_at is None or stale:
            return False
        # Under the alert's lock, so of two pages failing at once the later sees the earlier.
        if (
            alert.pages.filter(run_token=page.run_token, exhausted_at__isnull=True)
            .exclude(pk=page.pk)
            .exists()
        ):
            return False  # someone paged in the same step, before or after, may still answer
        logger.warning("alert %s: page %s reached nobody, moving on now", alert.id, page_id)
        alert.next_step_at = timezone.now()
        alert.active_token = uuid.uuid4()
        alert.save(update_fields=STEP_STATE_FIELDS)
        _enqueue_step(alert)
    return True
