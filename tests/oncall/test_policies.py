"""Escalation policies: choosing one, checking one, and the engine walking its steps.

Time is compressed by ESCALATION_MINUTE_SECONDS and moved with the sweeper's `now`, never slept.
"""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.models import NotificationAttempt, PageRequest
from notifications.services import call_key_pressed, handle_inbound_sms
from notifications.signals import page_exhausted
from oncall.models import (
    Alert,
    AlertState,
    EscalationPolicy,
    EscalationStep,
    Heartbeat,
    LayerMember,
    StepKind,
)
from oncall.policies import choose_policy, policy_problems
from oncall.selectors import unreachable_on_call
from oncall.services import (
    AlertError,
    acknowledge_alert,
    escalate_now,
    raise_alert,
    reassign_alert,
    resolve_alerts,
    sweep_alerts,
)
from oncall.signals import alert_event
from oncall.tasks import check_paging_readiness
from staff.models import Role
from tests.conftest import make_person

OWNER_TYPE = "tests.thing"
REF = "C-2026-0500"


@pytest.fixture(autouse=True)
def _fast_minutes(settings):
    settings.ESCALATION_MINUTE_SECONDS = 1  # a policy minute lasts a second
    settings.ALERT_SWEEP_GRACE_SECONDS = 0


@pytest.fixture
def events():
    received = []

    def listener(sender, **kwargs):
        received.append(kwargs)

    alert_event.connect(listener, weak=False, dispatch_uid="test_alert_event")
    yield received
    alert_event.disconnect(dispatch_uid="test_alert_event")


def policy(name, steps, *, category="", urgency="") -> EscalationPolicy:
    made = EscalationPolicy.objects.create(name=name, category=category, urgency=urgency)
    for position, step in enumerate(steps, start=1):
        EscalationStep.objects.create(policy=made, position=position, **step)
    return made


def both_managers(people) -> EscalationPolicy:
    """Every manager paged at once, then the safeguarding lead, then the DPO."""
    return policy(
        "Both managers",
        [
            {"kind": StepKind.NOTIFY_ROLE, "role": Role.MANAGER},
            {"kind": StepKind.WAIT, "minutes": 5},
            {"kind": StepKind.NOTIFY_PERSON, "person": people["safeguarding"]},
            {"kind": StepKind.WAIT, "minutes": 5},
            {"kind": StepKind.FALLBACK, "role": Role.DPO},
        ],
    )


def three_step(people, rota=None) -> EscalationPolicy:
    return policy(
        "Urgent",
        [
            {"kind": StepKind.NOTIFY_ON_CALL, "rota": rota},
            {"kind": StepKind.WAIT, "minutes": 5},
            {"kind": StepKind.NOTIFY_PERSON, "person": people["manager2"]},
            {"kind": StepKind.WAIT, "minutes": 5},
            {"kind": StepKind.FALLBACK, "person": people["safeguarding"], "role": Role.DPO},
        ],
    )


def raise_(capture, *, rota=None, category="urgent_disclosure", hints=None, ref=REF) -> Alert:
    with capture(execute=True):
        alert = raise_alert(
            title="urgent disclosure",
            reference=ref,
            link="/x/",
            owner_type=OWNER_TYPE,
            owner_id=1,
            rota=rota,
            category=category,
            hints=hints,
        )
    alert.refresh_from_db()
    return alert


def sweep_past(alert, capture) -> Alert:
    """Move the clock to just after the alert's next step and sweep."""
    with capture(execute=True):
        assert sweep_alerts(now=alert.next_step_at + timedelta(milliseconds=1)) == 1
    alert.refresh_from_db()
    return alert


def phones(outbox) -> list[str]:
    return [m["to"] for m in outbox]


