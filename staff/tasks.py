"""Thin Celery entry points for staff."""

from celery import shared_task
from django.db import DatabaseError


@shared_task(
    name="staff.send_training_reminders",
    autoretry_for=(DatabaseError,),
    max_retries=3,
    retry_backoff=60,
)
def send_training_reminders() -> int:
    """Daily: announce the training reminders due today (each once; see the service)."""
    from . import services

    return services.send_training_reminders()
