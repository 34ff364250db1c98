"""The clocks: started by the services, met by the right act, warned and escalated by the beat
task. Time moves with freezegun, never by sleeping."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone
from freezegun import freeze_time

from incidents import services
from incidents.models import CaseClock, ClockKind, TimelineKind
from incidents.tasks import sweep_clocks

from .conftest import NARRATIVE


def clock(case, kind):
    return CaseClock.objects.get(case=case, kind=kind)


def test_beat_runs_the_sweeper():
    entry = settings.CELERY_BEAT_SCHEDULE["sweep-case-clocks"]
    assert entry["task"] == "incidents.sweep_clocks" and entry["schedule"] > 0


class TestStarted:
    def test_every_case_has_acknowledgement_and_review_clocks(self, make_case, settings):
        case = make_case("crime")
        ack = clock(case, ClockKind.ACKNOWLEDGEMENT)
        assert ack.due_at - ack.started_at == timedelta(
            hours=settings.CASE_ACKNOWLEDGE_TARGET_HOURS
        )
        review = clock(case, ClockKind.REVIEW)
        assert review.due_at - review.started_at == timedelta(days=settings.CASE_REVIEW_TARGET_DAYS)
        assert not CaseClock.objects.filter(
            case=case, kind__in=[ClockKind.BREACH_DECISION, ClockKind.SAFEGUARDING_REFERRAL]
        ).exists()

    def test_breach_has_72_hours_from_awareness(self, make_case):
        case = make_case("breach")
        breach = clock(case, ClockKind.BREACH_DECISION)
        assert breach.started_at == case.created_at or abs(
            breach.started_at - case.created_at
        ) < timedelta(seconds=1)
        assert breach.due_at - breach.started_at == timedelta(hours=72)

    def test_safeguarding_has_24_hours(self, make_case):
        case = make_case("safeguarding")
        referral = clock(case, ClockKind.SAFEGUARDING_REFERRAL)
        assert referral.due_at - referral.started_at == timedelta(hours=24)

    def test_targets_come_from_settings(self, make_case, settings):
        settings.CASE_ACKNOWLEDGE_TARGET_HOURS = 2
        settings.BREACH_DECISION_HOURS = 48
        case = make_case("breach")
        ack = clock(case, ClockKind.ACKNOWLEDGEMENT)
        assert ack.due_at - ack.started_at == timedelta(hours=2)
        breach = clock(case, ClockKind.BREACH_DECISION)
        assert breach.due_at - breach.started_at == timedelta(hours=48)


class TestMet:
    def test_dpo_decision_stops_the_breach_clock(self, make_case, people):
        case = make_case("breach")
        services.record_breach_decision(
            case=case,
            actor=people["dpo"],
            ico_notified=False,
            subjects_told=True,
            reason="Contained at once; no risk to the person's rights.",
        )
        assert clock(case, ClockKind.BREACH_DECISION).met_at is not None
        case.refresh_from_db()
        assert case.ico_notified is False and case.subjects_told is True
        assert case.timeline.filter(kind=TimelineKind.BREACH_DECISION).exists()

    def test_not_telling_needs_a_reason(self, make_case, people):
        case = make_case("breach")
        with pytest.raises(services.ConcernlineError) as caught:
            services.record_breach_decision(
                case=case, actor=people["dpo"], ico_notified=False, subjects_told=False
            )
        assert "reason" in caught.value.extra
        assert clock(case, ClockKind.BREACH_DECISION).met_at is None

    @pytest.mark.parametrize("role", ["manager", "safeguarding", "hr", "admin"])
    def test_only_the_dpo_decides(self, make_case, people, role):
        case = make_case("breach")
        with pytest.raises(services.NotAllowed):
            services.record_breach_decision(
                case=case, actor=people[role], ico_notified=True, subjects_told=True
            )

    def test_decision_is_recorded_once(self, make_case, people):
        case = make_case("breach")
        kwargs = {"case": case, "actor": people["dpo"], "ico_notified": True, "subjects_told": True}
        services.record_breach_decision(**kwargs)
        with pytest.raises(services.IllegalTransition):
            services.record_breach_decision(**kwargs)

    def test_local_authority_referral_stops_the_safeguarding_clock(self, make_case, people):
        case = make_case("safeguarding")
        services.record_safeguarding_referral(
            case=case, actor=people["safeguarding"], reference="LA-2026-77"
        )
        assert clock(case, ClockKind.SAFEGUARDING_REFERRAL).met_at is not None
        case.refresh_from_db()
        assert case.local_authority_reference == "LA-2026-77"
        with pytest.raises(services.IllegalTransition):
            services.record_safeguarding_referral(
                case=case, actor=people["safeguarding"], reference="again"
            )

    def test_no_referral_without_safeguarding_grounds(self, make_case, people):
        case = make_case("crime", to="under_review")
        with pytest.raises(services.IllegalTransition):
            services.record_safeguarding_referral(
                case=case, actor=people["manager"], reference="LA-1"
            )

    def test_web_acknowledgement_meets_the_acknowledgement_clock(
        self, make_case, people, client, django_capture_on_commit_callbacks
    ):
        case = make_case("crime")
        client.force_login(people["manager"])
        with django_capture_on_commit_callbacks(execute=True):
            client.post(f"/cases/{case.reference}/acknowledge/")
        assert clock(case, ClockKind.ACKNOWLEDGEMENT).met_at is not None


class TestSweep:
    def test_warns_before_then_escalates_when_it_runs_out(
        self, make_case, people, outbox, django_capture_on_commit_callbacks
    ):
        people["dpo"].line_manager = people["manager2"]
        people["dpo"].save()
        case = make_case("breach")
        breach = clock(case, ClockKind.BREACH_DECISION)
        outbox.clear()

        # 50 hours in: not yet at the warning (75 % of 72 h = 54 h).
        with (
            freeze_time(breach.started_at + timedelta(hours=50)),
            django_capture_on_commit_callbacks(execute=True),
        ):
            sweep_clocks.delay()
        assert [m for m in outbox if "DPO decision" in m["body"]] == []

        with (
            freeze_time(breach.started_at + timedelta(hours=60)),
            django_capture_on_commit_callbacks(execute=True),
        ):
            result = sweep_clocks.delay().get()
        assert result["warned"] >= 1
        warned = [m for m in outbox if "DPO decision" in m["body"]]
        assert {m["to"] for m in warned} == {str(people["dpo"].phone)}
        body = warned[0]["body"]
        assert case.reference in body and "runs out soon" in body
        assert NARRATIVE not in body and "SU-1" not in body
        assert clock(case, ClockKind.BREACH_DECISION).warned_at is not None

        # A second sweep at the same moment sends nothing again.
        outbox.clear()
        with (
            freeze_time(breach.started_at + timedelta(hours=61)),
            django_capture_on_commit_callbacks(execute=True),
        ):
            sweep_clocks.delay()
        assert [m for m in outbox if "DPO decision" in m["body"]] == []

        mail.outbox.clear()
        with (
            freeze_time(breach.started_at + timedelta(hours=73)),
            django_capture_on_commit_callbacks(execute=True),
        ):
            sweep_clocks.delay()
        ran_out = [m for m in outbox if "DPO decision" in m["body"]]
        assert {m["to"] for m in ran_out} == {
            str(people["dpo"].phone),
            str(people["manager2"].phone),
        }
        assert all("ran out" in m["body"] for m in ran_out)
        breached = clock(case, ClockKind.BREACH_DECISION)
        assert breached.breached_at is not None and breached.escalated_to == people["manager2"]
        event = case.timeline.filter(kind=TimelineKind.CLOCK_BREACHED).get(
            data__clock="breach_decision"
        )
        # By id, never by name: the timeline holds no names (see README, "Retention").
        assert event.data["escalated_to_id"] == people["manager2"].id
        assert people["manager2"].full_name not in str(event.data)
        emails = [m for m in mail.outbox if "ran out" in m.subject]
        assert emails and all(NARRATIVE not in m.body for m in emails)

        # The manager escalated to may now open the case to act on it.
        from incidents.access import Basis, bases_for

        assert Basis.ESCALATED in bases_for(people["manager2"], case)

    def test_escalates_to_the_on_call_manager_when_no_line_manager(
        self, make_case, people, outbox, settings, django_capture_on_commit_callbacks
    ):
        people["worker"].line_manager = None
        people["worker"].save()
        case = make_case("crime")  # paged, not acknowledged: nobody owns it
        ack = clock(case, ClockKind.ACKNOWLEDGEMENT)
        with (
            freeze_time(ack.due_at + timedelta(minutes=1)),
            django_capture_on_commit_callbacks(execute=True),
        ):
            services.sweep_clocks()
        ack = clock(case, ClockKind.ACKNOWLEDGEMENT)
        assert ack.breached_at is not None
        assert ack.escalated_to is not None and ack.escalated_to.role == "manager"

    def test_met_clocks_are_left_alone(self, make_case, people, outbox):
        case = make_case("safeguarding")
        services.record_safeguarding_referral(
            case=case, actor=people["safeguarding"], reference="LA-9"
        )
        referral = clock(case, ClockKind.SAFEGUARDING_REFERRAL)
        with freeze_time(referral.due_at + timedelta(hours=1)):
            services.sweep_clocks()
        referral.refresh_from_db()
        assert referral.warned_at is None and referral.breached_at is None

    def test_overdue_shows_on_the_case_and_in_the_overdue_list(self, make_case, people, client):
        case = make_case("safeguarding")
        referral = clock(case, ClockKind.SAFEGUARDING_REFERRAL)
        client.force_login(people["safeguarding"])
        with freeze_time(referral.due_at + timedelta(hours=1)):
            body = client.get(f"/cases/{case.reference}/").content.decode()
            assert "overdue since" in body
            listed = client.get("/cases/?list=overdue").content.decode()
            assert case.reference in listed and ">overdue</span>" in listed
        listed = client.get("/cases/?list=overdue").content.decode()
        assert case.reference not in listed
        assert timezone.now() < referral.due_at


def test_the_sweep_reads_running_clocks_only(make_case):
    """The sweep's query can be answered from the partial indexes of running clocks alone,
    without reading every clock of every case ever reported (met clocks are most of them).
    Sequential scans are switched off so that a table of test size shows which indexes can
    serve it; on a table of real size PostgreSQL picks them itself."""
    from django.db import connection

    make_case("crime")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    plan = services.due_clocks(timezone.now()).values_list("id", flat=True).explain()
    assert "Seq Scan" not in plan, plan
    assert "incidents_clock_due_running" in plan or "incidents_clock_warn_running" in plan, plan
