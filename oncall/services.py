"""Every write in oncall: raising, stepping, sweeping and acknowledging alerts.

The escalation engine keeps its state on the alert row. A step runs under the alert's row lock
and only for the token it was queued with, so a duplicate, late or redelivered task does nothing;
the sweeper re-drives any alert whose step is overdue, so a lost task never loses a page.
"""

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from config.errors import ConcernlineError
from notifications.messages import PageMessage
from notifications.services import Importance, page_person
from staff.models import Role, User

from .models import Alert, AlertState, Page, Rota, Urgency
from .selectors import on_call_at
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
