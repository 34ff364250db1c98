"""An acknowledgement is two commits: the alert's, then the case's (owner, status, clock,
timeline), which follows on commit. A process killed between them leaves the alert
acknowledged and the case still "reported"; the clock sweep catches the case up, as of the
moment the alert was acknowledged, so no false breach is raised and nothing is told twice."""

import subprocess
import sys
from datetime import timedelta

import pytest

from incidents import services
from incidents.models import CaseClock, CaseStatus, ClockKind, ReportKind, TimelineKind
from notifications.models import PageRequest
from oncall.models import Alert, AlertState
from tests.conftest import database_url_for_subprocess, subprocess_environment

pytestmark = pytest.mark.django_db(transaction=True)

# Acknowledges in a process of its own that dies the moment the alert's transaction has
# committed, before the case's side (the alert_acknowledged receivers) can run.
DIES_AFTER_THE_ALERT_COMMITS = """
import os, sys, django
django.setup()
from config.celery import app
from oncall import services
from oncall.models import Alert
from staff.models import User

app.conf.task_always_eager = True  # the re-armed step runs here, finding nothing due


class Killed:
    def send(self, **kwargs):
        os._exit(137)


services.alert_acknowledged = Killed()
alert = Alert.objects.get(pk=int(sys.argv[1]))
services.acknowledge_alert(alert=alert, actor=User.objects.get(pk=int(sys.argv[2])), via="sms")
sys.exit(0)
"""


def acknowledge_and_die(alert, person):
    done = subprocess.run(
        [sys.executable, "-c", DIES_AFTER_THE_ALERT_COMMITS, str(alert.pk), str(person.pk)],
        env=subprocess_environment(
            DJANGO_SETTINGS_MODULE="config.settings",
            DEBUG="1",
            DATABASE_URL=database_url_for_subprocess(),
            SMS_BACKEND="console",
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 137, done.stderr


def urgent_case(reporter):
    """An urgent disclosure, paged on commit; the case and its alert."""
    case = services.submit_report(
        reporter=reporter,
        kind=ReportKind.URGENT_DISCLOSURE,
        narrative="Told me tonight about harm at home.",
        grounds=["crime"],
        service_user_ref="SU-1",
    )
    return case, Alert.objects.get(owner_type="incidents.case", owner_id=case.pk)


@pytest.fixture
def crashed(people, rota, outbox):
    """An urgent case whose page `manager` acknowledged in a process killed straight after."""
    case, alert = urgent_case(people["worker"])
    assert alert.pages.filter(recipient=people["manager"]).exists()
    acknowledge_and_die(alert, people["manager"])
    alert.refresh_from_db()
    case.refresh_from_db()
    assert alert.state == AlertState.ACKNOWLEDGED
    assert case.status == CaseStatus.REPORTED and case.owner_id is None
    return case, alert


def acknowledgements(case):
    return list(case.timeline.filter(kind=TimelineKind.ACKNOWLEDGED))


def test_the_clock_sweep_gives_the_case_its_acknowledgement(crashed, people):
    case, alert = crashed

    assert services.sweep_clocks()["acknowledgements_caught_up"] == 1

    case.refresh_from_db()
    assert case.status == CaseStatus.ACKNOWLEDGED
    assert case.owner == people["manager"]
    assert case.acknowledged_at == alert.acknowledged_at
    [event] = acknowledgements(case)
    assert event.actor == people["manager"] and event.at == alert.acknowledged_at
    assert event.data == {"via": "sms"}
    clock = CaseClock.objects.get(case=case, kind=ClockKind.ACKNOWLEDGEMENT)
    assert clock.met_at == alert.acknowledged_at


def test_the_pages_closed_with_the_alert_so_no_retry_call_follows(crashed, people):
    """Closed in the acknowledgement's own transaction, not by news after it: the process's
    death leaves no page open for the retry call or the email."""
    case, alert = crashed
    requests = PageRequest.objects.filter(topic__in=[p.topic for p in alert.pages.all()])
    assert requests and all(request.closed_at is not None for request in requests)
    assert requests.get(recipient=people["manager"]).acknowledged_via == "sms"


def test_caught_up_before_the_clock_is_judged(crashed):
    case, alert = crashed
    clock = CaseClock.objects.get(case=case, kind=ClockKind.ACKNOWLEDGEMENT)

    done = services.sweep_clocks(now=clock.due_at + timedelta(hours=1))

    assert done["breached"] == 0
    clock.refresh_from_db()
    assert clock.breached_at is None and clock.met_at == alert.acknowledged_at
    assert not case.timeline.filter(kind=TimelineKind.CLOCK_BREACHED).exists()


def test_a_second_sweep_or_the_late_signal_changes_nothing(crashed, people):
    case, alert = crashed
    services.sweep_clocks()

    assert services.sweep_clocks()["acknowledgements_caught_up"] == 0
    services.record_acknowledgement(
        case_id=case.pk,
        user_id=people["manager"].pk,
        at=alert.acknowledged_at,
        via="sms",
    )
    assert len(acknowledgements(case)) == 1


def test_cases_told_in_time_are_not_touched(people, rota, outbox, django_assert_num_queries):
    case, _alert = urgent_case(people["worker"])
    services.acknowledge_case(case=case, actor=people["manager"])
    case.refresh_from_db()
    assert case.status == CaseStatus.ACKNOWLEDGED

    with django_assert_num_queries(1):
        assert services.catch_up_acknowledgements() == 0
    assert len(acknowledgements(case)) == 1
