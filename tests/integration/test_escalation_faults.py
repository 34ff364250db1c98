"""Escalation survives anything short of losing the database.

Each test breaks one thing — a worker SIGKILLed inside the provider call, Redis flushed while
an alert waits, the same step task queued three times, Redis stopped while a report is made —
and ends with every due page sent exactly once, counted at the Twilio sandbox, and the case
timeline complete. Redis faults use a private redis-server (never the machine's shared one).
"""

import shutil
import socket
import subprocess
import time

import pytest
import redis
from django.conf import settings as django_settings

from config.celery import app as celery_app
from incidents.models import Case, ReportKind, TimelineKind
from incidents.services import submit_report
from notifications.models import AttemptStatus, NotificationAttempt
from oncall.models import Alert, EscalationPolicy, EscalationStep, StepKind
from oncall.tasks import escalate_alert

from .conftest import wait_for
from .test_urgent_path import report_urgent_disclosure, sign_in

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

FAST = {"ESCALATION_MINUTE_SECONDS": "2", "ESCALATION_REVIEW_MINUTES": "0"}


class PrivateRedis:
    """A redis-server of this test's own, on a free port, with nothing saved to disk."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)

        def up():
            try:
                return client.ping()
            except redis.RedisError:
                return False

        wait_for(up, timeout=10, what="the private redis-server")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def flushall(self) -> None:
        redis.Redis.from_url(self.url).flushall()


def use_broker(url: str) -> None:
    """Point this process's Celery app (the web process's publisher) at `url`."""
    celery_app.conf.update(broker_url=url, broker_write_url=url, broker_read_url=url)
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def private_redis(settings):
    shared = django_settings.CELERY_BROKER_URL
    server = PrivateRedis()
    server.start()
    settings.CELERY_BROKER_URL = server.url
    use_broker(server.url)
    yield server
    use_broker(shared)
    server.stop()


def three_step_policy(people) -> EscalationPolicy:
    policy = EscalationPolicy.objects.create(name="Urgent", category="")
    for position, step in enumerate(
        [
            {"kind": StepKind.NOTIFY_ON_CALL},
            {"kind": StepKind.WAIT, "minutes": 2},
            {"kind": StepKind.NOTIFY_PERSON, "person": people["manager2"]},
            {"kind": StepKind.WAIT, "minutes": 2},
            {"kind": StepKind.FALLBACK, "person": people["safeguarding"]},
        ],
        start=1,
    ):
        EscalationStep.objects.create(policy=policy, position=position, **step)
    return policy


def report(people) -> Case:
    return submit_report(
        reporter=people["worker"],
        kind=ReportKind.URGENT_DISCLOSURE,
        narrative="Confidential words.",
        grounds=["crime"],
    )


def count(sandbox, person) -> int:
    return len(sandbox.sandbox.list_messages(to=str(person.phone)))


def assert_whole_policy_paged_once(sandbox, people, case) -> None:
    """Every step's page reached the sandbox exactly once, and the timeline says so."""
    wait_for(lambda: count(sandbox, people["safeguarding"]), timeout=45, what="the fallback")
    time.sleep(3)  # a few sweeps more: anything left to resend would show now
    for who in ("manager", "manager2", "safeguarding"):
        assert count(sandbox, people[who]) == 1, who
    alert = Alert.objects.get(owner_id=case.id)
    assert alert.fallback_reached_at is not None and alert.next_step_at is None
    steps = case.timeline.filter(kind=TimelineKind.STEP_STARTED)
    assert [e.data["step"] for e in steps] == [1, 3, 5]
    assert case.timeline.filter(kind=TimelineKind.FALLBACK_REACHED).count() == 1
    assert alert.pages.count() == 3