class TestThreeStepPolicy:
    def test_pages_step_one_then_two_then_stops_when_two_acknowledges_by_sms(
        self, people, rota, outbox, events, django_capture_on_commit_callbacks
    ):
        three_step(people)
        capture = django_capture_on_commit_callbacks
        alert = raise_(capture, rota=rota)
        assert phones(outbox) == [str(people["manager"].phone)]
        assert alert.current_step == 2  # past the wait, due in 5 policy minutes
        assert timedelta(seconds=4) < alert.next_step_at - timezone.now() <= timedelta(seconds=5)

        alert = sweep_past(alert, capture)
        assert phones(outbox)[1:] == [str(people["manager2"].phone)]

        with capture(execute=True):
            answer = handle_inbound_sms(
                provider_sid=f"SM{uuid.uuid4().hex}",
                from_number=str(people["manager2"].phone),
                to_number="",
                body=f"ACK {REF}",
            )
        assert "you have acknowledged" in answer
        alert.refresh_from_db()
        assert alert.state == AlertState.ACKNOWLEDGED
        assert alert.acknowledged_by == people["manager2"]
        with capture(execute=True):
            sweep_alerts(now=timezone.now() + timedelta(seconds=10))
        assert len(outbox) == 2  # the fallback never went
        started = [(e["kind"], e["step"]) for e in events]
        assert started == [("step_started", 1), ("step_started", 3)]

    def test_nobody_acknowledging_reaches_the_fallback(
        self, people, rota, outbox, events, django_capture_on_commit_callbacks
    ):
        three_step(people)
        capture = django_capture_on_commit_callbacks
        alert = raise_(capture, rota=rota)
        alert = sweep_past(alert, capture)
        alert = sweep_past(alert, capture)

        fallback = {str(people["dpo"].phone), str(people["safeguarding"].phone)}
        assert len(outbox) == 4 and set(phones(outbox)[2:]) == fallback
        assert alert.fallback_reached_at is not None and alert.next_step_at is None
        assert alert.state == AlertState.TRIGGERED
        assert ("fallback_reached", 5) in [(e["kind"], e["step"]) for e in events]
        with capture(execute=True):
            assert sweep_alerts(now=timezone.now() + timedelta(days=1)) == 0
        assert len(outbox) == 4

    def test_editing_the_policy_or_rota_never_changes_a_running_alert(
        self, people, rota, outbox, django_capture_on_commit_callbacks
    ):
        made = three_step(people)
        capture = django_capture_on_commit_callbacks
        alert = raise_(capture, rota=rota)
        made.steps.filter(kind=StepKind.NOTIFY_PERSON).update(person=people["hr"])
        LayerMember.objects.filter(layer__rota=rota).delete()

        sweep_past(alert, capture)
        assert phones(outbox) == [str(people["manager"].phone), str(people["manager2"].phone)]
        assert alert.snapshot["on_call"][""]["people"][0]["id"] == people["manager"].id
        assert alert.snapshot["policy"]["name"] == "Urgent"


class TestLoops:
    def test_repeat_goes_back_at_most_k_times(
        self, people, rota, outbox, django_capture_on_commit_callbacks
    ):
        policy(
            "Repeat",
            [
                {"kind": StepKind.NOTIFY_ON_CALL},
                {"kind": StepKind.WAIT, "minutes": 5},
                {"kind": StepKind.REPEAT, "repeat_from": 1, "times": 2},
                {"kind": StepKind.FALLBACK, "role": Role.SAFEGUARDING_LEAD},
            ],
        )
        capture = django_capture_on_commit_callbacks
        alert = raise_(capture, rota=rota)
        for _ in range(3):
            alert = sweep_past(alert, capture)
        manager, lead = str(people["manager"].phone), str(people["safeguarding"].phone)
        assert phones(outbox) == [manager, manager, manager, lead]
        assert alert.loop == 2 and alert.next_step_at is None

    def test_until_acknowledged_pages_at_most_k_times_then_moves_on(
        self, people, rota, outbox, django_capture_on_commit_callbacks
    ):
        policy(
            "Call until",
            [
                {"kind": StepKind.UNTIL_ACKNOWLEDGED, "minutes": 5, "times": 3},
                {"kind": StepKind.FALLBACK, "person": people["safeguarding"]},
            ],
        )
        capture = django_capture_on_commit_callbacks
        alert = raise_(capture, rota=rota)
        assert (alert.current_step, alert.step_tries) == (0, 1)
        alert = sweep_past(alert, capture)
        alert = sweep_past(alert, capture)
        assert alert.current_step == 1  # three pages sent; waits one interval, then falls back
        alert = sweep_past(alert, capture)
        manager, lead = str(people["manager"].phone), str(people["safeguarding"].phone)
        assert phones(outbox) == [manager, manager, manager, lead]

    def test_acknowledging_stops_an_until_acknowledged_loop(
        self, people, rota, outbox, settings, django_capture_on_commit_callbacks
    ):
        settings.ESCALATION_REVIEW_MINUTES = 0
        policy(
            "Call until",
            [
                {"kind": StepKind.UNTIL_ACKNOWLEDGED, "minutes": 5, "times": 3},
                {"kind": StepKind.FALLBACK, "person": people["safeguarding"]},
            ],
        )
        capture = django_capture_on_commit_callbacks
        alert = raise_(capture, rota=rota)
        with capture(execute=True):
            acknowledge_alert(alert=alert, actor=people["manager"], via="web")
            assert sweep_alerts(now=timezone.now() + timedelta(days=1)) == 0
        assert len(outbox) == 1


