"""The Celery application. Queues: `paging` for everything that puts a page on a phone, so
slow housekeeping never sits in front of an urgent page; `default` for the rest."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("concernline")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
