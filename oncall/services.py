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
from notifications.services import Importance, page_person, queue_sms
from staff.models import Role, User

from . import rotas
from .models import (
    Alert,
    AlertState,
    GapWarning,
    HandoffReminder,
    Page,
    PersonalFeed,
    Rota,
    RotaOverride,
    Urgency,
    new_feed_secret,
)
from .selectors import on_call_at, shifts_for_rotas
from .signals import alert_acknowledged

logger = logging.getLogger(__name__)

# Steps an unacknowledged alert re-pages before it stops and waits for a person.
MAX_STEPS = 12
# A step task may arrive this much before its due time (clocks differ between hosts).
EARLY_TOLERANCE = timedelta(seconds=1)


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
) -> Alert:
    """Create an alert and run its first step as soon as the caller's transaction commits.

    Call it inside the transaction that saves what the alert is about, so the alert exists
    exactly when that does.
    """
    alert = Alert.objects.create(
        title=title,
        reference=reference,
        link=link,
        owner_type=owner_type,
        owner_id=owner_id,
        urgency=urgency,
        rota=rota,
        next_step_at=timezone.now(),
    )
    _enqueue_step(alert)
    return alert


def _enqueue_step(alert: Alert) -> None:
    from .tasks import escalate_alert

    alert_id, token, eta = alert.id, str(alert.active_token), alert.next_step_at
    transaction.on_commit(
        lambda: escalate_alert.apply_async((alert_id, token), task_id=token, eta=eta)
    )


def run_alert_step(*, alert_id: int, token: str) -> bool:
    """Run the step an alert is due for, if `token` is still its active token.
    Returns whether a step ran."""
    with transaction.atomic():
        alert = Alert.objects.select_for_update().filter(pk=alert_id).first()
        if (
            alert is None
            or alert.state != AlertState.TRIGGERED
            or str(alert.active_token) != str(token)
        ):
            return False
        if alert.next_step_at is None:
            return False  # escalation has run its MAX_STEPS; nothing more is scheduled
        if alert.next_step_at > timezone.now() + EARLY_TOLERANCE:
            # Delivered before its time (clock skew, an eager test run): the token stays
            # valid, and the sweeper runs the step once it is due.
            return False
        _page_step(alert)
        return True


def _page_step(alert: Alert, *, now=None) -> None:
    """Page for the alert's current step and schedule the next. Caller holds the row lock."""
    now = now or timezone.now()
    recipients = on_call_at(alert.rota, now) if alert.rota else []
    reason = "on_call"
    if not recipients:
        # Nobody on call is itself an emergency: every manager is paged instead.
        recipients = list(User.objects.filter(role=Role.MANAGER, is_active=True))
        reason = "no_one_on_call"
    if not recipients:
        logger.error("alert %s: nobody can be paged (no rota cover and no managers)", alert.id)
    message = PageMessage(reference=alert.reference, urgency=alert.urgency, title=alert.title)
    importance = Importance.IMPORTANT if alert.urgency == Urgency.URGENT else Importance.NORMAL
    for person in recipients:
        page = Page.objects.create(
            alert=alert, step=alert.current_step, recipient=person, reason=reason
        )
        page_person(recipient=person, importance=importance, message=message, topic=page.topic)
    alert.current_step += 1
    alert.active_token = uuid.uuid4()
    if alert.current_step < MAX_STEPS:
        alert.next_step_at = now + timedelta(seconds=settings.ALERT_REPAGE_SECONDS)
        alert.save()
        _enqueue_step(alert)
    else:
        alert.next_step_at = None
        alert.save()


def sweep_alerts(*, now=None) -> int:
    """Run every triggered alert step that is overdue by more than the grace period, whatever
    happened to its task. Locked rows are skipped: a worker is running them right now."""
    now = now or timezone.now()
    grace = timedelta(seconds=settings.ALERT_SWEEP_GRACE_SECONDS)
    ran = 0
    with transaction.atomic():
        overdue = Alert.objects.select_for_update(skip_locked=True).filter(
            state=AlertState.TRIGGERED, next_step_at__lt=now - grace
        )
        for alert in overdue:
            logger.warning(
                "alert %s: step %s overdue, sweeper runs it", alert.id, alert.current_step
            )
            _page_step(alert, now=now)
            ran += 1
    return ran


def acknowledge_alert(*, alert: Alert, actor: User, via: str) -> Alert:
    """Stop an alert's escalation and record who took it. Only someone paged for the alert may
    acknowledge it; acknowledging twice changes nothing."""
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert.pk)
        if alert.state != AlertState.TRIGGERED:
            return alert
        if not alert.pages.filter(recipient=actor).exists():
            raise AlertError(_("Only a person paged for this alert can acknowledge it."))
        now = timezone.now()
        alert.state = AlertState.ACKNOWLEDGED
        alert.acknowledged_by = actor
        alert.acknowledged_at = now
        alert.acknowledged_via = via
        alert.active_token = uuid.uuid4()  # voids every step already queued
        alert.next_step_at = None
        alert.save()
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


def escalate_now(*, alert: Alert, actor: User, via: str) -> Alert:
    """Run the alert's next step at once ("pass it on", key 2 on a call, the web button).
    Only someone paged for the alert may do it; an alert no longer triggered is left alone."""
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert.pk)
        if alert.state != AlertState.TRIGGERED:
            return alert
        if not alert.pages.filter(recipient=actor).exists():
            raise AlertError(_("Only a person paged for this alert can pass it on."))
        logger.info("alert %s: escalated now by %s via %s", alert.id, actor.id, via)
        _page_step(alert)
    return alert


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


def _tell(*, person: User, subject: str, body: str, topic: str) -> None:
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
                    _tell(
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
                _tell(
                    person=shift.person,
                    subject=subject,
                    body=body,
                    topic=f"oncall.handoff:{record.id}",
                )
                reminded += 1
    return reminded