class TestNobodyResolvable:
    def test_an_empty_rota_pages_the_fallback_and_warns(
        self, people, outbox, events, django_capture_on_commit_callbacks
    ):
        three_step(people)
        alert = raise_(django_capture_on_commit_callbacks, rota=None)
        assert set(phones(outbox)) == {str(people["dpo"].phone), str(people["safeguarding"].phone)}
        assert {p.reason for p in alert.pages.all()} == {"no_one_on_call"}
        warning = next(e for e in events if e["kind"] == "nobody_to_page")
        assert warning["step"] == 1 and warning["data"]["step_kind"] == "notify_on_call"

    def test_a_person_without_a_phone_is_a_warning_not_a_silent_skip(
        self, people, rota, outbox, events, django_capture_on_commit_callbacks
    ):
        silent = make_person("nophone@example.org", Role.MANAGER)
        policy(
            "Named",
            [
                {"kind": StepKind.NOTIFY_PERSON, "person": silent},
                {"kind": StepKind.FALLBACK, "person": people["safeguarding"]},
            ],
        )
        raise_(django_capture_on_commit_callbacks, rota=rota)
        assert phones(outbox) == [str(people["safeguarding"].phone)]
        warning = next(e for e in events if e["kind"] == "nobody_to_page")
        assert warning["data"]["unreachable"] == [silent.id]

    def test_the_line_manager_hint_and_a_role(
        self, people, rota, outbox, django_capture_on_commit_callbacks
    ):
        policy(
            "Line",
            [
                {"kind": StepKind.NOTIFY_LINE_MANAGER, "importance": "normal"},
                {"kind": StepKind.NOTIFY_ROLE, "role": Role.HR},
                {"kind": StepKind.FALLBACK, "person": people["safeguarding"]},
            ],
        )
        alert = raise_(
            django_capture_on_commit_callbacks,
            rota=rota,
            hints={"line_manager_id": people["manager2"].id},
        )
        assert phones(outbox) == [
            str(people["manager2"].phone),
            str(people["hr"].phone),
            str(people["safeguarding"].phone),
        ]
        assert [p.importance for p in alert.pages.all()] == ["normal", "important", "important"]


