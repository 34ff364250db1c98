"""Thin Celery entry points for the escalation engine."""

from celery import shared_task


@shared_task(name="oncall.escalate_alert", max_retries=0, acks_late=True)
def escalate_alert(alert_id: int, token: str) -> bool:
    from .services import run_alert_step

    return run_alert_step(alert_id=alert_id, token=token)


@shared_task(name="oncall.sweep_alerts", max_retries=0)
def sweep_alerts() -> int:
    """Not retried: a failing sweep must show in the logs and the monitor, not hide in retries."""
    from .services import sweep_alerts as sweep

    return sweep()
