"""Sweeps that overlap (a second beat started by mistake, a sweep still running when the next
one falls due) and a step task arriving during a sweep: each overdue step runs once, and
nobody waits for anybody."""

import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from oncall import services as oncall_services
from oncall.models import Alert, Page
from oncall.services import run_alert_step, sweep_alerts
from tests.incidents.test_page_events import in_thread, until, waiting_for_a_lock
from tests.oncall.test_escalation import new_alert

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def overdue(rota, outbox):
    """Three alerts paged once each (step 0 ran as they committed), all overdue now."""
    alerts = [new_alert(rota, reference=f"C-2026-{n:04d}", owner_id=n) for n in (1, 2, 3)]
    assert len(outbox) == 3
    Alert.objects.filter(pk__in=[a.pk for a in alerts]).update(
        next_step_at=timezone.now() - timedelta(hours=1)
    )
    return alerts


@pytest.fixture
def paused_sweep(monkeypatch):
    """A sweep on a thread of its own, held inside its first step (every overdue alert locked)
    until `go_on` is set."""
    run_due, in_step, go_on = oncall_services._run_due, threading.Event(), threading.Event()

    def slow_run_due(alert, **kwargs):
        in_step.set()
        assert go_on.wait(timeout=20)
        return run_due(alert, **kwargs)

    monkeypatch.setattr(oncall_services, "_run_due", slow_run_due)
    swept, errors = [], []
    thread = in_thread(lambda: swept.append(sweep_alerts()), errors)
    assert in_step.wait(timeout=20), "the first sweep never reached a step"
    yield swept, errors, go_on
    go_on.set()
    thread.join(timeout=30)


def pages_per_alert(alerts) -> list[int]:
    return [Page.objects.filter(alert=alert).count() for alert in alerts]


def test_a_second_sweep_skips_what_the_first_holds_without_waiting(overdue, paused_sweep, outbox):
    swept, errors, go_on = paused_sweep
    second = []
    thread = in_thread(lambda: second.append(sweep_alerts()), errors)
    thread.join(timeout=10)
    # Done while the first sweep still holds every overdue alert: it skipped them.
    assert not thread.is_alive(), "the second sweep waited for the first"
    assert second == [0]

    go_on.set()
    until(lambda: swept, "the first sweep never finished")
    assert errors == []
    assert swept == [3]
    assert pages_per_alert(overdue) == [2, 2, 2]
    assert len(outbox) == 6
    # Nothing is overdue any more: each step moved its alert's due time on.
    assert sweep_alerts() == 0
    assert len(outbox) == 6


def test_a_step_task_arriving_during_the_sweep_does_not_page_again(overdue, paused_sweep, outbox):
    swept, errors, go_on = paused_sweep
    first = overdue[0]
    ran = []
    task = in_thread(
        lambda: ran.append(run_alert_step(alert_id=first.id, token=str(first.active_token))),
        errors,
    )
    # The task waits for the alert's lock rather than skipping it...
    until(waiting_for_a_lock, "the step task never waited for the sweep")
    go_on.set()
    task.join(timeout=30)
    until(lambda: swept, "the first sweep never finished")

    # ...and then finds the token it carries already spent by the sweep's step.
    assert errors == []
    assert ran == [False]
    assert swept == [3]
    assert pages_per_alert(overdue) == [2, 2, 2]
    assert len(outbox) == 6