class TestChoosingAndChecking:
    def test_the_most_specific_active_policy_wins(self, people):
        steps = [{"kind": StepKind.FALLBACK, "person": people["safeguarding"]}]
        anything = policy("Any", steps)
        kind = policy("Kind", steps, category="urgent_disclosure")
        both = policy("Both", steps, category="urgent_disclosure", urgency="urgent")
        assert choose_policy(category="urgent_disclosure", urgency="urgent") == both
        assert choose_policy(category="urgent_disclosure", urgency="normal") == kind
        assert choose_policy(category="other", urgency="urgent") == anything
        EscalationPolicy.objects.all().update(is_active=False)
        assert choose_policy(category="other", urgency="urgent") is None

    def test_a_policy_must_end_in_a_fallback_that_reaches_someone(self, people):
        no_phone = make_person("ghost@example.org", Role.MANAGER)
        assert policy_problems([]) == ["The last step must be the final fallback."]
        assert policy_problems([{"kind": "notify_on_call"}]) == [
            "The last step must be the final fallback."
        ]
        assert (
            "reaches nobody" in policy_problems([{"kind": "fallback", "person_id": no_phone.id}])[0]
        )
        assert policy_problems([{"kind": "fallback", "role": Role.DPO}]) == []

    def test_a_loop_must_repeat_backwards_over_a_wait(self, people):
        fallback = {"kind": "fallback", "role": Role.DPO}
        no_wait = [{"kind": "notify_on_call"}, {"kind": "repeat", "repeat_from": 1, "times": 3}]
        assert "must include a wait" in policy_problems([*no_wait, fallback])[0]
        forwards = [{"kind": "repeat", "repeat_from": 2, "times": 3}, {"kind": "wait"}]
        assert "repeat from an earlier step" in policy_problems([*forwards, fallback])[0]

    def test_the_admin_refuses_a_policy_without_a_fallback(self, client, people):
        client.force_login(people["admin"])
        form = {
            "name": "Broken",
            "category": "",
            "urgency": "",
            "is_active": "on",
            "steps-TOTAL_FORMS": "1",
            "steps-INITIAL_FORMS": "0",
            "steps-MIN_NUM_FORMS": "1",
            "steps-MAX_NUM_FORMS": "1000",
            "steps-0-position": "1",
            "steps-0-kind": "notify_on_call",
            "steps-0-importance": "important",
        }
        response = client.post("/admin/oncall/escalationpolicy/add/", form)
        assert response.status_code == 200
        assert "The last step must be the final fallback." in response.content.decode()
        assert not EscalationPolicy.objects.exists()

        form.update({"steps-0-kind": "fallback", "steps-0-role": Role.DPO})
        response = client.post("/admin/oncall/escalationpolicy/add/", form)
        assert response.status_code == 302
        assert EscalationPolicy.objects.get().steps.get().kind == "fallback"


