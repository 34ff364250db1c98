"""incidents listening to oncall: acknowledgements and page delivery go on the case timeline."""

from django.dispatch import receiver

from oncall.signals import alert_acknowledged, page_status_changed
from staff.models import User

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
    recipient_id,
    step,
    status,
    provider_sid,
    error_code,
    at,
    **kwargs,
):
    kind = PAGE_EVENTS.get(status)
    if owner_type != Case.ALERT_OWNER_TYPE or kind is None:
        return
    case = Case.objects.filter(pk=owner_id).first()
    if case is None:
        return
    recipient = User.objects.filter(pk=recipient_id).first()
    services.add_event(
        case=case,
        kind=kind,
        actor=None,
        at=at,
        data={
            "recipient_id": recipient_id,
            "recipient": recipient.full_name if recipient else "",
            "channel": "sms",
            "step": step,
            "status": status,
            "provider_sid": provider_sid,
            "error_code": error_code,
        },
        dedupe_key=f"page:{alert_id}:{recipient_id}:{step}:{kind}",
    )
