"""The escalation engine: raising an alert, running its steps once each, sweeping lost steps."""

import uuid
from datetime import date, datetime, timedelta

import pytest
from celery.signals import task_prerun
from django.conf import settings
from django.core import mail
from django.utils import timezone

from notifications.messages import PageMessage, sms_text
from notifications.models import (
    AttemptStatus,
    ContactPreferences,
    NotificationAttempt,
    PageRequest,
)
from notifications.providers import outbox as sms_outbox
from notifications.providers.outbox import OutboxProvider
from notifications.services import queue_sms, record_sms_status, send_notification_attempt
from notifications.tasks import advance_page
from oncall.models import Alert, AlertState, Heartbeat, LayerMember, Page, Rota, RotaLayer
from oncall.policies import MAX_STEPS
from oncall.services import (
    acknowledge_alert,
    raise_alert,
    run_alert_step,
    sweep_alerts,
)
from oncall.signals import page_status_changed
from oncall.tasks import escalate_alert
from staff.models import Role
from tests.conftest import make_person, refused

OWNER_TYPE = "tests.thing"  # not a case, so incidents' receivers stay out of the way
REF = "C-2026-0042"
MANAGER_PHONE = "+447700900101"


def new_alert(rota, *, reference=REF, title="urgent disclosure", owner_id=7) -> Alert:
    return raise_alert(
        title=title,
        reference=reference,
        link=f"/cases/{reference}/",
        owner_type=OWNER_TYPE,
        owner_id=owner_id,
        rota=rota,
    )


def raised_and_paged(rota, capture, **fields) -> Alert:
    """An alert whose step 0 has run, as after its transaction committed."""
    with capture(execute=True):
        alert = new_alert(rota, **fields)
    alert.refresh_from_db()
    return alert


def past_due(alert: Alert) -> datetime:
    """The first instant the sweeper treats the alert's next step as overdue."""
    return alert.next_step_at + timedelta(
        seconds=settings.ALERT_SWEEP_GRACE_SECONDS, microseconds=1
    )


def make_due_now(alert: Alert) -> None:
    Alert.objects.filter(pk=alert.pk).update(next_step_at=timezone.now() - timedelta(minutes=1))
    alert.refresh_from_db()