class TestSteering:
    def test_exhausted_page_moves_on_at_once(
        self, people, rota, outbox, django_capture_on_commit_callbacks
    ):
        three_step(people)
        capture = django_capture_on_commit_callbacks
        alert = raise_(capture, rota=rota)
        page = alert.pages.get()
        with capture(execute=True):
            page_exhausted.send(sender=None, topic=page.topic, recipient_id=page.recipient_id)
        alert.refresh_from_db()
        # The wait was skipped: the next step ran in the same breath.
        assert phones(outbox) == [str(people["manager"].phone), str(people["manager2"].phone)]
        assert alert.current_step == 4

    @pytest.mark.parametrize("order", [(1, 0), (0, 1)], ids=["later_first", "earlier_first"])
    def test_a_step_moves_on_once_every_page_it_sent_has_failed(
        self, people, rota, order, django_capture_on_commit_callbacks
    ):
        both_managers(people)
        capture = django_capture_on_commit_callbacks
        alert = raise_(capture, rota=rota)
        pages = list(alert.pages.order_by("pk"))
        assert [p.recipient for p in pages] == [people["manager"], people["manager2"]]
        first, second = (pages[i] for i in order)
        with capture(execute=True):
            page_exhausted.send(sender=None, topic=first.topic, recipient_id=first.recipient_id)
        alert.refresh_from_db()
        assert alert.current_step == 2 and alert.pages.count() == 2  # the other may answer
        with capture(execute=True):
            page_exhausted.send(sender=None, topic=second.topic, recipient_id=second.recipient_id)
        alert.refresh_from_db()
        assert alert.pages.latest("pk").recipient == people["safeguarding"]
        assert alert.current_step == 4 and alert.fallback_reached_at is None

    def test_a_page_of_a_step_already_left_failing_changes_nothing(
        self, people, rota, django_capture_on_commit_callbacks
    ):
        three_step(people)
        capture = django_capture_on_commit_callbacks
        alert = raise_(capture, rota=rota)
        first = alert.pages.get()
        with capture(execute=True):
            escalate_now(alert=alert, actor=people["manager"], via="web")
            page_exhausted.send(sender=None, topic=first.topic, recipient_id=first.recipient_id)
        alert.refresh_from_db()
        assert alert.current_step == 4 and alert.pages.count() == 2  # manager2 has their wait

    def test_a_manager_not_paged_may_escalate_now(
        self, people, rota, outbox, events, django_capture_on_commit_callbacks
    ):
        three_step(people)
        capture = django_capture_on_commit_callbacks
        alert = raise_(capture, rota=rota)
        other = make_person("third@example.org", Role.MANAGER, "+447700900109")
        with capture(execute=True):
            escalate_now(alert=alert, actor=other, via="web")
        assert phones(outbox)[1:] == [str(people["manager2"].phone)]
        now_event = next(e for e in events if e["kind"] == "escalated_now")
        assert now_event["actor_id"] == other.id

    def test_reassign_pages_the_new_person_who_must_acknowledge(
        self, people, rota, outbox, settings, django_capture_on_commit_callbacks
    ):
        settings.ESCALATION_REVIEW_MINUTES = 0
        three_step(people)
        capture = django_capture_on_commit_callbacks
        alert = raise_(capture, rota=rota)
        with capture(execute=True):
            acknowledge_alert(alert=alert, actor=people["manager"], via="web")
            reassign_alert(alert=alert, actor=people["manager"], to=people["manager2"])
        alert.refresh_from_db()
        assert alert.state == AlertState.TRIGGERED and alert.acknowledged_by is None
        assert phones(outbox)[1:] == [str(people["manager2"].phone)]
        with capture(execute=True):
            acknowledge_alert(alert=alert, actor=people["manager2"], via="web")
        alert.refresh_from_db()
        assert alert.acknowledged_by == people["manager2"]

    def test_outsiders_may_not_reassign(self, people, rota, django_capture_on_commit_callbacks):
        alert = raise_(django_capture_on_commit_callbacks, rota=rota)
        for outsider in (people["worker"], people["hr"], people["admin"]):
            with pytest.raises(AlertError):
                reassign_alert(alert=alert, actor=outsider, to=people["manager2"])

    def test_acknowledged_but_not_reviewed_reminds_then_reopens(
        self, people, rota, outbox, events, settings, django_capture_on_commit_callbacks
    ):
        settings.ESCALATION_REVIEW_MINUTES = 10
        three_step(people)
        capture = django_capture_on_commit_callbacks
        alert = raise_(capture, rota=rota)
        with capture(execute=True):
            acknowledge_alert(alert=alert, actor=people["manager"], via="sms")
        alert.refresh_from_db()
        alert = sweep_past(alert, capture)  # the reminder, to the acknowledger
        assert phones(outbox) == [str(people["manager"].phone)] * 2
        assert alert.state == AlertState.ACKNOWLEDGED and alert.reminded_at is not None
        alert = sweep_past(alert, capture)  # re-opened; escalation resumes at step 3
        assert alert.state == AlertState.TRIGGERED and alert.acknowledged_by is None
        assert phones(outbox)[2:] == [str(people["manager2"].phone)]
        kinds = [e["kind"] for e in events]
        assert kinds.index("reminder") < kinds.index("reopened")

    def test_resolving_stops_everything_including_reminders(
        self, people, rota, outbox, django_capture_on_commit_callbacks
    ):
        capture = django_capture_on_commit_callbacks
        alert = raise_(capture, rota=rota)
        with capture(execute=True):
            acknowledge_alert(alert=alert, actor=people["manager"], via="web")
            assert resolve_alerts(owner_type=OWNER_TYPE, owner_id=1, actor=people["manager"]) == 1
            assert sweep_alerts(now=timezone.now() + timedelta(days=30)) == 0
        alert.refresh_from_db()
        assert alert.state == AlertState.RESOLVED and len(outbox) == 1


