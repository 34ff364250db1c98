"""Thin Celery entry points for incidents."""

from celery import shared_task


@shared_task(name="incidents.sweep_clocks", max_retries=0)
def sweep_clocks() -> dict:
    """Not retried: the next beat sweeps again, and a failure must show, not hide in retries."""
    from .services import sweep_clocks as sweep

    return sweep()


@shared_task(name="incidents.purge_expired", max_retries=0)
def purge_expired() -> dict:
    """Nightly retention purge (incidents.retention). Not retried: each case is its own
    transaction, a failed one is logged and tried again the next night."""
    from .retention import PurgeTrigger
    from .retention import purge_expired as purge

    return purge(dry_run=False, trigger=PurgeTrigger.NIGHTLY).summary()