class TestRaiseAlert:
    def test_creates_a_triggered_alert_due_now_and_waits_for_commit(
        self, rota, outbox, django_capture_on_commit_callbacks
    ):
        before = timezone.now()
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            alert = new_alert(rota)
        after = timezone.now()

        alert.refresh_from_db()
        assert alert.state == AlertState.TRIGGERED
        assert alert.current_step == 0 and alert.rota == rota
        assert before <= alert.next_step_at <= after
        assert len(callbacks) == 1  # step 0, enqueued on commit only
        assert outbox == [] and not alert.pages.exists()

    def test_step_zero_pages_whoever_is_on_call_once_committed(
        self, people, rota, outbox, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            alert = new_alert(rota)
            first_token = alert.active_token
        after = timezone.now()

        alert.refresh_from_db()
        assert [m["to"] for m in outbox] == [MANAGER_PHONE]
        page = Page.objects.get(alert=alert)
        assert (page.step, page.recipient, page.reason) == (0, people["manager"], "on_call")
        attempt = NotificationAttempt.objects.get(topic=page.topic, channel="sms")
        assert attempt.to == MANAGER_PHONE and page.topic == f"oncall.page:{page.id}"
        assert (alert.current_step, alert.step_tries) == (0, 1)  # built-in: until acknowledged
        assert alert.snapshot["policy"]["name"] == "built-in"
        assert alert.snapshot["on_call"][""]["people"] == [
            {"id": people["manager"].id, "name": people["manager"].full_name}
        ]
        assert alert.active_token != first_token
        repage = timedelta(seconds=settings.ALERT_REPAGE_SECONDS)
        assert after + repage - timedelta(seconds=5) <= alert.next_step_at <= after + repage


class TestRunAlertStep:
    def test_a_stale_token_does_nothing(self, rota, outbox, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            alert = new_alert(rota)
            stale = str(alert.active_token)
        alert.refresh_from_db()
        make_due_now(alert)

        with django_capture_on_commit_callbacks(execute=True):
            assert run_alert_step(alert_id=alert.id, token=stale) is False
            assert run_alert_step(alert_id=alert.id, token=str(uuid.uuid4())) is False
        assert len(outbox) == 1 and alert.pages.count() == 1
        alert.refresh_from_db()
        assert alert.step_tries == 1

        # The live token, on the same overdue alert, does run: it was the token that stopped it.
        with django_capture_on_commit_callbacks(execute=True):
            assert run_alert_step(alert_id=alert.id, token=str(alert.active_token)) is True
        assert len(outbox) == 2

    def test_the_current_token_before_the_step_is_due_does_nothing(
        self, rota, outbox, django_capture_on_commit_callbacks
    ):
        alert = raised_and_paged(rota, django_capture_on_commit_callbacks)
        token, due = alert.active_token, alert.next_step_at
        assert due > timezone.now() + timedelta(seconds=60)

        with django_capture_on_commit_callbacks(execute=True):
            assert run_alert_step(alert_id=alert.id, token=str(token)) is False
        alert.refresh_from_db()
        assert (alert.step_tries, alert.active_token, alert.next_step_at) == (1, token, due)
        assert len(outbox) == 1

    def test_a_missing_alert_does_nothing(self, db):
        assert run_alert_step(alert_id=987654, token=str(uuid.uuid4())) is False

    def test_the_same_step_task_three_times_pages_once(
        self, people, rota, outbox, django_capture_on_commit_callbacks
    ):
        alert = new_alert(rota)  # its own enqueue is never committed: we deliver it by hand
        token = str(alert.active_token)

        with django_capture_on_commit_callbacks(execute=True):
            results = [escalate_alert.apply(args=(alert.id, token)).get() for _ in range(3)]

        assert results == [True, False, False]
        assert [m["to"] for m in outbox] == [MANAGER_PHONE]
        assert list(alert.pages.values_list("step", "recipient")) == [(0, people["manager"].id)]
        alert.refresh_from_db()
        assert alert.step_tries == 1


class TestStepCost:
    """A step's queries are pinned: the escalation engine runs at 20 alerts a second on two
    cores (bench/escalation.py), and every query is paid three times an alert. A change to
    these numbers says why in its commit."""

    @pytest.fixture
    def tasks_run(self):
        names = []

        def record(sender=None, **kwargs):
            names.append(sender.name)

        task_prerun.connect(record, weak=False, dispatch_uid="test_step_cost_tasks")
        yield names
        task_prerun.disconnect(dispatch_uid="test_step_cost_tasks")

    def test_a_step_sends_its_pages_itself_and_queues_no_send_task(
        self, people, rota, outbox, tasks_run, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=False):
            alert = new_alert(rota)  # step 0's task is not run

        with django_capture_on_commit_callbacks(execute=True):
            assert run_alert_step(alert_id=alert.id, token=str(alert.active_token))

        # The default rule of an important page: an SMS and a call at once, both sent.
        assert [m["to"] for m in outbox] == [MANAGER_PHONE]
        assert [c["to"] for c in sms_outbox.calls] == [MANAGER_PHONE]
        statuses = NotificationAttempt.objects.values_list("channel", "status", "tries")
        assert sorted(statuses) == [("call", "queued", 1), ("sms", "queued", 1)]
        assert "notifications.send_notification_attempt" not in tasks_run

    def test_the_pages_leave_before_anything_after_the_commit_is_queued(
        self, rota, outbox, monkeypatch, django_capture_on_commit_callbacks
    ):
        """The pages are the point of a step: queueing the next step and the page's retry
        timer (each made good by a sweeper if the worker dies sending) waits for them."""
        order = []
        send = OutboxProvider.send_sms

        def noted_send(provider, **kwargs):
            order.append("sms")
            return send(provider, **kwargs)

        monkeypatch.setattr(OutboxProvider, "send_sms", noted_send)
        with django_capture_on_commit_callbacks(execute=False):
            alert = new_alert(rota)
        monkeypatch.setattr(escalate_alert, "apply_async", lambda *a, **k: order.append("step"))
        monkeypatch.setattr(advance_page, "apply_async", lambda *a, **k: order.append("timer"))

        with django_capture_on_commit_callbacks(execute=True):
            assert run_alert_step(alert_id=alert.id, token=str(alert.active_token))

        assert order[0] == "sms" and sorted(order[1:]) == ["step", "timer"]

    def test_the_step_itself_is_nine_queries(
        self, rota, outbox, django_capture_on_commit_callbacks, django_assert_num_queries
    ):
        """Lock the alert, who is on call, the page, their channel rule, the paging request,
        its attempts with their first status (one statement), and the alert's new state;
        with the savepoint around it."""
        with django_capture_on_commit_callbacks(execute=False):
            alert = new_alert(rota)

        with (
            django_capture_on_commit_callbacks(execute=False),
            django_assert_num_queries(9),
        ):
            assert run_alert_step(alert_id=alert.id, token=str(alert.active_token))
        assert NotificationAttempt.objects.filter(status=AttemptStatus.PENDING).count() == 2

    def test_sending_one_attempt_is_twelve_queries(
        self, rota, outbox, django_capture_on_commit_callbacks, django_assert_num_queries
    ):
        """Claim it (lock, mark sending, note the change), then record the provider's answer
        (lock, mark queued, note the change, the page's first-sent time, and any status
        callback that came before the answer), each in its own transaction."""
        with django_capture_on_commit_callbacks(execute=False):
            alert = new_alert(rota)
        with django_capture_on_commit_callbacks(execute=False):
            run_alert_step(alert_id=alert.id, token=str(alert.active_token))
        sms = NotificationAttempt.objects.get(channel="sms")

        with (
            django_capture_on_commit_callbacks(execute=False),
            django_assert_num_queries(12),
        ):
            send_notification_attempt(attempt_id=sms.id)
        sms.refresh_from_db()
        assert sms.status == AttemptStatus.QUEUED and len(outbox) == 1

    def test_a_repeated_send_of_a_sent_attempt_sends_nothing_in_three_queries(
        self, rota, outbox, django_capture_on_commit_callbacks, django_assert_num_queries
    ):
        with django_capture_on_commit_callbacks(execute=True):
            new_alert(rota)
        sms = NotificationAttempt.objects.get(channel="sms")

        with django_assert_num_queries(3):  # savepoint, the locked read, release
            send_notification_attempt(attempt_id=sms.id)
        assert len(outbox) == 1


class TestEscalateAlertTask:
    def test_returns_what_run_alert_step_returns(
        self, rota, outbox, django_capture_on_commit_callbacks
    ):
        alert = new_alert(rota)
        token = str(alert.active_token)
        with django_capture_on_commit_callbacks(execute=True):
            ran = escalate_alert.apply(args=(alert.id, token))
        assert ran.successful() and ran.get() is True
        assert len(outbox) == 1

        assert escalate_alert.apply(args=(alert.id, token)).get() is False
        alert.refresh_from_db()
        assert escalate_alert.apply(args=(alert.id, str(alert.active_token))).get() is False
        assert len(outbox) == 1


class TestPagingByEmailFirst:
    @pytest.mark.parametrize(
        ("rule", "sms_opted_out"), [("email", False), ("sms_then_email", True)]
    )
    def test_a_step_pages_someone_whose_first_channel_is_email_at_a_long_address(
        self,
        people,
        rota,
        outbox,
        settings,
        rule,
        sms_opted_out,
        django_capture_on_commit_callbacks,
    ):
        settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
        address = "firstname.lastname@example-care-trust.org.uk"  # longer than a phone number
        manager = people["manager"]
        manager.email = address
        manager.save(update_fields=["email"])
        ContactPreferences.objects.create(
            user=manager, important_rule=rule, sms_opted_out=sms_opted_out
        )

        alert = raised_and_paged(rota, django_capture_on_commit_callbacks)

        [page] = alert.pages.all()
        assert page.recipient == manager
        [attempt] = NotificationAttempt.objects.filter(topic=page.topic)
        assert (attempt.channel, attempt.to, attempt.status) == ("email", address, "sent")
        assert [email.to for email in mail.outbox] == [[address]]
        assert outbox == []
        assert alert.step_tries == 1 and alert.next_step_at is not None


class TestSweepAlerts:
    def test_runs_an_overdue_step_once_and_pages_again(
        self, people, rota, outbox, django_capture_on_commit_callbacks
    ):
        alert = raised_and_paged(rota, django_capture_on_commit_callbacks)
        old_token = alert.active_token
        now = past_due(alert)

        with django_capture_on_commit_callbacks(execute=True):
            assert sweep_alerts(now=now) == 1
        alert.refresh_from_db()
        # The snapshot, not the rota at `now` (a handover may fall between), says who is on
        # call for this alert.
        assert [m["to"] for m in outbox] == [MANAGER_PHONE, MANAGER_PHONE]
        page = alert.pages.last()
        assert (page.recipient, page.reason, page.step) == (people["manager"], "on_call", 0)
        assert alert.step_tries == 2 and alert.active_token != old_token
        assert alert.next_step_at > now

        # Swept again at the same moment: the step it ran moved the alert's due time on.
        with django_capture_on_commit_callbacks(execute=True):
            assert sweep_alerts(now=now) == 0
        assert len(outbox) == 2 and alert.pages.count() == 2

    def test_leaves_a_step_within_its_grace_period(
        self, rota, outbox, django_capture_on_commit_callbacks
    ):
        alert = raised_and_paged(rota, django_capture_on_commit_callbacks)
        grace = timedelta(seconds=settings.ALERT_SWEEP_GRACE_SECONDS)
        with django_capture_on_commit_callbacks(execute=True):
            assert sweep_alerts(now=alert.next_step_at) == 0
            assert sweep_alerts(now=alert.next_step_at + grace) == 0
        assert len(outbox) == 1

    def test_never_sweeps_an_acknowledged_alert(
        self, people, rota, outbox, settings, django_capture_on_commit_callbacks
    ):
        settings.ESCALATION_REVIEW_MINUTES = 0  # no review reminder either
        alert = raised_and_paged(rota, django_capture_on_commit_callbacks)
        with django_capture_on_commit_callbacks(execute=True):
            acknowledge_alert(alert=alert, actor=people["manager"], via="web")
            assert sweep_alerts(now=timezone.now() + timedelta(days=30)) == 0
            # Not even with a due time left on the row.
            Alert.objects.filter(pk=alert.pk).update(
                next_step_at=timezone.now() - timedelta(hours=1)
            )
            assert sweep_alerts(now=timezone.now() + timedelta(days=30)) == 0
        assert len(outbox) == 1
        alert.refresh_from_db()
        assert alert.state == AlertState.ACKNOWLEDGED and alert.step_tries == 1

    def test_an_alert_whose_step_fails_holds_back_no_other(
        self, rota, outbox, caplog, django_capture_on_commit_callbacks
    ):
        capture = django_capture_on_commit_callbacks
        # Swept in owner order: the one that fails comes first.
        failing = raised_and_paged(rota, capture, reference="C-2026-0001", owner_id=1)
        other = raised_and_paged(rota, capture, reference="C-2026-0002", owner_id=2)
        now = max(past_due(failing), past_due(other))

        with refused("oncall_page", f"NEW.alert_id = {failing.id}"), capture(execute=True):
            assert sweep_alerts(now=now) == 1

        assert f"alert {failing.id}: step 0 failed" in caplog.text
        assert Heartbeat.objects.get(name="sweeper").at == now
        other.refresh_from_db()
        assert other.pages.count() == 2 and other.step_tries == 2
        # The failed step left nothing behind: no page, no message, the same token and due time.
        stuck = Alert.objects.get(pk=failing.pk)
        assert stuck.pages.count() == 1 and len(outbox) == 3
        assert (stuck.active_token, stuck.next_step_at) == (
            failing.active_token,
            failing.next_step_at,
        )

        # The next sweep runs it.
        with capture(execute=True):
            assert sweep_alerts(now=now) == 1
        assert stuck.pages.count() == 2 and len(outbox) == 4

    def test_the_sweep_task_runs_the_sweep(self, rota, outbox, django_capture_on_commit_callbacks):
        from oncall.tasks import sweep_alerts as sweep_task

        alert = raised_and_paged(rota, django_capture_on_commit_callbacks)
        assert sweep_task.apply().get() == 0
        Alert.objects.filter(pk=alert.pk).update(next_step_at=timezone.now() - timedelta(hours=1))
        with django_capture_on_commit_callbacks(execute=True):
            assert sweep_task.apply().get() == 1
        assert len(outbox) == 2

    def test_pages_max_steps_times_then_the_fallback_then_stops(
        self, people, rota, outbox, django_capture_on_commit_callbacks
    ):
        alert = raised_and_paged(rota, django_capture_on_commit_callbacks)
        for step in range(1, MAX_STEPS + 1):
            with django_capture_on_commit_callbacks(execute=True):
                assert sweep_alerts(now=past_due(alert)) == 1, f"step {step}"
            alert.refresh_from_db()

        assert alert.current_step == 2  # past the fallback: the policy has run to its end
        assert alert.next_step_at is None and alert.fallback_reached_at is not None
        assert alert.state == AlertState.TRIGGERED  # still waiting for a person
        on_call = [p for p in alert.pages.all() if p.reason == "on_call"]
        fallback = [p for p in alert.pages.all() if p.reason == "fallback"]
        assert len(on_call) == MAX_STEPS
        assert {p.recipient for p in fallback} == {people["manager"], people["manager2"]}
        assert len(outbox) == MAX_STEPS + 2
        with django_capture_on_commit_callbacks(execute=True):
            assert sweep_alerts(now=timezone.now() + timedelta(days=365)) == 0
            # Not even a task carrying the live token pages again.
            assert run_alert_step(alert_id=alert.id, token=str(alert.active_token)) is False
        assert len(outbox) == MAX_STEPS + 2


class TestNobodyOnCall:
    @pytest.fixture
    def managers(self, people):
        retired = make_person("retired@example.org", Role.MANAGER, "+447700900199")
        retired.is_active = False
        retired.save(update_fields=["is_active"])
        return {people["manager"], people["manager2"]}

    def assert_all_managers_paged(self, alert, managers, outbox):
        pages = list(alert.pages.all())
        assert {p.recipient for p in pages} == managers
        assert {p.reason for p in pages} == {"no_one_on_call"}
        assert {p.step for p in pages} == {0}
        assert sorted(m["to"] for m in outbox) == sorted(str(m.phone) for m in managers)

    def test_an_empty_rota_pages_every_active_manager(
        self, managers, outbox, django_capture_on_commit_callbacks
    ):
        empty = Rota.objects.create(name="Empty")
        alert = raised_and_paged(empty, django_capture_on_commit_callbacks)
        self.assert_all_managers_paged(alert, managers, outbox)

    def test_no_rota_pages_every_active_manager(
        self, managers, outbox, django_capture_on_commit_callbacks
    ):
        alert = raised_and_paged(None, django_capture_on_commit_callbacks)
        self.assert_all_managers_paged(alert, managers, outbox)

    def test_a_rota_not_started_yet_pages_every_active_manager(
        self, people, managers, outbox, django_capture_on_commit_callbacks
    ):
        future = Rota.objects.create(name="Later")
        layer = RotaLayer.objects.create(rota=future, name="Weekly", start_date=date(2099, 1, 5))
        LayerMember.objects.create(layer=layer, person=people["manager"], position=0)
        alert = raised_and_paged(future, django_capture_on_commit_callbacks)
        self.assert_all_managers_paged(alert, managers, outbox)


class TestPageText:
    def test_says_reference_urgency_title_and_how_to_acknowledge(
        self, rota, outbox, django_capture_on_commit_callbacks
    ):
        alert = raised_and_paged(rota, django_capture_on_commit_callbacks)
        body = outbox[0]["body"]
        message = PageMessage(reference=REF, urgency="urgent", title=alert.title)
        code = alert.pages.get().topic  # the reply code is the notifications page's id
        page = PageRequest.objects.get(topic=code)
        assert body == sms_text(message, language="en", code=page.code)
        assert REF in body and "URGENT" in body and "urgent disclosure" in body
        assert f"Reply {page.code}A to acknowledge, {page.code}E to escalate" in body
        assert len(body) <= 160 and body.isascii()

    def test_the_longest_title_still_fits_one_sms(self, db):
        message = PageMessage(reference="C-2026-9999", urgency="urgent", title="x" * 80)
        body = sms_text(message, language="en", code="123456")
        assert "x" * 60 in body and "C-2026-9999" in body and "123456E to escalate" in body
        assert len(body) <= 160 and body.isascii()


class TestRelayPageStatus:
    @pytest.fixture
    def relayed(self):
        received = []

        def listener(sender, **kwargs):
            received.append(kwargs)

        page_status_changed.connect(listener, weak=False, dispatch_uid="test_relay_listener")
        yield received
        page_status_changed.disconnect(dispatch_uid="test_relay_listener")

    def test_each_status_of_a_page_is_relayed_with_the_alert(
        self, people, rota, outbox, relayed, django_capture_on_commit_callbacks
    ):
        alert = raised_and_paged(rota, django_capture_on_commit_callbacks)
        # The default rule for an urgent page: an SMS and a call at once. What the provider
        # said is news; "sending", our own bookkeeping before it answered, is not relayed.
        assert [r["status"] for r in relayed] == [AttemptStatus.QUEUED] * 2
        assert [r["channel"] for r in relayed] == ["sms", "call"]
        for news in relayed:
            assert news["alert_id"] == alert.id
            assert (news["owner_type"], news["owner_id"]) == (OWNER_TYPE, 7)
            assert (news["recipient_id"], news["step"]) == (people["manager"].id, 0)
            assert news["reason"] == "on_call"

        with django_capture_on_commit_callbacks(execute=True):
            assert record_sms_status(provider_sid=outbox[0]["sid"], status="delivered")
        assert relayed[-1]["status"] == AttemptStatus.DELIVERED
        assert relayed[-1]["provider_sid"] == outbox[0]["sid"]
        assert relayed[-1]["alert_id"] == alert.id and len(relayed) == 3

    def test_attempts_about_other_things_are_not_relayed(
        self, people, outbox, relayed, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            attempt = queue_sms(recipient=people["manager"], body="hello", topic="other:1")
            stray = queue_sms(recipient=people["manager"], body="hi", topic="oncall.page:999999")
        assert NotificationAttempt.objects.get(pk=attempt.pk).status == AttemptStatus.QUEUED
        assert NotificationAttempt.objects.get(pk=stray.pk).status == AttemptStatus.QUEUED
        assert relayed == []