class TestPassOnFromAPage:
    """A reply code or a key press passes on the step its page was sent by, once: the SMS and
    the call of one page, or two people paged together, never skip the next person."""

    def press(self, person, digits, capture) -> str:
        call = NotificationAttempt.objects.filter(recipient=person, channel="call").latest("id")
        with capture(execute=True):
            return call_key_pressed(attempt_id=call.id, call_sid=call.provider_sid, digits=digits)

    def text(self, person, body, capture) -> str:
        with capture(execute=True):
            return handle_inbound_sms(
                provider_sid=f"SM{uuid.uuid4().hex}",
                from_number=str(person.phone),
                to_number="",
                body=body,
            )

    def code(self, person) -> int:
        return PageRequest.objects.filter(recipient=person).latest("id").id

    def paged(self, alert) -> list[str]:
        return [page.recipient.email for page in alert.pages.order_by("pk")]

    def test_key_2_then_the_sms_code_passes_on_once(
        self, people, rota, django_capture_on_commit_callbacks
    ):
        three_step(people)
        capture = django_capture_on_commit_callbacks
        alert = raise_(capture, rota=rota)
        manager = people["manager"]
        said = self.press(manager, "2", capture)
        reply = self.text(manager, f"{self.code(manager)}E", capture)
        alert.refresh_from_db()
        assert "next person" in said
        assert reply == f"Concernline: {REF} has already been passed on."
        assert self.paged(alert) == ["manager@example.org", "manager2@example.org"]
        assert alert.fallback_reached_at is None and alert.current_step == 4

    def test_the_sms_code_then_key_2_passes_on_once(
        self, people, rota, django_capture_on_commit_callbacks
    ):
        three_step(people)
        capture = django_capture_on_commit_callbacks
        alert = raise_(capture, rota=rota)
        manager = people["manager"]
        reply = self.text(manager, f"{self.code(manager)}E", capture)
        said = self.press(manager, "2", capture)
        alert.refresh_from_db()
        assert reply == f"Concernline: {REF} is passed to the next person."
        assert said == f"Concernline: {REF} has already been passed on."
        assert self.paged(alert) == ["manager@example.org", "manager2@example.org"]
        assert alert.fallback_reached_at is None and alert.current_step == 4

    def test_escalate_by_sms_after_key_2_passes_on_once(
        self, people, rota, django_capture_on_commit_callbacks
    ):
        three_step(people)
        capture = django_capture_on_commit_callbacks
        alert = raise_(capture, rota=rota)
        self.press(people["manager"], "2", capture)
        reply = self.text(people["manager"], f"ESCALATE {REF}", capture)
        alert.refresh_from_db()
        assert reply == f"Concernline: {REF} has already been passed on."
        assert self.paged(alert) == ["manager@example.org", "manager2@example.org"]

    def test_two_people_paged_in_one_step_pass_it_on_once(
        self, people, rota, django_capture_on_commit_callbacks
    ):
        both_managers(people)
        capture = django_capture_on_commit_callbacks
        alert = raise_(capture, rota=rota)
        self.press(people["manager"], "2", capture)
        reply = self.text(people["manager2"], f"{self.code(people['manager2'])}E", capture)
        alert.refresh_from_db()
        assert reply == f"Concernline: {REF} has already been passed on."
        assert self.paged(alert) == [
            "manager@example.org",
            "manager2@example.org",
            "safeguarding@example.org",
        ]
        assert alert.fallback_reached_at is None

    def test_an_earlier_repeat_of_the_same_step_still_passes_on(
        self, people, rota, django_capture_on_commit_callbacks
    ):
        """The built-in policy pages the on-call manager again and again until someone
        acknowledges: a reply to an earlier one of those pages (read late, at 3 a.m.) passes
        it on, and is never answered "already passed on" when it was not."""
        capture = django_capture_on_commit_callbacks
        alert = raise_(capture, rota=rota)
        alert = sweep_past(alert, capture)  # the same step pages the manager again
        manager = people["manager"]
        assert alert.pages.filter(recipient=manager).count() == 2
        first = PageRequest.objects.filter(recipient=manager).earliest("id").id
        reply = self.text(manager, f"{first}E", capture)
        assert reply == f"Concernline: {REF} is passed to the next person."
        assert alert.pages.exclude(recipient=manager).exists()

    def test_the_latest_step_paged_passes_on_from_its_own_page(
        self, people, rota, django_capture_on_commit_callbacks
    ):
        three_step(people)
        capture = django_capture_on_commit_callbacks
        alert = raise_(capture, rota=rota)
        self.press(people["manager"], "2", capture)
        said = self.press(people["manager2"], "2", capture)
        alert.refresh_from_db()
        assert "next person" in said
        assert alert.fallback_reached_at is not None

    def test_a_manager_on_the_web_still_escalates_after_a_page_was_passed_on(
        self, people, rota, django_capture_on_commit_callbacks
    ):
        three_step(people)
        capture = django_capture_on_commit_callbacks
        alert = raise_(capture, rota=rota)
        self.press(people["manager"], "2", capture)
        with capture(execute=True):
            escalate_now(alert=alert, actor=people["manager"], via="web")
        alert.refresh_from_db()
        assert alert.fallback_reached_at is not None


