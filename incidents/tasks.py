"""Thin Celery entry points for incidents."""

from celery import shared_task


@shared_task(name="incidents.sweep_clocks", max_retries=0)
def sweep_clocks() -> dict:
    """Not retried: the next beat sweeps again, and a failure must show, not hide in retries."""
    from .services import sweep_clocks as sweep

    return sweep()
