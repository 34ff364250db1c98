"""Thin Celery entry points. Ids in, never model instances or message text."""

from celery import shared_task


@shared_task(name="notifications.send_notification_attempt", max_retries=0, acks_late=True)
def send_notification_attempt(attempt_id: int) -> None:
    from .services import send_notification_attempt as send

    send(attempt_id=attempt_id)


@shared_task(name="notifications.sweep_notification_attempts", max_retries=0)
def sweep_notification_attempts() -> int:
    from .services import sweep_notification_attempts as sweep

    return sweep()


@shared_task(name="notifications.advance_page", max_retries=0, acks_late=True)
def advance_page(page_id: int, step: int) -> bool:
    from .services import advance_page as advance

    return advance(page_id=page_id, step=step)
