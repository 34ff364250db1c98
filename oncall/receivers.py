"""oncall listening to notifications: SMS acknowledgements, and page delivery news."""

from django.dispatch import receiver
from django.utils.translation import gettext as _

from notifications.models import AttemptStatus, NotificationAttempt
from notifications.signals import attempt_status_changed, inbound_command, page_exhausted

from .models import Alert, AlertState, Page
from .selectors import open_alerts_paged_to, page_news
from .services import (
    AlertError,
    acknowledge_alert,
    move_on_after_exhausted_page,
    pass_on_page,
)
from .signals import page_status_changed

TOPIC_PREFIX = "oncall.page:"


@receiver(inbound_command, dispatch_uid="oncall.acknowledge_by_sms")
def acknowledge_by_sms(
    sender, *, user, command, argument, channel, topic="", **kwargs
) -> str | None:
    if command not in ("ack", "escalate"):
        return None
    if topic.startswith(TOPIC_PREFIX):
        # A reply code or a key press names the page, so the alert is known at once.
        page_id = topic.removeprefix(TOPIC_PREFIX)
        page = Page.objects.select_related("alert").filter(pk=page_id, recipient=user).first()
        if page is None:
            return None
        alert = page.alert
        if command == "escalate":
            if alert.state != AlertState.TRIGGERED:
                return _("Concernline: %(ref)s is already acknowledged.") % {"ref": alert.reference}
            not_passed = _pass_on(page, user=user, channel=channel)
            if not_passed is not None:
                return not_passed
            return _("Concernline: %(ref)s is passed to the next person.") % {
                "ref": alert.reference
            }
    elif command != "ack":
        return None
    elif argument:
        alert = (
            Alert.objects.filter(reference=argument, pages__recipient=user)
            .order_by("-created_at")
            .first()
        )
        if alert is None:
            return _("Concernline: no page for %(ref)s was sent to you.") % {"ref": argument}
    else:  # a plain ACK
        open_alerts = open_alerts_paged_to(user)
        if not open_alerts:
            return None
        if len(open_alerts) > 1:
            refs = ", ".join(a.reference for a in open_alerts[:4])
            return _(
                "Concernline: several pages are open (%(refs)s). Reply ACK and the case reference."
            ) % {"refs": refs}
        alert = open_alerts[0]
    if alert.state != AlertState.TRIGGERED:
        return _("Concernline: %(ref)s is already acknowledged.") % {"ref": alert.reference}
    try:
        acknowledge_alert(alert=alert, actor=user, via=channel)
    except AlertError as exc:
        return str(exc)
    return _("Concernline: you have acknowledged %(ref)s. Open Concernline to respond.") % {
        "ref": alert.reference
    }


# Our own bookkeeping before the provider has answered: no news about the page itself.
NOT_RELAYED = {AttemptStatus.PENDING, AttemptStatus.SENDING}


@receiver(attempt_status_changed, sender=NotificationAttempt, dispatch_uid="oncall.page_news")
def relay_page_status(
    sender, *, attempt_id, topic, status, channel, provider_sid, error_code, at, **kw
):
    """What the provider says about a page (accepted, delivered, failed...), for the owner."""
    if not topic.startswith(TOPIC_PREFIX) or status in NOT_RELAYED:
        return
    page = page_news(int(topic.removeprefix(TOPIC_PREFIX)))
    if page is None:
        return
    page_status_changed.send(
        sender=Alert,
        alert_id=page["alert_id"],
        owner_type=page["owner_type"],
        owner_id=page["owner_id"],
        page_id=page["id"],
        recipient_id=page["recipient_id"],
        step=page["step"],
        reason=page["reason"],
        channel=channel,
        status=status,
        provider_sid=provider_sid,
        error_code=error_code,
        at=at,
    )


@receiver(page_exhausted, dispatch_uid="oncall.move_on_when_exhausted")
def move_on_when_exhausted(sender, *, topic, recipient_id, **kwargs) -> None:
    """Every channel to a paged person failed: run the next step now, not after the wait."""
    if topic.startswith(TOPIC_PREFIX):
        move_on_after_exhausted_page(page_id=int(topic.removeprefix(TOPIC_PREFIX)))


@receiver(inbound_command, dispatch_uid="oncall.escalate_by_sms")
def escalate_by_sms(sender, *, user, command, argument, channel, topic="", **kwargs) -> str | None:
    """ "ESCALATE <reference>": pass the page on at once. A reply code or key press names its
    page (a topic) and is handled by acknowledge_by_sms, so it is never escalated twice."""
    if command != "escalate" or topic:
        return None
    alerts = [a for a in open_alerts_paged_to(user) if not argument or a.reference == argument]
    if len(alerts) != 1:
        return _("Concernline: reply ESCALATE and the case reference.")
    # The person's latest page of the alert is the one passed on.
    page = alerts[0].pages.filter(recipient=user).order_by("-pk").first()
    not_passed = _pass_on(page, user=user, channel=channel)
    if not_passed is not None:
        return not_passed
    return _("Concernline: %(ref)s has been passed on.") % {"ref": alerts[0].reference}


def _pass_on(page: Page, *, user, channel: str) -> str | None:
    """Pass the alert on from `page`: None if it was, else what to tell the person."""
    try:
        if pass_on_page(page=page, actor=user, via=channel):
            return None
    except AlertError as exc:
        return str(exc)
    alert = Alert.objects.get(pk=page.alert_id)
    if alert.state != AlertState.TRIGGERED:
        return _("Concernline: %(ref)s is already acknowledged.") % {"ref": alert.reference}
    return _("Concernline: %(ref)s has already been passed on.") % {"ref": alert.reference}
