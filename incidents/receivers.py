"""incidents listening to oncall: acknowledgements and page delivery go on the case timeline."""

from django.dispatch import receiver

from oncall.signals import alert_acknowledged, alert_event, page_status_changed

from . import services
from .models import Case, TimelineKind

PAGE_EVENTS = {
    "queued": TimelineKind.PAGE_SENT,
    "sent": TimelineKind.PAGE_SENT,
    "delivered": TimelineKind.PAGE_DELIVERED,
    "undelivered": TimelineKind.PAGE_FAILED,
    "failed": TimelineKind.PAGE_FAILED,
    "unknown": TimelineKind.PAGE_FAILED,
}


@receiver(alert_acknowledged, dispatch_uid="incidents.record_acknowledgement")
def on_alert_acknowledged(sender, *, owner_type, owner_id, user_id, at, via, **kwargs):
    if owner_type != Case.ALERT_OWNER_TYPE:
        return
    services.record_acknowledgement(case_id=owner_id, user_id=user_id, at=at, via=via)


@receiver(page_status_changed, dispatch_uid="incidents.record_page")
def on_page_status_changed(
    sender,
    *,
    alert_id,
    owner_type,
    owner_id,
    page_id,
    recipient_id,
    step,
    channel,
    status,
    provider_sid,
    error_code,
    at,
    **kwargs,
):
    kind = PAGE_EVENTS.get(status)
    if owner_type != Case.ALERT_OWNER_TYPE or kind is None:
        return
    services.record_event(
        case_id=owner_id,
        kind=kind,
        at=at,
        data={
            "recipient_id": recipient_id,
            "channel": channel,  # the channel that told first
            "step": step,
            "status": status,
            "provider_sid": provider_sid,
            "error_code": error_code,
        },
        # Told once per page: by its first channel to report, or once however often the
        # provider repeats itself.
        dedupe_key=f"page:{page_id}:{kind}",
    )


ALERT_EVENTS = {
    "step_started": TimelineKind.STEP_STARTED,
    "nobody_to_page": TimelineKind.NOBODY_TO_PAGE,
    "fallback_reached": TimelineKind.FALLBACK_REACHED,
    "escalated_now": TimelineKind.ESCALATED_NOW,
    "reassigned": TimelineKind.REASSIGNED,
    "reminder": TimelineKind.REMINDER,
    "reopened": TimelineKind.REOPENED,
}


@receiver(alert_event, dispatch_uid="incidents.record_alert_event")
def on_alert_event(sender, *, alert_id, owner_type, owner_id, kind, step, actor_id, data, at, **kw):
    """Inside the alert's transaction: the timeline row is written in the audit's own
    savepoint, so a failure here leaves the escalation's transaction sound."""
    timeline_kind = ALERT_EVENTS.get(kind)
    if owner_type != Case.ALERT_OWNER_TYPE or timeline_kind is None:
        return
    services.record_event(
        case_id=owner_id,
        kind=timeline_kind,
        actor_id=actor_id,
        at=at,
        data={"alert_id": alert_id, "step": step, **data},
    )
