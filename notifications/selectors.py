"""Reads for notifications, with fixed query counts."""

from staff.models import User

from .models import NotificationAttempt, PageRequest


def attempt_language(*, attempt_id: int) -> str:
    """The language of the person an attempt is to ("en" when there is no such attempt)."""
    user = User.objects.filter(notification_attempts__pk=attempt_id).only("language").first()
    return user.language if user else "en"


def page_timings(*, topic: str) -> list[dict]:
    """Per page about `topic` (one per person) and per channel: seconds from the page to the
    first notification handed to the provider, to delivery, and to acknowledgement. Two
    queries whatever the number of pages and attempts."""
    pages = list(PageRequest.objects.filter(topic=topic).order_by("id"))
    attempts = (
        NotificationAttempt.objects.filter(page__in=pages)
        .prefetch_related("status_changes")
        .order_by("id")
    )

    def since(start, moment):
        return None if moment is None else (moment - start).total_seconds()

    by_page: dict[int, dict[str, dict]] = {page.id: {} for page in pages}
    for attempt in attempts:
        changes = {change.status: change.at for change in attempt.status_changes.all()}
        sent = min(
            (changes[s] for s in ("queued", "sent", "delivered") if s in changes), default=None
        )
        channel = by_page[attempt.page_id].setdefault(
            attempt.channel, {"to_first_notification": None, "to_delivery": None}
        )
        page_created = next(p.created_at for p in pages if p.id == attempt.page_id)
        for key, moment in (
            ("to_first_notification", sent),
            ("to_delivery", changes.get("delivered")),
        ):
            value = since(page_created, moment)
            if value is not None and (channel[key] is None or value < channel[key]):
                channel[key] = value
    return [
        {
            "recipient_id": page.recipient_id,
            "to_first_notification": since(page.created_at, page.first_sent_at),
            "to_delivery": since(page.created_at, page.first_delivered_at),
            "to_acknowledgement": since(page.created_at, page.acknowledged_at),
            "acknowledged_via": page.acknowledged_via,
            "channels": by_page[page.id],
        }
        for page in pages
    ]
