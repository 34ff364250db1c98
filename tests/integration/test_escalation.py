"""Escalation by policy with a real worker, real Redis, real PostgreSQL and the Twilio sandbox.

Policy minutes last ESCALATION_MINUTE_SECONDS in the worker (a second or two), so a whole
policy runs in seconds; nothing sleeps for minutes. Pages are counted at the sandbox.
"""

import contextlib
import os
import time

import pytest
from django.db import connection

from incidents.models import Case, CaseStatus, ReportKind, TimelineKind
from incidents.services import submit_report
from oncall.models import Alert, AlertState, EscalationPolicy, EscalationStep, StepKind

from .conftest import WORKER_THREADS, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def make_policy(steps) -> EscalationPolicy:
    policy = EscalationPolicy.objects.create(name="Urgent disclosures", category="")
    for position, step in enumerate(steps, start=1):
        EscalationStep.objects.create(policy=policy, position=position, **step)
    return policy


def three_step_policy(people) -> EscalationPolicy:
    """1: whoever is on call; 3: the second manager; 5: the safeguarding lead."""
    return make_policy(
        [
            {"kind": StepKind.NOTIFY_ON_CALL},
            {"kind": StepKind.WAIT, "minutes": 1},
            {"kind": StepKind.NOTIFY_PERSON, "person": people["manager2"]},
            {"kind": StepKind.WAIT, "minutes": 1},
            {"kind": StepKind.FALLBACK, "person": people["safeguarding"]},
        ]
    )


def report(people) -> Case:
    return submit_report(
        reporter=people["worker"],
        kind=ReportKind.URGENT_DISCLOSURE,
        narrative="Confidential words.",
        grounds=["abuse_or_harm"],
    )


def count(sandbox, person) -> int:
    return len(sandbox.sandbox.list_messages(to=str(person.phone)))


def kinds(case) -> list[str]:
    return list(case.timeline.values_list("kind", flat=True))


def test_three_steps_page_one_then_two_and_stop_when_two_acknowledges_by_sms(
    people, rota, twilio_settings, sandbox, start_worker
):
    three_step_policy(people)
    start_worker(ESCALATION_MINUTE_SECONDS="3", ESCALATION_REVIEW_MINUTES="0")
    case = report(people)

    wait_for(lambda: count(sandbox, people["manager"]), what="step 1's page")
    assert count(sandbox, people["manager2"]) == 0
    wait_for(lambda: count(sandbox, people["manager2"]), timeout=15, what="step 3's page")

    exchange = sandbox.sandbox.send_inbound(
        from_=str(people["manager2"].phone), body=f"ACK {case.reference}"
    )
    assert exchange.app_status == 200 and "acknowledged" in exchange.app_body
    time.sleep(5)  # past the next wait: had the token not been voided, the fallback would go

    assert count(sandbox, people["manager"]) == 1
    assert count(sandbox, people["manager2"]) == 1
    assert count(sandbox, people["safeguarding"]) == 0
    case.refresh_from_db()
    assert case.status == CaseStatus.ACKNOWLEDGED and case.owner == people["manager2"]
    alert = Alert.objects.get(owner_id=case.id)
    assert alert.state == AlertState.ACKNOWLEDGED and alert.acknowledged_via == "sms"
    assert alert.snapshot["on_call"][""]["people"][0]["id"] == people["manager"].id
    steps = case.timeline.filter(kind=TimelineKind.STEP_STARTED)
    assert [e.data["step"] for e in steps] == [1, 3]
    assert [e.data["recipient_ids"] for e in steps] == [
        [people["manager"].id],
        [people["manager2"].id],
    ]
    wait_for(lambda: case.timeline.filter(kind=TimelineKind.PAGE_SENT).count() == 2)
    assert TimelineKind.FALLBACK_REACHED not in kinds(case)


def test_unacknowledged_urgent_report_loops_to_its_ceilings_then_reaches_the_fallback(
    people, rota, twilio_settings, sandbox, start_worker
):
    make_policy(
        [
            {"kind": StepKind.UNTIL_ACKNOWLEDGED, "minutes": 1, "times": 2},
            {"kind": StepKind.REPEAT, "repeat_from": 1, "times": 1},
            {"kind": StepKind.FALLBACK, "person": people["safeguarding"], "role": "dpo"},
        ]
    )
    start_worker(ESCALATION_MINUTE_SECONDS="1", ESCALATION_REVIEW_MINUTES="0")
    case = report(people)

    wait_for(lambda: count(sandbox, people["safeguarding"]), timeout=30, what="the final fallback")
    time.sleep(4)  # long enough for more pages, were the ceilings not kept

    # Until-acknowledged twice, repeated once: four pages to the on-call manager, then the
    # safeguarding lead and the DPO, once each.
    assert count(sandbox, people["manager"]) == 4
    assert count(sandbox, people["safeguarding"]) == 1
    assert count(sandbox, people["dpo"]) == 1
    assert count(sandbox, people["manager2"]) == 0
    alert = Alert.objects.get(owner_id=case.id)
    assert alert.state == AlertState.TRIGGERED and alert.next_step_at is None
    assert alert.loop == 1 and alert.fallback_reached_at is not None
    assert kinds(case).count(TimelineKind.FALLBACK_REACHED) == 1
    wait_for(lambda: case.timeline.filter(kind=TimelineKind.PAGE_SENT).count() == 6)


def database_backends_of(pid: int) -> set[int]:
    """The PostgreSQL backends serving process `pid`'s open connections, found through its
    sockets' local ports (/proc), as pg_stat_activity knows each client by its port."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    if not ports:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE client_port = ANY(%s)", [sorted(ports)]
        )
        return {backend for (backend,) in cursor.fetchall()}


def test_a_worker_keeps_its_database_connection_between_tasks_with_a_max_age(
    people, rota, twilio_settings, sandbox, start_worker
):
    """With DATABASE_CONN_MAX_AGE set, each of the pool's threads keeps its connection from
    step to step (Celery would otherwise close it after every task, and each step would wait
    for a new backend): the backends seen after a page are still there after more pages, and
    there are never more than the pool's threads."""
    worker = start_worker(DATABASE_CONN_MAX_AGE="60", ESCALATION_REVIEW_MINUTES="0")
    report(people)
    wait_for(lambda: count(sandbox, people["manager"]) == 1, what="the first page")
    time.sleep(1.5)  # past the task's end, and a sweep or two from beat
    first = database_backends_of(worker.process.pid)
    assert first  # kept open, though no task is running

    for pages in range(2, 6):
        report(people)
        wait_for(lambda n=pages: count(sandbox, people["manager"]) == n, what="the next page")
    time.sleep(1.5)
    later = database_backends_of(worker.process.pid)
    assert first <= later and len(later) <= WORKER_THREADS


def test_a_kept_connection_postgresql_has_ended_is_replaced_before_the_next_step(
    people, rota, twilio_settings, sandbox, start_worker
):
    """A restart or an idle timeout ends the worker's kept connection between tasks: the next
    step finds it gone and opens another, instead of failing (a step is not retried, and here
    no sweep comes to rescue it)."""
    worker = start_worker(
        DATABASE_CONN_MAX_AGE="60", ESCALATION_REVIEW_MINUTES="0", ALERT_SWEEP_SECONDS="3600"
    )
    report(people)
    wait_for(lambda: count(sandbox, people["manager"]) == 1, what="the first page")
    time.sleep(1.5)
    backends = database_backends_of(worker.process.pid)
    assert backends
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s) AS pid", [list(backends)])

    report(people)
    wait_for(lambda: count(sandbox, people["manager"]) == 2, what="the second page")
