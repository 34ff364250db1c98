"""News of a page on the case timeline: recorded once, even when it arrives twice at once."""

import threading
import time

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from incidents import audit, services
from incidents.models import Case, ReportKind, TimelineEvent, TimelineKind
from oncall.models import Alert, Page
from oncall.services import run_alert_step
from oncall.signals import alert_event, page_status_changed


def waiting_for_a_lock(locktype: str | None = None) -> bool:
    """Whether a session of this database waits for a lock (of `locktype`: "advisory" for a
    timeline chain), so a test knows the other writer has reached it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid "
            "WHERE NOT l.granted AND a.datname = current_database() "
            "AND (%s::text IS NULL OR l.locktype = %s::text)",
            [locktype, locktype],
        )
        return cursor.fetchone()[0] > 0


def in_thread(work, errors: list, *, then=None) -> threading.Thread:
    """Start `work` on a thread of its own (its own database connection, as another process
    would have); an exception is kept in `errors` for the test to report, and `then` runs
    whatever happened."""

    def run():
        try:
            work()
        except Exception as exc:  # noqa: BLE001 (reported by the test)
            errors.append(exc)
        finally:
            if then is not None:
                then()
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def until(condition, what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


@pytest.mark.django_db(transaction=True)
def test_the_same_page_news_from_two_processes_at_once_is_recorded_once(people, rota):
    """A status callback (web) and the send task (worker) both report the page delivered. Both
    look for the event before either has committed it, so both go on to append it; the second
    waits for the case's chain lock, then finds the first one's row. It must give way quietly,
    not fail with the unique constraint on the event's dedupe key."""
    case = services.submit_report(
        reporter=people["worker"],
        kind=ReportKind.URGENT_DISCLOSURE,
        narrative="Confidential words.",
        grounds=["crime"],
    )
    page = Page.objects.get(alert__owner_id=case.id)
    news = {
        "sender": Alert,
        "alert_id": page.alert_id,
        "owner_type": Case.ALERT_OWNER_TYPE,
        "owner_id": case.id,
        "page_id": page.id,
        "recipient_id": page.recipient_id,
        "step": page.step,
        "reason": page.reason,
        "channel": "call",
        "status": "delivered",
        "provider_sid": "SM" + "1" * 32,
        "error_code": "",
        "at": timezone.now(),
    }
    recorded, release = threading.Event(), threading.Event()
    errors = []

    def callback_request():
        with transaction.atomic():
            page_status_changed.send(**news)
            recorded.set()
            release.wait(timeout=20)  # holds the chain lock, its row not yet committed

    first = in_thread(callback_request, errors, then=recorded.set)
    assert recorded.wait(timeout=20)
    second = in_thread(lambda: page_status_changed.send(**news), errors)  # the send task
    until(lambda: waiting_for_a_lock("advisory"), "the second writer never reached the chain lock")
    release.set()
    first.join(timeout=20)
    second.join(timeout=20)

    assert errors == []
    key = f"page:{page.id}:{TimelineKind.PAGE_DELIVERED}"
    assert TimelineEvent.objects.filter(dedupe_key=key).count() == 1
    assert TimelineEvent.objects.get(dedupe_key=key).data["channel"] == "call"
    assert audit.verify_chains()[1] == []  # the chain did not fork or break


@pytest.fixture
def reported(people, rota, django_capture_on_commit_callbacks):
    """An urgent case whose alert's first step has not run yet."""
    with django_capture_on_commit_callbacks(execute=False):
        case = services.submit_report(
            reporter=people["worker"],
            kind=ReportKind.URGENT_DISCLOSURE,
            narrative="Confidential words.",
            grounds=["crime"],
        )
    return case, Alert.objects.get(owner_id=case.id)


def step_started(case) -> int:
    return TimelineEvent.objects.filter(case=case, kind=TimelineKind.STEP_STARTED).count()


def test_a_step_and_its_timeline_entry_commit_together(
    reported, outbox, django_capture_on_commit_callbacks
):
    """The entry is written in the step's own transaction, not after it: a worker that dies
    right after the commit cannot leave a step off the record."""
    case, alert = reported
    with django_capture_on_commit_callbacks(execute=False) as after_commit:
        assert run_alert_step(alert_id=alert.id, token=str(alert.active_token))
        assert step_started(case) == 1
    assert after_commit and outbox == []  # the pages are what waits for the commit


def test_a_failing_record_never_stops_the_pages(
    reported, outbox, django_capture_on_commit_callbacks, caplog
):
    """A receiver that fails, even with a database error, is undone in its savepoint and
    logged; the step commits and its pages go."""
    case, alert = reported

    def broken(sender, **kwargs):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table")

    alert_event.connect(broken, weak=False, dispatch_uid="test_broken_record")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            assert run_alert_step(alert_id=alert.id, token=str(alert.active_token))
    finally:
        alert_event.disconnect(dispatch_uid="test_broken_record")

    assert [m["to"] for m in outbox] == ["+447700900101"]
    assert step_started(case) == 1  # the other receiver's entry stands
    assert f"alert {alert.id}: step_started news not recorded" in caplog.text
    token = alert.active_token
    alert.refresh_from_db()
    assert alert.active_token != token and alert.pages.count() == 1  # the step committed


@pytest.mark.django_db(transaction=True)
def test_taking_a_case_into_review_while_its_step_runs_does_not_deadlock(people, rota, monkeypatch):
    """A step holds its alert's lock and then takes the case's timeline chain (its news is
    written in its transaction); taking the case into review must lock in the same order
    (the alert before the chain), or each would wait for the other."""
    from oncall import services as oncall_services

    case = services.submit_report(
        reporter=people["worker"],
        kind=ReportKind.URGENT_DISCLOSURE,
        narrative="Confidential words.",
        grounds=["crime"],
    )  # its first step ran on commit: the manager on call was paged
    alert = Alert.objects.get(owner_id=case.id)
    Alert.objects.filter(pk=alert.pk).update(next_step_at=timezone.now())
    alert.refresh_from_db()
    resolve, in_step, go_on = oncall_services._resolve, threading.Event(), threading.Event()

    def slow_resolve(*args, **kwargs):
        in_step.set()
        go_on.wait(timeout=20)  # the alert is locked; the chain is not taken yet
        return resolve(*args, **kwargs)

    monkeypatch.setattr(oncall_services, "_resolve", slow_resolve)
    errors = []
    step = in_thread(
        lambda: run_alert_step(alert_id=alert.id, token=str(alert.active_token)), errors
    )
    assert in_step.wait(timeout=20)
    review = in_thread(lambda: services.start_review(case=case, actor=people["manager"]), errors)
    until(waiting_for_a_lock, "taking the case into review never waited")
    go_on.set()
    step.join(timeout=30)
    review.join(timeout=30)

    assert errors == []
    case.refresh_from_db()
    assert case.status == "under_review"
    assert audit.verify_chains()[1] == []