def test_worker_sigkilled_inside_the_provider_call_then_another_starts(
    people, rota, twilio_settings, sandbox, start_worker
):
    """ "Exactly once" here: the killed worker's request for step 1 had already reached the
    sandbox (it sleeps before answering), so step 1 was sent once. Its outcome is unknown to
    us — the worker died before recording Twilio's answer — so that attempt is never resent
    (after SENDING_STUCK_AFTER the attempt sweeper marks it *unknown*); instead the escalation
    carries on and the next step pages the next person on time. The step task the dead worker
    held (an ETA task, unacknowledged) is run by the sweeper on the new worker, once."""
    three_step_policy(people)
    sandbox.sandbox.set_faults(delay=4.0)
    worker = start_worker(**FAST)
    case = report(people)

    wait_for(
        lambda: NotificationAttempt.objects.filter(status=AttemptStatus.SENDING).exists(),
        what="the worker to be inside the provider call",
    )
    time.sleep(1)  # its request is at the sandbox now, which holds the answer for 4 s
    worker.kill()
    sandbox.sandbox.set_faults(delay=0)
    start_worker(**FAST)

    assert_whole_policy_paged_once(sandbox, people, case)
    step_one = NotificationAttempt.objects.get(to=str(people["manager"].phone), channel="sms")
    assert step_one.status == AttemptStatus.SENDING  # unknown outcome, never blindly resent
    # Step 1's call (the other channel of an important page) was still pending when the worker
    # died and the new worker sent it; steps 3 and 5 were paged normally.
    sent = case.timeline.filter(kind=TimelineKind.PAGE_SENT)
    assert sorted(e.data["step"] for e in sent) == [0, 2, 4]  # zero-based: steps 1, 3, 5


def test_redis_flushed_while_an_alert_waits(
    people, rota, twilio_settings, sandbox, start_worker, private_redis
):
    three_step_policy(people)
    worker = start_worker(CELERY_BROKER_URL=private_redis.url, **FAST)
    case = report(people)
    wait_for(lambda: count(sandbox, people["manager"]), what="step 1's page")
    wait_for(
        lambda: case.timeline.filter(kind=TimelineKind.PAGE_SENT).exists(),
        what="step 1's page recorded, so the alert is only waiting",
    )

    # Step 3 waits as an ETA task, in Redis and in the worker's memory: lose both.
    worker.kill()
    private_redis.flushall()
    start_worker(CELERY_BROKER_URL=private_redis.url, **FAST)

    assert_whole_policy_paged_once(sandbox, people, case)
    wait_for(lambda: case.timeline.filter(kind=TimelineKind.PAGE_SENT).count() == 3)


def test_the_same_step_task_queued_three_times(
    people, rota, twilio_settings, sandbox, start_worker
):
    three_step_policy(people)
    case = report(people)  # step 1's task waits in Redis, no worker yet
    alert = Alert.objects.get(owner_id=case.id)
    token = str(alert.active_token)
    for _ in range(2):  # two more copies of the very same task: same id, same token
        escalate_alert.apply_async((alert.id, token), task_id=token)

    start_worker(**FAST)
    wait_for(lambda: count(sandbox, people["manager"]), what="step 1's page")
    alert.refresh_from_db()
    step_three = str(alert.active_token)
    for _ in range(3):  # and step 3's task three times more, before it is due
        escalate_alert.apply_async(
            (alert.id, step_three), task_id=step_three, eta=alert.next_step_at
        )

    assert_whole_policy_paged_once(sandbox, people, case)
    wait_for(lambda: case.timeline.filter(kind=TimelineKind.PAGE_SENT).count() == 3)


def test_redis_stopped_while_a_report_is_made_then_started(
    live_server, people, rota, twilio_settings, sandbox, start_worker, private_redis
):
    three_step_policy(people)
    start_worker(CELERY_BROKER_URL=private_redis.url, **FAST)
    session = sign_in(live_server.url, people["worker"].email)

    private_redis.stop()
    reference = report_urgent_disclosure(live_server.url, session)  # answered, not a 500
    case = Case.objects.get(reference=reference)
    assert Alert.objects.get(owner_id=case.id).current_step == 0  # saved, not yet paged
    time.sleep(1)
    assert count(sandbox, people["manager"]) == 0
    private_redis.start()

    assert_whole_policy_paged_once(sandbox, people, case)
    wait_for(lambda: case.timeline.filter(kind=TimelineKind.PAGE_SENT).count() == 3)
