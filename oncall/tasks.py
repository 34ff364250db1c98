"""Thin Celery entry points for the escalation engine."""

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="oncall.escalate_alert", max_retries=0, acks_late=True)
def escalate_alert(alert_id: int, token: str) -> bool:
    from .services import run_alert_step

    return run_alert_step(alert_id=alert_id, token=token)


@shared_task(name="oncall.sweep_alerts", max_retries=0, acks_late=True)
def sweep_alerts() -> int:
    """Not retried: a failing sweep must show in the logs and the monitor, not hide in retries."""
    from .services import sweep_alerts as sweep

    return sweep()


@shared_task(name="oncall.warn_of_rota_gaps", max_retries=0)
def warn_of_rota_gaps() -> int:
    """Daily. Not retried: each gap is told once, and tomorrow's run tells any missed."""
    from .services import warn_of_rota_gaps as warn

    return warn()


@shared_task(name="oncall.send_handoff_reminders", max_retries=0)
def send_handoff_reminders() -> int:
    """Every few minutes; each shift start is reminded once, so the next run covers a failure."""
    from .services import send_handoff_reminders as remind

    return remind()


@shared_task(name="oncall.check_paging_readiness", max_retries=0)
def check_paging_readiness() -> int:
    """Nightly: warn about people on call, or named in a policy, whom a page cannot reach."""
    from .selectors import unreachable_on_call

    problems = unreachable_on_call()
    for problem in problems:
        logger.warning("paging readiness: %s", problem)
    return len(problems)
