"""The Celery application. Queues: `paging` for everything that puts a page on a phone, so
slow housekeeping never sits in front of an urgent page; `default` for the rest."""

import logging
import os

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("concernline")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def load_the_sms_provider(**kwargs) -> None:
    """Import the SMS provider (for Twilio, the SDK's REST modules, which it otherwise loads on
    first use) while the worker starts, so the first page after a restart does not wait for it.
    Prefork children inherit what the parent imported. A provider that cannot be loaded is
    logged, not fatal, as before this hook: the worker still runs everything else, and the
    error comes again with the first page."""
    from notifications.providers import get_sms_provider

    try:
        get_sms_provider()
    except Exception:  # noqa: BLE001  (the same error is raised again when a page is sent)
        logging.getLogger(__name__).exception("could not load the SMS provider")


@task_prerun.connect
@task_postrun.connect
def close_old_database_connections(sender=None, **kwargs) -> None:
    """Before and after each task, close this thread's database connection if it is past
    CONN_MAX_AGE or unusable, as Django does around each request. Only needed when
    CELERY_DB_REUSE_MAX is set (settings): otherwise Celery closes it after every task. Not for
    a task run eagerly, inside its caller's transaction (as Celery's own close is not)."""
    from django.db import close_old_connections

    if not getattr(getattr(sender, "request", None), "is_eager", False):
        close_old_connections()
