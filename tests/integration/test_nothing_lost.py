"""A page survives a dead worker and a lost task: the alert's state in PostgreSQL is the truth,
the sweeper (run by beat) re-drives what no task will, and the token check keeps it to one."""

import time

import pytest

from incidents.models import Case, ReportKind
from incidents.services import submit_report
from oncall.models import Alert

from .conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def report(people):
    return submit_report(
        reporter=people["worker"],
        kind=ReportKind.URGENT_DISCLOSURE,
        narrative="Confidential words.",
        grounds=["crime"],
    )


def test_report_saved_while_no_worker_runs_is_paged_once_a_worker_starts(
    people, rota, twilio_settings, sandbox, start_worker
):
    case = report(people)  # committed: its step-0 task waits in Redis with no worker
    time.sleep(0.5)
    assert sandbox.sandbox.list_messages() == []

    start_worker()

    phone = str(people["manager"].phone)
    wait_for(lambda: sandbox.sandbox.list_messages(to=phone), what="the page")
    time.sleep(3)  # long enough for a sweep to run, had anything been left to sweep
    assert len(sandbox.sandbox.list_messages(to=phone)) == 1
    assert Alert.objects.get(owner_id=case.id).step_tries == 1  # built-in policy, first page


def test_killed_worker_and_flushed_broker_still_page_exactly_once(
    people, rota, twilio_settings, sandbox, start_worker, broker
):
    worker = start_worker()
    worker.kill()  # SIGKILL, as in a crash
    case = report(people)
    broker.flushdb()  # the step-0 task is gone for good

    start_worker()

    phone = str(people["manager"].phone)
    wait_for(
        lambda: sandbox.sandbox.list_messages(to=phone), timeout=30, what="the sweeper to page"
    )
    time.sleep(3)
    assert len(sandbox.sandbox.list_messages(to=phone)) == 1
    alert = Alert.objects.get(owner_id=case.id)
    assert alert.step_tries == 1 and alert.pages.count() == 1
    assert Case.objects.get(pk=case.pk).timeline.filter(kind="page_sent").count() == 1
