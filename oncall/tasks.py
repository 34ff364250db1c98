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


@shared_task(name="oncall.check_paging_readiness", max_retries=0)
def check_paging_readiness() -> int:
    """Nightly: warn about people on call, or named in a policy, whom a page cannot reach."""
    from .selectors import unreachable_on_call

    problems = unreachable_on_call()
    for problem in problems:
        logger.warning("paging readiness: %s", problem)
    return len(problems)