class TestHousekeeping:
    def test_the_sweeper_records_its_heartbeat(self, db):
        sweep_alerts()
        assert timezone.now() - Heartbeat.objects.get(name="sweeper").at < timedelta(seconds=5)

    def test_nightly_check_names_people_a_page_cannot_reach(self, people, rota):
        people["manager"].phone = ""
        people["manager"].save(update_fields=["phone"])
        problems = unreachable_on_call()
        assert len(problems) == 1 and "has no mobile number" in problems[0]
        assert people["manager"].full_name in problems[0]
        assert check_paging_readiness.apply().get() == 1

    def test_nightly_check_reads_every_rota_in_the_same_few_queries(
        self, people, rota, django_assert_max_num_queries
    ):
        """Every rota's shifts are resolved together, not one rota at a time."""
        from oncall.models import LayerMember, Rota, RotaLayer

        for n in range(5):
            extra = Rota.objects.create(name=f"Night {n}")
            layer = RotaLayer.objects.create(
                rota=extra, name="All", start_date=rota.layers.get().start_date, handoff_every=7
            )
            LayerMember.objects.create(layer=layer, person=people["manager2"], position=0)
        people["manager2"].phone = ""
        people["manager2"].save(update_fields=["phone"])
        with django_assert_max_num_queries(5):
            problems = unreachable_on_call()
        assert len(problems) == 1 and people["manager2"].full_name in problems[0]


class TestDemoPolicies:
    def test_seed_demo_makes_sound_policies_twice_over(self, db, settings):
        from django.core.management import call_command

        from oncall.policies import STEP_FIELDS

        settings.DEMO_PASSWORD = "a-long-demo-password"
        call_command("seed_demo")
        call_command("seed_demo")
        policies = EscalationPolicy.objects.order_by("name")
        assert [p.name for p in policies] == ["Other urgent reports", "Urgent disclosure"]
        for made in policies:
            steps = [{f: getattr(s, f) for f in STEP_FIELDS} for s in made.steps.all()]
            assert policy_problems(steps) == [], made.name
        assert choose_policy(category="urgent_disclosure", urgency="urgent").name == (
            "Urgent disclosure"
        )


class TestEscalateBySms:
    def test_the_escalate_command_passes_the_page_on(
        self, people, rota, outbox, django_capture_on_commit_callbacks
    ):
        from notifications.signals import inbound_command

        three_step(people)
        capture = django_capture_on_commit_callbacks
        raise_(capture, rota=rota)
        with capture(execute=True):
            answers = inbound_command.send(
                sender=None,
                user=people["manager"],
                command="escalate",
                argument=REF,
                channel="sms",
                topic="",
            )
        assert "passed on" in "".join(str(a) for _r, a in answers if a)
        assert phones(outbox)[1:] == [str(people["manager2"].phone)]

    def test_someone_with_no_open_page_is_told_how(self, people, rota):
        from notifications.signals import inbound_command

        answers = inbound_command.send(
            sender=None, user=people["hr"], command="escalate", argument="", channel="sms"
        )
        assert "reply ESCALATE" in "".join(str(a) for _r, a in answers if a)
